"""DeepSeek-VL's two conversation forms (images as indexes, images as file paths) give the same
prompt, tokens and image order, in the template, in `vlcurate chat-format` (files, datasets and
shards by key) and in the trainer's reading of SFT samples; page samples with a KEY.md member are
read as before."""

from __future__ import annotations

import copy
import json

import pytest
from fixtures.training import TINY_IMAGE_TOKENS, pretraining_sample, sft_sample, text_picture, write_dataset

from vlcurate.training.chat import BadConversation, pieces, prompt
from vlcurate.training.chat_cli import run as chat_format
from vlcurate.training.data import DataConfig, format_record
from vlcurate.training.images import ImageConfig
from vlcurate.training.sources import _unknown_suffix, parse
from vlcurate.training.tokenizer import EOS, ByteTokenizer
from vlcurate.transforms.data.sample import Sample, make_key, split_member_name

# DeepSeek-VL's README example, two images over two user turns.
PATHS = [
    {"role": "User", "content": "<image_placeholder>Describe each stage of this image.", "images": ["./images/training_pipelines.jpg"]},
    {"role": "Assistant", "content": "Three stages: adaptor warm-up, joint pretraining, supervised fine-tuning."},
    {"role": "User", "content": "And <image_placeholder> this one, next to <image_placeholder>?",
     "images": ["./images/a.png", "./images/training_pipelines.jpg"]},
    {"role": "Assistant", "content": "A bar chart beside the same pipeline."},
]


def _indexed(conversation):
    """The same conversation with images as indexes: the paths, in order, are images 0, 1, 2."""
    out, next_index = copy.deepcopy(conversation), 0
    for message in out:
        if message.get("images"):
            count = len(message["images"])
            message["images"] = list(range(next_index, next_index + count))
            next_index += count
    return out


INDEXES = _indexed(PATHS)


def test_paths_and_indexes_give_the_same_prompt_and_image_order():
    assert INDEXES[2]["images"] == [1, 2]
    assert prompt(PATHS) == prompt(INDEXES)
    assert pieces(PATHS) == pieces(INDEXES) and pieces(PATHS)[1] == [0, 1, 2]


@pytest.mark.parametrize("conversation, why", [
    ([{"role": "User", "content": "<image_placeholder><image_placeholder>", "images": [0, "b.png"]},
      {"role": "Assistant", "content": "y"}], "neither indexes nor paths"),
    ([{"role": "User", "content": "<image_placeholder>", "images": ["a.png"]}, {"role": "Assistant", "content": "y"},
      {"role": "User", "content": "<image_placeholder>", "images": [0]}, {"role": "Assistant", "content": "z"}],
     "by index and another by path"),
    ([{"role": "User", "content": "<image_placeholder>", "images": [""]}, {"role": "Assistant", "content": "y"}],
     "neither"),
    ([{"role": "User", "content": "<image_placeholder>", "images": [True]}, {"role": "Assistant", "content": "y"}],
     "neither"),
])
def test_mixed_or_odd_image_lists_are_refused(conversation, why):
    with pytest.raises(BadConversation, match=why):
        prompt(conversation)


@pytest.mark.parametrize("flags", [[], ["--labels"], ["--expand", "--image-tokens", "3"]])
def test_chat_format_prints_the_same_bytes_for_both_forms(tmp_path, capfdbinary, flags):
    outputs = []
    for name, conversation in (("paths", PATHS), ("indexes", INDEXES)):
        path = tmp_path / f"{name}.json"
        path.write_text(json.dumps(conversation))
        assert chat_format([str(path), *flags]) == 0
        outputs.append(capfdbinary.readouterr().out)
    assert outputs[0] == outputs[1] and outputs[0]
    if not flags:
        assert outputs[0].count(b"<image_placeholder>") == 3 and b"Describe each stage" in outputs[0]


# --- datasets and shards by key ------------------------------------------------------------------


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("chat"))
    two_images = Sample(key=make_key("sft", "paths"), source="sft", category="caption", uri="mem://sft/paths",
                        locator="0", images=(text_picture("one", 1), text_picture("two", 2), text_picture("three", 3)),
                        conversation=PATHS)
    samples = [sft_sample(n, True) for n in range(6)] + [pretraining_sample("document_ocr", 1), two_images]
    manifest = write_dataset(folder, samples, prefix="c", per_shard=3)
    return folder, manifest, samples


def _printed(capsys, *argv) -> tuple[int, str, str]:
    status = chat_format([str(arg) for arg in argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_a_dataset_sample_and_a_shard_sample_print_as_their_json_does(dataset, tmp_path, capsys):
    folder, manifest, samples = dataset
    for sample in samples[:6] + samples[-1:]:
        as_file = tmp_path / "sample.json"
        as_file.write_text(json.dumps(sample.to_json()))
        expected = _printed(capsys, as_file)
        assert expected[0] == 0
        assert _printed(capsys, folder, "--key", sample.key) == expected
        shard = next(f"{folder}/{record['name']}" for record in manifest["shards"]
                     if _printed(capsys, f"{folder}/{record['name']}", "--key", sample.key)[0] == 0)
        assert _printed(capsys, shard, "--key", sample.key) == expected
        listing = tmp_path / "samples.json"
        listing.write_text(json.dumps([s.to_json() for s in samples if s.conversation]))
        assert _printed(capsys, listing, "--key", sample.key) == expected


def test_a_pretraining_sample_prints_as_the_trainer_reads_it(dataset, capsys):
    folder, _, samples = dataset
    page = samples[6]
    assert _printed(capsys, folder, "--key", page.key) == (0, "<image_placeholder>" + page.text + "\n", "")
    assert _printed(capsys, folder, "--key", page.key, "--labels")[1] == repr(page.text + EOS) + "\n"


def test_chat_format_mistakes_are_one_line(dataset, tmp_path, capsys):
    folder, manifest, _ = dataset
    shard = f"{folder}/{manifest['shards'][0]['name']}"
    cases = [
        ((folder,), 2, f"{folder} is a dataset: name the sample with --key KEY"),
        ((shard,), 2, f"{shard} is a shard: name the sample with --key KEY"),
        ((tmp_path / "nothing", "--key", "sft-x"), 2, f"{tmp_path / 'nothing'}: No such file or directory"),
        ((folder, "--key", "sft-000000000000000000000000"), 1, f"no sample sft-000000000000000000000000 in {folder}"),
        ((shard, "--key", "sft-000000000000000000000000"), 1, f"no sample sft-000000000000000000000000 in {shard}"),
        ((tmp_path, "--key", "sft-x"), 1, None),  # a folder that is no dataset: its manifest is named
    ]
    for argv, status, message in cases:
        got, out, err = _printed(capsys, *argv)
        assert (got, out) == (status, "") and len(err.splitlines()) == 1, (argv, err)
        assert err == f"vlcurate chat-format: {message}\n" if message else "manifest.json" in err
    (tmp_path / "page.json").write_text(json.dumps(pretraining_sample("document_ocr", 2).to_json()))
    key = pretraining_sample("document_ocr", 2).key
    assert _printed(capsys, tmp_path / "page.json", "--key", key)[:2] == (1, "")


# --- the trainer ---------------------------------------------------------------------------------------


def _members(sample: Sample) -> dict:
    return {split_member_name(name)[1]: data for name, data in sample.members()}


def test_the_trainer_reads_both_forms_to_the_same_tokens_and_images():
    images = (text_picture("one", 1), text_picture("two", 2), text_picture("three", 3))
    config = DataConfig(stage=3, image=ImageConfig(32, 64), image_tokens=TINY_IMAGE_TOKENS, max_len=4096)
    formatted = []
    for conversation in (PATHS, INDEXES):
        sample = Sample(key=make_key("sft", "forms"), source="sft", category="caption", uri="mem://x", locator="0",
                        images=images, conversation=conversation)
        record = parse(sample.key, _members(sample))
        ids, labels, low, high = format_record(record, config, ByteTokenizer())
        formatted.append((ids, labels, [a.tolist() for a in low], [b.tolist() for b in high]))
    assert formatted[0] == formatted[1] and len(formatted[0][2]) == 3


def test_a_page_with_a_markdown_member_is_read_as_before():
    page = pretraining_sample("document_ocr", 3)
    with_md = Sample(**{**page.__dict__, "markdown": "# Title\n\n" + page.text + "\n"})
    members = _members(with_md)
    assert "md" in members and _unknown_suffix(members) is None
    assert parse(page.key, members) == parse(page.key, _members(page))
