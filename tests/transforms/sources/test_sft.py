"""Instruction records: the three shapes into DeepSeek-VL's form and back, images, and bad records."""

from __future__ import annotations

import base64
import io
import json
import os

import pytest
from PIL import Image as PILImage

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.sources.sft import (
    PLACEHOLDER, Conversation, SftConfig, SftRecord, as_record, parse_record, read_records, sft_sample, user_text,
)


def png(color="red", size=(24, 16), **save) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", size, color).save(buffer, "PNG", **save)
    return buffer.getvalue()


def data_uri(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


# --- the three shapes ----------------------------------------------------------------------------------


def test_llava_record_becomes_deepseek_form():
    record = {"id": "1", "image": "cat.png", "conversations": [
        {"from": "human", "value": "<image>\nWhat animal is this?"},
        {"from": "gpt", "value": "A cat."},
        {"from": "human", "value": "What colour is it?"},
        {"from": "gpt", "value": "Orange."},
    ]}
    conversation = parse_record(record)
    assert conversation.format == "llava"
    assert list(conversation.messages) == [
        {"role": "User", "content": f"{PLACEHOLDER}\nWhat animal is this?", "images": ["cat.png"]},
        {"role": "Assistant", "content": "A cat."},
        {"role": "User", "content": "What colour is it?"},
        {"role": "Assistant", "content": "Orange."},
    ]


def test_llava_record_without_an_image_tag_gets_it_before_the_first_question():
    record = {"image": "a.png", "conversations": [{"from": "human", "value": "Describe."}, {"from": "gpt", "value": "A."}]}
    assert parse_record(record).messages[0] == {"role": "User", "content": f"{PLACEHOLDER}\nDescribe.", "images": ["a.png"]}


def test_sharegpt_messages_with_content_parts_keep_the_image_where_it_stands():
    record = {"messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "text", "text": "Compare "},
            {"type": "image", "image": "a.png"},
            {"type": "text", "text": " with "},
            {"type": "image_url", "image_url": {"url": "b.png"}},
        ]},
        {"role": "assistant", "content": "The second is darker."},
    ]}
    conversation = parse_record(record)
    assert conversation.format == "sharegpt"
    assert list(conversation.messages) == [
        {"role": "System", "content": "Be brief."},
        {"role": "User", "content": f"Compare {PLACEHOLDER} with {PLACEHOLDER}", "images": ["a.png", "b.png"]},
        {"role": "Assistant", "content": "The second is darker."},
    ]
    assert user_text(list(conversation.messages)).split() == ["Compare", "with"]


def test_sharegpt_messages_with_image_tags_and_an_image_list():
    record = {"messages": [{"role": "user", "content": "<image><image>Which is bigger?"},
                           {"role": "assistant", "content": "The first."}], "images": ["a.png", "b.png"]}
    assert parse_record(record).messages[0]["images"] == ["a.png", "b.png"]


CONVERSATIONS = [
    (  # text only
        {"role": "User", "content": "What is 2 + 2?"},
        {"role": "Assistant", "content": "4."},
    ),
    (  # one image, a system prompt
        {"role": "System", "content": "You answer in French."},
        {"role": "User", "content": f"{PLACEHOLDER}What is this?", "images": ["x/cat.png"]},
        {"role": "Assistant", "content": "Un chat."},
    ),
    (  # images in two turns, two in one message
        {"role": "User", "content": f"{PLACEHOLDER}{PLACEHOLDER}Same bird?", "images": ["a.png", "b.png"]},
        {"role": "Assistant", "content": "No."},
        {"role": "User", "content": f"And this one? {PLACEHOLDER}", "images": ["c.png"]},
        {"role": "Assistant", "content": "Yes, the same as the first."},
    ),
]


@pytest.mark.parametrize("record_format", ["deepseek", "llava", "sharegpt"])
@pytest.mark.parametrize("messages", CONVERSATIONS, ids=["text", "one-image-system", "three-images"])
def test_every_shape_round_trips(messages, record_format):
    conversation = Conversation(messages, record_format)
    record = json.loads(json.dumps(as_record(conversation, record_format)))
    assert parse_record(record, record_format) == conversation
    assert parse_record(record) == conversation  # and auto-detection picks the same shape


@pytest.mark.parametrize("record, reason", [
    ([1, 2], "sft_malformed"),
    ({"text": "hello"}, "sft_malformed"),
    ({"conversation": "User: hi"}, "sft_malformed"),
    ({"conversation": [{"role": "Robot", "content": "hi"}, {"role": "Assistant", "content": "x"}]}, "sft_malformed"),
    ({"conversation": [{"role": "Assistant", "content": "x"}, {"role": "User", "content": "hi"}]}, "sft_malformed"),
    ({"conversation": [{"role": "User", "content": "hi"}]}, "sft_malformed"),
    ({"conversation": [{"role": "User", "content": "hi"}, {"role": "Assistant", "content": "  "}]}, "sft_malformed"),
    ({"conversation": [{"role": "User", "content": 3}, {"role": "Assistant", "content": "x"}]}, "sft_malformed"),
    ({"conversation": [{"role": "User", "content": f"{PLACEHOLDER}hi"}, {"role": "Assistant", "content": "x"}]},
     "sft_image_mismatch"),
    ({"conversation": [{"role": "User", "content": "hi", "images": ["a.png"]},
                       {"role": "Assistant", "content": "x"}]}, "sft_image_mismatch"),
    ({"conversation": [{"role": "User", "content": "hi"},
                       {"role": "Assistant", "content": f"{PLACEHOLDER}", "images": ["a.png"]}]}, "sft_image_mismatch"),
    ({"image": ["a.png", "b.png"], "conversations": [{"from": "human", "value": "<image> hi"},
                                                     {"from": "gpt", "value": "x"}]}, "sft_image_mismatch"),
    ({"messages": [{"role": "user", "content": [{"type": "audio"}]}, {"role": "assistant", "content": "x"}]},
     "sft_malformed"),
], ids=["not-object", "no-conversation", "not-a-list", "bad-role", "assistant-first", "no-answer", "empty-answer",
        "content-not-string", "placeholder-without-image", "image-without-placeholder", "image-in-answer",
        "two-images-one-tag", "unknown-part"])
def test_malformed_records_are_rejected_with_their_reason(record, reason):
    with pytest.raises(Reject) as caught:
        parse_record(record)
    assert caught.value.reason == reason


# --- records and their images ----------------------------------------------------------------------------


def record_line(messages, images=()) -> str:
    return json.dumps({"conversation": [dict(m, images=list(images)) if PLACEHOLDER in m["content"] else m
                                        for m in messages]})


QUESTION = [{"role": "User", "content": f"{PLACEHOLDER}What colour?"}, {"role": "Assistant", "content": "Red."}]


def test_a_record_becomes_an_sft_sample_with_indexed_images(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "red.png").write_bytes(png())
    uri = str(tmp_path / "data.jsonl")
    sample = sft_sample(SftRecord(uri, "line 1", record_line(QUESTION, ["img/red.png"])), SftConfig())
    assert (sample.source, sample.category, sample.locator) == ("sft", "interleaved", "line 1")
    assert sample.conversation == [
        {"role": "User", "content": f"{PLACEHOLDER}What colour?", "images": [0]},
        {"role": "Assistant", "content": "Red."},
    ]
    assert [(i.format, i.width, i.height) for i in sample.images] == [("png", 24, 16)]
    assert sample.text == f"User: {PLACEHOLDER}What colour?\n\nAssistant: Red."
    # The key is the content: the same picture given as a data URI, in another file, is the same sample.
    again = sft_sample(SftRecord(str(tmp_path / "other.jsonl"), "line 9", record_line(QUESTION, [data_uri(png())])),
                       SftConfig())
    assert again.key == sample.key and again.images == sample.images
    text_only = sft_sample(SftRecord(uri, "line 2", json.dumps({"conversation": CONVERSATIONS[0]})), SftConfig())
    assert (text_only.category, text_only.images) == ("text_only", ())


def test_image_metadata_is_not_carried_into_the_dataset(tmp_path):
    exif = PILImage.Exif()
    exif[0x010F] = "SecretCam"  # camera make
    buffer = io.BytesIO()
    PILImage.new("RGB", (20, 10), "blue").save(buffer, "JPEG", exif=exif.tobytes())
    (tmp_path / "photo.jpg").write_bytes(buffer.getvalue())
    sample = sft_sample(SftRecord(str(tmp_path / "d.jsonl"), "line 1", record_line(QUESTION, ["photo.jpg"])), SftConfig())
    assert sample.images[0].format == "jpeg" and b"SecretCam" not in sample.images[0].data


@pytest.mark.parametrize("ref, reason", [
    ("../outside.png", "sft_image_missing"),
    ("/etc/passwd", "sft_image_missing"),
    ("escape/link.png", "sft_image_missing"),
    ("missing.png", "sft_image_missing"),
    ("https://example.com/a.png", "sft_image_missing"),
    ("not-an-image.png", "image_unreadable"),
    ("huge.png", "image_too_large"),
    ("data:image/png;base64,@@@@", "image_unreadable"),
], ids=["dot-dot", "absolute", "symlink-out", "missing", "remote", "not-image", "too-many-pixels", "bad-base64"])
def test_bad_image_references_are_rejected(tmp_path, ref, reason):
    data = tmp_path / "data"
    data.mkdir()
    (tmp_path / "outside.png").write_bytes(png())
    (data / "escape").mkdir()
    os.symlink(tmp_path / "outside.png", data / "escape" / "link.png")
    (data / "not-an-image.png").write_bytes(b"hello")
    (data / "huge.png").write_bytes(png(size=(300, 300)))
    record = SftRecord(str(data / "d.jsonl"), "line 1", record_line(QUESTION, [ref]))
    with pytest.raises(Reject) as caught:
        sft_sample(record, SftConfig(max_image_pixels=200 * 200))
    assert caught.value.reason == reason


def test_an_image_root_lets_records_name_images_beside_their_folder(tmp_path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "red.png").write_bytes(png())
    (tmp_path / "records").mkdir()
    record = SftRecord(str(tmp_path / "records" / "d.jsonl"), "line 1", record_line(QUESTION, ["../images/red.png"]))
    with pytest.raises(Reject):
        sft_sample(record, SftConfig())
    assert sft_sample(record, SftConfig(image_root=str(tmp_path))).images[0].width == 24


def test_jsonl_lines_are_streamed_with_a_cap_per_line(tmp_path):
    path = tmp_path / "d.jsonl"
    long_line = json.dumps({"conversation": [{"role": "User", "content": "x" * 5000},
                                             {"role": "Assistant", "content": "y"}]})
    path.write_bytes(b"\n".join([
        json.dumps({"conversation": CONVERSATIONS[0]}).encode(),
        b"",
        long_line.encode(),
        b"\xff\xfe not utf-8",
        b"{not json",
        json.dumps({"conversation": CONVERSATIONS[0]}).encode(),
    ]) + b"\n")
    config = SftConfig(max_record_bytes=1000)
    records = list(read_records(str(path), config))
    assert [r.locator for r in records] == ["line 1", "line 3", "line 4", "line 5", "line 6"]
    assert [r.problem[0] if r.problem else None for r in records] == [
        None, "record_too_large", "sft_malformed", None, None]
    outcomes = []
    for record in records:
        try:
            outcomes.append(sft_sample(record, config).category)
        except Reject as reject:
            outcomes.append(reject.reason)
    assert outcomes == ["text_only", "record_too_large", "sft_malformed", "sft_malformed", "text_only"]


def test_a_json_file_holds_an_array_of_records(tmp_path):
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"conversation": CONVERSATIONS[0]}, as_record(Conversation(CONVERSATIONS[0], "llava"),
                                                                              "llava")]))
    records = list(read_records(str(path), SftConfig()))
    assert [r.locator for r in records] == ["item 0", "item 1"]
    samples = [sft_sample(r, SftConfig()) for r in records]
    assert samples[0].key == samples[1].key  # the same conversation in two shapes is one sample
    path.write_text("[{")
    with pytest.raises(Reject) as caught:
        list(read_records(str(path), SftConfig()))
    assert caught.value.reason == "sft_malformed"
