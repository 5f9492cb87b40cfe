"""The training loader on shards written by the project's sink: the modality schedule, pure
batches, splits by rank and worker, image preprocessing, and bad shards skipped and counted."""

from __future__ import annotations

import io
import os
import shutil
import tarfile

import numpy as np
import pytest
from PIL import Image as PILImage
from fixtures.training import (
    TINY_IMAGE_TOKENS, keys_in, mixed_samples, pretraining_sample, tar_members, write_dataset, write_members,
)

from vlcurate.training.data import DataConfig, ShardLoader, Stream, check_shards, make_plan
from vlcurate.training.images import PAD_MEAN, BadImage, ImageConfig, open_checked, square
from vlcurate.training.mixing import Mixer, ModalitySchedule, parse_mix
from vlcurate.training.sources import list_shards
from vlcurate.training.tokenizer import ByteTokenizer

IMAGE_ID = ByteTokenizer().image_id


def tiny(**overrides) -> DataConfig:
    base = dict(stage=2, batch_size=2, workers=0, image=ImageConfig(32, 64), image_tokens=TINY_IMAGE_TOKENS,
                max_len=384)
    base.update(overrides)
    return DataConfig(**base)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("mixed"))
    write_dataset(folder, mixed_samples(), per_shard=25)
    return folder


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    """document_ocr only, in a few shards: the base of the broken copies."""
    folder = str(tmp_path_factory.mktemp("docs"))
    write_dataset(folder, [pretraining_sample("document_ocr", n) for n in range(40)], prefix="docs", per_shard=10)
    return folder


def batches(plan, config, steps, **kwargs):
    loader = iter(ShardLoader(plan, config, **kwargs))
    return [next(loader) for _ in range(steps)]


# --- mixing ----------------------------------------------------------------------------------------


def test_parse_mix_and_language_target():
    weights = parse_mix("document_ocr=2, web_code=1, text_only=7")
    assert weights == {"document_ocr": 2.0, "web_code": 1.0, "text_only": 7.0}
    assert parse_mix("a=1,b=3") == {"a": 1.0, "b": 3.0}
    with pytest.raises(ValueError):
        parse_mix("a")


def test_schedule_shapes():
    linear, cosine = ModalitySchedule(0.7, 100, "linear"), ModalitySchedule(0.7, 100, "cosine")
    assert linear.share(0) == cosine.share(0) == 1.0
    assert linear.share(50) == pytest.approx(0.85) and cosine.share(50) == pytest.approx(0.85)
    assert cosine.share(10) > linear.share(10)  # cosine leaves 1.0 slowly
    assert linear.share(100) == cosine.share(5000) == 0.7
    assert linear.cumulative(150) == pytest.approx(sum(linear.share(t) for t in range(150)))


@pytest.mark.e2e
def test_observed_language_share_follows_the_schedule(mixed):
    """Several thousand samples through the real loader: the share seen over the warm-up and
    after it is within 2 points of the schedule, and every batch is one modality."""
    config = tiny(warmup_steps=1000, warmup_shape="cosine", lang_share=0.7)
    plan = make_plan(mixed, config)
    steps = 2500
    seen = batches(plan, config, steps)
    language = np.array([batch["language"] for batch in seen])
    schedule = np.array([plan.schedule.share(step) for step in range(steps)])
    for window in (slice(0, 250), slice(0, 1000), slice(1000, steps), slice(0, steps)):
        assert abs(language[window].mean() - schedule[window].mean()) < 0.02, window
    assert language[:10].all()  # warm-up starts all language
    for batch in seen:
        routes = set(batch["routes"])
        images = int((batch["ids"] == IMAGE_ID).sum())
        if batch["language"]:
            assert routes == {"text_only"} and images == 0 and batch["low"].shape[0] == 0
        else:
            assert "text_only" not in routes and images == TINY_IMAGE_TOKENS * batch["low"].shape[0] > 0
            assert batch["high"].shape[0] == batch["low"].shape[0]
    multimodal = [route for batch in seen if not batch["language"] for route in batch["routes"]]
    assert set(multimodal) == {"document_ocr", "table_chart", "web_code"}


def test_mix_weights_set_the_routes_and_language_target(mixed):
    config = tiny(weights=(("document_ocr", 3.0), ("table_chart", 1.0), ("text_only", 4.0)))
    plan = make_plan(mixed, config)
    assert plan.schedule.target == 0.5 and plan.routes == ("document_ocr", "table_chart", "text_only")
    routes = [r for batch in batches(plan, config, 400) if not batch["language"] for r in batch["routes"]]
    assert set(routes) == {"document_ocr", "table_chart"}
    assert 0.65 < routes.count("document_ocr") / len(routes) < 0.85


def test_same_seed_same_batches_other_seed_other_batches(mixed):
    config = tiny()
    plan = make_plan(mixed, config)
    first = [batch["keys"] for batch in batches(plan, config, 30)]
    assert first == [batch["keys"] for batch in batches(plan, config, 30)]
    other = tiny(seed=1)
    assert first != [batch["keys"] for batch in batches(make_plan(mixed, other), other, 30)]


def test_resume_from_positions_continues_the_stream(mixed):
    config = tiny(workers=2)  # two streams, served in process here
    plan = make_plan(mixed, config)
    straight = batches(plan, config, 40)
    positions = {str(b["stream"]): b["state"] for b in straight[:20]}  # last state per stream
    resumed = batches(plan, config, 20, start_step=20, positions=positions)
    assert [b["keys"] for b in resumed] == [b["keys"] for b in straight[20:]]
    assert [b["step"] for b in resumed] == list(range(20, 40))


def test_ranks_and_workers_read_disjoint_samples(mixed):
    config = tiny(workers=2, lang_share=0.5)
    plan = make_plan(mixed, config)
    seen = {}
    for rank in (0, 1):
        for batch in batches(plan, config, 40, rank=rank, world=2):
            for key in batch["keys"]:
                seen.setdefault(key, set()).add((rank, batch["stream"]))
    assert len(seen) > 100
    assert all(len(readers) == 1 for readers in seen.values())  # no sample read by two (rank, worker)s
    assert {reader for readers in seen.values() for reader in readers} == {(0, 0), (0, 1), (1, 0), (1, 1)}


def test_stage_3_reads_conversations(mixed):
    config = tiny(stage=3, lang_share=0.5)
    plan = make_plan(mixed, config)
    assert plan.routes == ("caption", "text_only")
    for batch in batches(plan, config, 20):
        assert all(key.startswith("sft-") for key in batch["keys"])
        text = ByteTokenizer().decode(batch["ids"][0].tolist())
        assert "User: " in text and "\n\nAssistant: " in text


def test_missing_sources_are_noted(docs):
    plan = make_plan(docs, tiny(weights=(("document_ocr", 1.0), ("text_only", 7.0))))
    assert plan.routes == ("document_ocr",) and plan.schedule.target == 0.0
    assert any("no pretrain samples of text_only" in note for note in plan.notes)
    assert any("every batch is multimodal" in note for note in plan.notes)


# --- images ---------------------------------------------------------------------------------------


def png(width, height, colour=(200, 10, 10)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), colour).save(buffer, format="PNG")
    return buffer.getvalue()


def test_square_resizes_the_long_side_and_pads_with_the_mean():
    image = open_checked(png(100, 50), ImageConfig())
    pixels = square(image, 64)
    assert pixels.shape == (64, 64, 3)
    assert tuple(pixels[32, 32]) == (200, 10, 10)  # the image, centred
    assert tuple(pixels[0, 32]) == tuple(round(c * 255) for c in PAD_MEAN)  # padding above it
    assert tuple(pixels[63, 32]) == tuple(round(c * 255) for c in PAD_MEAN)


def test_image_size_is_checked_before_decoding(monkeypatch):
    data = png(3000, 2000)
    decoded = []
    monkeypatch.setattr(PILImage.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(BadImage) as caught:
        open_checked(data, ImageConfig(max_pixels=1_000_000))
    assert caught.value.reason == "image_too_large" and not decoded
    with pytest.raises(BadImage) as caught:
        open_checked(b"\x89PNG\r\n\x1a\n not really", ImageConfig())
    assert caught.value.reason == "image_undecodable"
    with pytest.raises(BadImage) as caught:
        open_checked(data, ImageConfig(max_bytes=100))
    assert caught.value.reason == "image_too_large"


# --- bad shards -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def broken(docs, tmp_path_factory):
    """Copies of the sink's shards, each broken one way; returns (folder, expected skips, good keys)."""
    folder = tmp_path_factory.mktemp("broken")
    shards = sorted(os.path.join(docs, "shards", name) for name in os.listdir(os.path.join(docs, "shards")))
    assert len(shards) >= 4
    good = set()
    # a good shard, untouched
    shutil.copy(shards[0], folder / "good.tar")
    good |= set(keys_in(tar_members(shards[0])))
    # truncated in the middle of a member: the samples before the damage are kept
    data = open(shards[1], "rb").read()
    with tarfile.open(shards[1]) as tar:
        infos = tar.getmembers()
    middle = infos[len(infos) // 2]
    cuts = [len(data) // 2 + 100, middle.offset_data + middle.size // 2]  # in a header; in a member's data
    (folder / "truncated.tar").write_bytes(data[:cuts[0]])
    (folder / "truncated-in-data.tar").write_bytes(data[:cuts[1]])
    # a sample counts as read once the next sample's header is whole: the one being read is lost
    firsts = {}
    for info in infos:
        firsts.setdefault(info.name.partition(".")[0], info.offset)
    starts = sorted(firsts.values())
    kept_before_cuts = sum(1 for cut in cuts for start in starts[1:] if start + 512 <= cut)
    # each of the following breaks one sample of a shard and leaves the others good
    members = tar_members(shards[2])
    keys = keys_in(members)
    assert len(keys) >= 5
    broken_members = []
    for name, payload in members:
        key, _, suffix = name.partition(".")
        if key == keys[0] and suffix in ("png", "jpg"):
            payload = b"\x89PNG\r\n\x1a\n" + b"garbage" * 20  # undecodable image
        if key == keys[1] and suffix in ("png", "jpg"):
            continue  # missing image member
        broken_members.append((name, payload))
    broken_members.append((keys[2] + ".pth", b"\x80\x04not unpickled"))  # pickle refused
    broken_members.append((keys[3] + ".exe", b"MZ"))  # unknown extension
    broken_members.sort()
    write_members(str(folder / "samples.tar"), broken_members)
    good |= set(keys[4:])
    (folder / "junk.tar").write_bytes(b"this is not a tar file at all" * 40)
    expected = {"truncated_shard": 2, "image_undecodable": 1, "missing_member": 1, "pickle_refused": 1,
                "unknown_extension": 1, "shard_unreadable": 2}
    return folder, expected, good, kept_before_cuts


def test_bad_shards_and_samples_are_skipped_and_counted(broken):
    folder, expected, good, kept_before_cuts = broken
    specs = [str(folder / "*.tar"), str(folder / "missing.tar")]
    config = tiny(weights=(("document_ocr", 1.0),))
    plan = make_plan(specs, config)
    assert len(plan.shards) == 6
    result = check_shards(plan, config)
    assert result["skipped"] == expected
    # every good sample, and those of the truncated shard before the damage
    assert kept_before_cuts > 0
    assert result["usable"]["document_ocr"] == len(good) + kept_before_cuts


def test_training_stream_survives_bad_shards(broken):
    folder = broken[0]
    config = tiny(weights=(("document_ocr", 1.0),))
    plan = make_plan([str(folder / "*.tar"), str(folder / "missing.tar")], config)
    stream = Stream(plan, config, 0, 1, 0)
    for step in range(40):  # more samples than the shards hold: several epochs over the damage
        batch = stream.batch(step)
        assert not batch["language"] and len(batch["keys"]) == 2
    counts = batch["state"]["counts"]
    assert counts["pickle_refused"] >= 2 and counts["truncated_shard"] >= 2 and counts["image_undecodable"] >= 2


def test_list_shards_forms(mixed, tmp_path):
    by_manifest = list_shards(mixed)
    assert len(by_manifest) > 4 and all(shard.routes for shard in by_manifest)
    by_glob = list_shards(os.path.join(mixed, "shards", "*.tar"))
    assert [s.url for s in by_glob] == sorted(s.url for s in by_manifest)
    assert [s.routes for s in by_glob] == [s.routes for s in sorted(by_manifest, key=lambda s: s.url)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(s.url for s in by_glob[:2]) + "\n")
    assert [s.url for s in list_shards("@" + str(listing))] == [s.url for s in by_glob[:2]]
    assert [s.url for s in list_shards(",".join(s.url for s in by_glob[:3]))] == [s.url for s in by_glob[:3]]
    assert [s.url for s in list_shards("http://host/s-{000..002}.tar")] == [
        "http://host/s-000.tar", "http://host/s-001.tar", "http://host/s-002.tar"]


def test_mixer_is_a_function_of_the_step():
    mixer = Mixer(ModalitySchedule(0.7, 50), {"a": 1.0, "b": 1.0, "text_only": 1.0}, seed=3)
    again = Mixer(ModalitySchedule(0.7, 50), {"a": 1.0, "b": 1.0, "text_only": 1.0}, seed=3)
    assert [mixer.is_language(s) for s in range(200)] == [again.is_language(s) for s in range(200)]
    assert mixer.routes(7, 0, 8, {"a", "b"}) == again.routes(7, 0, 8, {"a", "b"})
    assert mixer.routes(7, 0, 8, {"a", "b"}) != mixer.routes(7, 1, 8, {"a", "b"})


@pytest.fixture
def served(mixed):
    """The dataset folder over HTTP on loopback (webdataset opens http URLs with curl)."""
    import functools
    import http.server
    import threading

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=mixed)
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.mark.skipif(shutil.which("curl") is None, reason="webdataset reads http URLs with curl")
def test_shards_stream_from_urls(mixed, served):
    names = sorted(os.listdir(os.path.join(mixed, "shards")))[:4]
    first, last = names[0].split("-")[1][:6], names[-1].split("-")[1][:6]
    url = f"{served}/shards/t-{{{first}..{last}}}.tar"
    config = tiny(weights=(("document_ocr", 1.0), ("text_only", 1.0)), lang_share=0.5)
    plan = make_plan(url, config)
    assert len(plan.shards) == int(last) - int(first) + 1 and all(s.routes is None for s in plan.shards)
    local = make_plan([os.path.join(mixed, "shards", name) for name in names], config)
    assert [b["keys"] for b in batches(plan, config, 12)] == [b["keys"] for b in batches(local, config, 12)]
