"""The review desk without a browser: the decisions log, the queue's leases, apply, the app's
security (through Starlette's test client) and the command's one-line errors."""

from __future__ import annotations

import hashlib
import json
import shutil

import pyarrow.parquet as pq
import pytest
from starlette.testclient import TestClient

from fixtures.review import CANDIDATES, HOSTILE, LABELLED, write_review_dataset
from vlcurate.pipelines import cli
from vlcurate.taxonomy.desk.app import CSP, build_app
from vlcurate.taxonomy.desk.apply import apply_decisions
from vlcurate.taxonomy.desk.decisions import DecisionLog
from vlcurate.taxonomy.desk.desk import Desk, DeskError
from vlcurate.taxonomy.desk.queue import Filter
from vlcurate.taxonomy.labeler import read_examples
from vlcurate.taxonomy.tree import load_taxonomy
from vlcurate.transforms.io.shard_reader import read_shard

A, B = "a" * 24, "b" * 24  # two sessions


@pytest.fixture
def review_dataset(tmp_path):
    return write_review_dataset(tmp_path / "data")


def file_hashes(folder):
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != "decisions.jsonl"}


def samples_of(folder):
    return {s.key: s for path in sorted((folder / "shards").glob("*.tar")) for s in read_shard(str(path))}


def test_the_log_keeps_each_decision_once_and_undo_takes_back_the_last(tmp_path):
    log = DecisionLog(str(tmp_path / "review" / "decisions.jsonl"))
    log.label("k1", CANDIDATES[0], "ann", "text one", None)
    log.label("k2", CANDIDATES[1], "ann", "text two", None)
    log.label("k1", CANDIDATES[2], "bob", "text one", None)
    assert log.current("k1")["previous"] == CANDIDATES[0]
    undone = log.undo_last("ann")
    assert undone["key"] == "k2" and undone["label"] is None
    assert log.undo_last("bob")["label"] == CANDIDATES[0]  # bob's relabel taken back: ann's label again
    # A line cut by a crash mid-write was never acknowledged: it is ignored on reload.
    with open(log.path, "ab") as handle:
        handle.write(b'{"schema": "vlcurate.review-decision/1", "seq": 99, "act')
    again = DecisionLog(log.path)
    assert {key: doc["label"] for key, doc in again.labels().items()} == {"k1": CANDIDATES[0]}


def test_two_sessions_never_get_the_same_item_and_a_lease_expires(review_dataset):
    desk = Desk(str(review_dataset), lease_seconds=60)
    now = [0.0]
    desk.queue._clock = lambda: now[0]
    first, second = desk.next_item(A, Filter()), desk.next_item(B, Filter())
    assert first["key"] != second["key"]
    assert desk.next_item(A, Filter())["key"] == first["key"]  # a reload shows the same item
    with pytest.raises(PermissionError):
        desk.decide(B, "bob", first["key"], CANDIDATES[0])
    now[0] = 61.0  # A went away: its item is free again, and the first in the queue for a third editor
    assert desk.next_item("c" * 24, Filter())["key"] == first["key"]
    assert desk.next_item(B, Filter())["key"] == second["key"]  # B keeps the item it has open


def test_items_come_lowest_confidence_first_and_filters_count(review_dataset):
    desk = Desk(str(review_dataset))
    confidences = [item.confidence for item in desk.queue.items if item.row is not None]
    assert len(confidences) == 30 and confidences == sorted(confidences)
    counts = desk.queue.counts(Filter())
    assert counts["total"] == 30 and counts["status"] == {"labelled": 10, "review": 30}
    assert counts["language"] == {"de": 10, "en": 20}
    german = desk.next_item(A, Filter(language="de"))
    assert german["language"] == "de"
    labelled = desk.next_item(B, Filter(status="labelled"))  # a sample not under review, read from its shard
    assert labelled["label"] == LABELLED and labelled["conversation"][0]["role"] == "User"
    assert desk.queue.counts(Filter(text="question 3:"))["total"] == 1


def test_bad_input_is_one_clear_message_and_no_stored_label(tmp_path, review_dataset):
    desk = Desk(str(review_dataset))
    key = desk.next_item(A, Filter())["key"]
    for label, message in (("recognition/no-such-leaf", "is not in taxonomy 1"),
                           ("recognition", "is not a labelling leaf")):
        with pytest.raises(DeskError, match=message):
            desk.decide(A, "ann", key, label)
    assert len(desk.log) == 0 and not (review_dataset / "review" / "decisions.jsonl").exists()
    with pytest.raises(DeskError, match="no such file"):
        Desk(str(review_dataset), taxonomy=str(tmp_path / "missing.yaml"))
    bare = write_review_dataset(tmp_path / "bare", review=0, labelled=4)
    with pytest.raises(DeskError, match="has no review queue"):
        Desk(str(bare))


def test_apply_writes_labels_into_index_json_and_manifest_and_only_changed_shards(tmp_path, review_dataset):
    twin = tmp_path / "twin"
    shutil.copytree(review_dataset, twin)
    before = file_hashes(review_dataset)
    desk = Desk(str(review_dataset))
    item = desk.next_item(A, Filter(min_confidence=0.3))
    desk.decide(A, "ann", item["key"], CANDIDATES[1])
    shutil.copy(review_dataset / "review" / "decisions.jsonl", twin / "review" / "decisions.jsonl")
    result = apply_decisions(str(review_dataset))
    assert result.changed == 1 and result.shards == [item["shard"]]
    after = file_hashes(review_dataset)
    changed = {name for name in after if after[name] != before.get(name)}
    assert changed == {f"shards/{item['shard']}.tar", f"index/{item['shard']}.parquet",
                       f"review/{item['shard']}-review.jsonl", "manifest.json", "runs/run-0001.json"}
    sample = samples_of(review_dataset)[item["key"]]
    assert sample.taxonomy["id"] == CANDIDATES[1] and sample.taxonomy["status"] == "reviewed"
    assert sample.taxonomy["editor"] == "ann" and sample.taxonomy["previous"] is None
    assert sample.taxonomy["labeler_confidence"] == item["confidence"]
    row = [r for r in pq.read_table(review_dataset / "index" / f"{item['shard']}.parquet").to_pylist()
           if r["key"] == item["key"]][0]
    assert (row["taxonomy_id"], row["taxonomy_status"]) == (CANDIDATES[1], "reviewed")
    manifest = json.loads((review_dataset / "manifest.json").read_text())
    assert manifest["labels"] == {"(review)": 29, CANDIDATES[1]: 1, LABELLED: 10}
    record = [s for s in manifest["shards"] if s["name"] == f"shards/{item['shard']}.tar"][0]
    assert record["sha256"] == hashlib.sha256((review_dataset / record["name"]).read_bytes()).hexdigest()
    run = json.loads((review_dataset / "runs" / "run-0001.json").read_text())  # what a later run merges
    assert run["labels"] == manifest["labels"] and run["shards"] == manifest["shards"]
    queue = (review_dataset / "review" / f"{item['shard']}-review.jsonl").read_text()
    assert item["key"] not in queue  # decided: no longer awaiting review
    # Twice: nothing changes. Another copy with the same decisions: the same bytes.
    assert apply_decisions(str(review_dataset)).shards == []
    assert file_hashes(review_dataset) == after
    apply_decisions(str(twin))
    twin_hashes = file_hashes(twin)
    assert {n: h for n, h in twin_hashes.items() if n != "manifest.json"} == \
        {n: h for n, h in after.items() if n != "manifest.json"}


def test_training_reads_the_decisions_in_force(review_dataset):
    desk = Desk(str(review_dataset))
    keys = []
    for label in CANDIDATES[:3]:
        item = desk.next_item(A, Filter())
        desk.decide(A, "ann", item["key"], label)
        keys.append(item["key"])
    desk.undo(A, "ann")
    taxonomy = load_taxonomy()
    for path in (review_dataset, review_dataset / "review" / "decisions.jsonl"):
        examples = read_examples(str(path), taxonomy)
        assert [(e.text.split(":")[0], e.label) for e in examples] == \
            [(desk.queue.by_key[k].row["text"].split(":")[0], label) for k, label in zip(keys[:2], CANDIDATES)]


@pytest.fixture
def client(review_dataset):
    desk = Desk(str(write_review_dataset(review_dataset.parent / "hostile", hostile=0)))
    with TestClient(build_app(desk, "ann", ("testserver",))) as client:
        yield client


def token_of(client):
    page = client.get("/")
    return page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0], page


def test_writes_need_the_session_token_and_pages_carry_the_csp(client):
    token, page = token_of(client)
    assert page.headers["content-security-policy"] == CSP and "script-src 'self'" in CSP
    assert "<script>" not in page.text.replace('<script src="/static/desk.js" defer></script>', "")
    item = client.get("/api/next").json()["item"]
    assert item["conversation"][0]["content"] == "<image_placeholder>" + HOSTILE  # JSON, shown as text
    body = {"key": item["key"], "label": CANDIDATES[0], "editor": "ann"}
    assert client.post("/api/decide", json=body).status_code == 403
    assert client.post("/api/decide", json=body, headers={"X-CSRF-Token": "0" * 64}).status_code == 403
    bad = client.post("/api/decide", json={**body, "label": "nope"}, headers={"X-CSRF-Token": token})
    assert bad.status_code == 400 and "is not in taxonomy" in bad.json()["error"]
    assert client.post("/api/decide", json=body, headers={"X-CSRF-Token": token}).status_code == 200
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 400  # DNS rebinding


def test_only_dataset_images_are_served_by_key(client):
    assert client.get("/api/next").status_code == 403  # no session yet: the page gives one
    token_of(client)
    item = client.get("/api/next").json()["item"]
    image = client.get(f"/image/{item['key']}/0")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.content.startswith(b"\x89PNG")
    for path in (f"/image/{item['key']}/1", "/image/sft-000000000000000000000000/0", "/image/..%2Fmanifest.json/0",
                 "/image/%2Fetc%2Fpasswd/0", "/image/../../manifest.json", "/static/../manifest.json",
                 "/static/%2e%2e/app.py", "/shards/sft-000000.tar", "/manifest.json"):
        assert client.get(path).status_code == 404, path


def test_the_command_says_what_is_wrong_in_one_line(tmp_path, review_dataset, capsys):
    bare = write_review_dataset(tmp_path / "bare", review=0, labelled=3)
    cases = [(["review", str(bare)], 1, "has no review queue"),
             (["review", str(tmp_path / "nowhere")], 1, "nowhere a dataset folder?"),
             (["review", str(review_dataset), "--taxonomy", str(tmp_path / "t.yaml")], 1, "no such file"),
             (["review", "apply", str(review_dataset)], 1, "no decisions to apply"),
             (["review", str(review_dataset), "--port", "x"], 2, "invalid int value")]
    for argv, status, message in cases:
        assert cli.main(argv) == status
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, (argv, err)
        assert len(err.strip().splitlines()) == 1


def test_label_studio_export_then_an_edited_export_imports_as_decisions(tmp_path, review_dataset):
    tasks_path = tmp_path / "tasks.json"
    assert cli.main(["review", "export", str(review_dataset), "--format", "label-studio",
                     "--output", str(tasks_path)]) == 0
    tasks = json.loads(tasks_path.read_text())
    assert len(tasks) == 30 and len({task["data"]["key"] for task in tasks}) == 30
    first = tasks[0]
    assert first["data"]["image"].startswith("data:image/png;base64,")
    assert first["data"]["text"].startswith("User: <image_placeholder>question")
    assert first["predictions"][0]["result"][0]["value"]["choices"] == [CANDIDATES[0]]
    config = (tmp_path / "tasks.label-config.xml").read_text()
    assert config.count("<Choice ") == len(load_taxonomy().leaves()) and f'value="{CANDIDATES[2]}"' in config
    # What Label Studio's JSON export holds after editors chose: annotations[].result[].value.choices,
    # a cancelled annotation, an older one superseded by a later one, and two bad tasks.
    chosen = {tasks[0]["data"]["key"]: CANDIDATES[1], tasks[1]["data"]["key"]: CANDIDATES[2]}
    exported = [
        {**tasks[0], "annotations": [
            {"id": 1, "completed_by": 7, "was_cancelled": False, "created_at": "2026-01-01T10:00:00Z",
             "updated_at": "2026-01-01T10:00:00Z", "result": [_choice(CANDIDATES[0])]},
            {"id": 2, "completed_by": {"id": 7, "email": "eve@example.org"}, "was_cancelled": False,
             "created_at": "2026-01-02T10:00:00Z", "updated_at": "2026-01-02T10:00:00Z",
             "result": [_choice(CANDIDATES[1])]}]},
        {**tasks[1], "annotations": [
            {"id": 3, "completed_by": 8, "was_cancelled": True, "result": [_choice(CANDIDATES[0])]},
            {"id": 4, "completed_by": 8, "was_cancelled": False, "result": [_choice(CANDIDATES[2])]}]},
        {**tasks[2], "annotations": []},  # not annotated: nothing to import
        {**tasks[3], "annotations": [{"id": 5, "completed_by": 8, "result": [_choice("recognition/nope")]}]},
        {"id": 99, "data": {"text": "someone else's task"}, "annotations": []},
    ]
    annotations = tmp_path / "export.json"
    annotations.write_text(json.dumps(exported))
    assert cli.main(["review", "import", str(review_dataset), str(annotations)]) == 1  # two tasks refused
    log = DecisionLog.of(str(review_dataset))
    assert {key: doc["label"] for key, doc in log.labels().items()} == chosen
    assert log.current(tasks[0]["data"]["key"])["editor"] == "label-studio:eve@example.org"
    assert log.current(tasks[1]["data"]["key"])["via"] == "label-studio"
    cli.main(["review", "import", str(review_dataset), str(annotations)])  # twice: nothing new
    assert len((review_dataset / "review" / "decisions.jsonl").read_text().splitlines()) == 2
    assert apply_decisions(str(review_dataset)).changed == 2
    samples = samples_of(review_dataset)
    assert {key: samples[key].taxonomy["id"] for key in chosen} == chosen


def _choice(label):
    return {"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": [label]}}


def test_label_studio_export_can_point_at_a_local_files_root(tmp_path, review_dataset):
    tasks_path, root = tmp_path / "tasks.json", tmp_path / "files"
    assert cli.main(["review", "export", str(review_dataset), "--format", "label-studio", "--output", str(tasks_path),
                     "--files-root", str(root)]) == 0
    task = json.loads(tasks_path.read_text())[0]
    name = task["data"]["image"].split("?d=", 1)[1]
    assert task["data"]["image"].startswith("/data/local-files/?d=vlcurate-images/")
    assert (root / name).read_bytes().startswith(b"\x89PNG")


def test_a_sample_is_read_from_where_its_shard_holds_it_and_a_wrong_key_is_an_error(review_dataset):
    from vlcurate.taxonomy.desk.samples import SampleReader
    from vlcurate.transforms.io.shard_reader import ShardError

    shard = "sft-000001"
    expected = list(read_shard(str(review_dataset / "shards" / f"{shard}.tar")))
    cold, warm = SampleReader(str(review_dataset)), SampleReader(str(review_dataset))
    warm.note_starts([shard]).join()
    for number in (len(expected) - 1, 0, 5):  # warm: opened at the sample's start; cold: stepped up to it
        assert cold.sample(expected[number].key, shard, number) == expected[number]
        assert warm.sample(expected[number].key, shard, number) == expected[number]
    with pytest.raises(ShardError, match="bad_sample"):
        warm.sample(expected[3].key, shard, 4)


def test_the_desk_binds_to_localhost_warns_for_another_host_and_holds_the_dataset(review_dataset, monkeypatch, capsys):
    import uvicorn

    from vlcurate.transforms.io.lock import LOCK, locked

    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **_: served.append(
        (host, port, (review_dataset / LOCK).exists())))
    assert cli.main(["review", str(review_dataset)]) == 0
    assert served == [("127.0.0.1", 8765, True)] and "warning" not in capsys.readouterr().err
    assert not (review_dataset / LOCK).exists()  # released when the desk stops
    assert cli.main(["review", str(review_dataset), "--host", "0.0.0.0", "--port", "9000"]) == 0
    assert served[-1][:2] == ("0.0.0.0", 9000) and "warning: listening on 0.0.0.0" in capsys.readouterr().err
    with locked(str(review_dataset)):  # a run (or another desk) writes the dataset
        assert cli.main(["review", "apply", str(review_dataset)]) == 1
    assert "is being written by another run" in capsys.readouterr().err


def test_a_leaf_without_words_of_its_own_shows_its_parents(review_dataset):
    nodes = {node["id"]: node for node in Desk(str(review_dataset)).taxonomy_view()["nodes"]}
    leaf = nodes["recognition/global-description/theme-description"]
    assert leaf["path"] == ["Recognition", "Global Description", "Theme Description"]
    assert leaf["description"].startswith("Describe the image as a whole")
    assert "What kind of place is this?" in leaf["examples"] and "atmosphere" in leaf["keywords"]


@pytest.mark.e2e
def test_the_desk_and_apply_on_a_dataset_the_sft_pipeline_labelled(tmp_path, capsys):
    from fixtures import EXAMPLES

    labeler, output = tmp_path / "labeler", tmp_path / "sft"
    assert cli.main(["taxonomy", "train", "--examples", str(EXAMPLES / "sft" / "labelled.jsonl"),
                     "--output", str(labeler)]) == 0
    assert cli.main(["sft", "--input", str(EXAMPLES / "sft" / "conversations"), "--output", str(output),
                     "--image-root", str(EXAMPLES), "--labeler", str(labeler), "--min-confidence", "0.99",
                     "--runner=FnApiRunner"]) == 0
    desk = Desk(str(output))
    queued = [item for item in desk.queue.items if item.row is not None]
    assert queued and all(item.status == "review" for item in queued)
    decided = {}
    for label in CANDIDATES[:2]:
        item = desk.next_item(A, Filter())
        assert item["conversation"] and item["candidates"]
        if item["images"]:
            assert desk.samples.sample(item["key"], item["shard"], desk.queue.by_key[item["key"]].number).images
        desk.decide(A, "ann", item["key"], label)
        decided[item["key"]] = label
    capsys.readouterr()
    assert cli.main(["review", "apply", str(output)]) == 0
    assert "2 samples changed" in capsys.readouterr().out
    assert cli.main(["inspect", str(output), "--verify"]) == 0  # shards, sizes and sha256 as the manifest says
    samples = samples_of(output)
    assert {key: samples[key].taxonomy["id"] for key in decided} == decided
    assert json.loads((output / "manifest.json").read_text())["labels"]["(review)"] == len(queued) - 2


def test_apply_leaves_a_damaged_shard_as_it_is_and_applies_the_others(review_dataset, capsys):
    desk = Desk(str(review_dataset))
    by_shard = {}
    while len(by_shard) < 2:
        item = desk.next_item(A, Filter())
        desk.decide(A, "ann", item["key"], CANDIDATES[1])
        by_shard.setdefault(item["shard"], item["key"])
    damaged, sound = sorted(by_shard)
    tar = review_dataset / "shards" / f"{damaged}.tar"
    tar.write_bytes(tar.read_bytes()[:-3000])  # cut short, as a failed copy leaves it
    cut = tar.read_bytes()
    capsys.readouterr()
    assert cli.main(["review", "apply", str(review_dataset)]) == 1
    err = capsys.readouterr().err
    assert f"not applied: damaged shard {tar}: truncated" in err and "Traceback" not in err
    assert tar.read_bytes() == cut
    assert samples_of_shard(review_dataset, sound)[by_shard[sound]].taxonomy["status"] == "reviewed"
    manifest = json.loads((review_dataset / "manifest.json").read_text())
    record = [s for s in manifest["shards"] if s["name"] == f"shards/{sound}.tar"][0]
    assert record["sha256"] == hashlib.sha256((review_dataset / record["name"]).read_bytes()).hexdigest()


def samples_of_shard(folder, shard):
    return {s.key: s for s in read_shard(str(folder / "shards" / f"{shard}.tar"))}
