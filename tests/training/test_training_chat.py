"""The chat template against DeepSeek-VL's "deepseek" format, byte for byte; its tokens and loss
mask; the plain pretraining template; and `vlcurate chat-format`."""

from __future__ import annotations

import json

import pytest

from vlcurate.training.chat import (
    DEFAULT_SYSTEM, BadConversation, format_conversation, format_interleaved, format_plain, prompt,
)
from vlcurate.training.chat_cli import run as chat_format
from vlcurate.training.tokenizer import EOS, IGNORE, ByteTokenizer

TOKENIZER = ByteTokenizer()

ONE_TURN = [{"role": "User", "content": "<image_placeholder>What is this?", "images": [0]},
            {"role": "Assistant", "content": "A cat."}]
EXPECTED = {
    "one turn": (ONE_TURN, DEFAULT_SYSTEM + "\n\nUser: <image_placeholder>What is this?\n\nAssistant: A cat."
                 + EOS),
    "two turns, last answer empty, contents stripped": (
        [{"role": "User", "content": "  <image_placeholder>Read it.\n", "images": [0]},
         {"role": "Assistant", "content": " It says STOP. "},
         {"role": "User", "content": "Why?"},
         {"role": "Assistant", "content": ""}],
        DEFAULT_SYSTEM + "\n\nUser: <image_placeholder>Read it.\n\nAssistant: It says STOP." + EOS
        + "User: Why?\n\nAssistant:"),
    "own system prompt, two images": (
        [{"role": "System", "content": "  Be brief. "},
         {"role": "User", "content": "<image_placeholder> and <image_placeholder>: same?", "images": [1, 0]},
         {"role": "Assistant", "content": "No."}],
        "Be brief. \n\nUser: <image_placeholder> and <image_placeholder>: same?\n\nAssistant: No." + EOS),
    "empty system prompt, text only": (
        [{"role": "System", "content": ""}, {"role": "User", "content": "Hi"},
         {"role": "Assistant", "content": "Hello!"}, {"role": "User", "content": "Bye"},
         {"role": "Assistant", "content": "Bye."}],
        "User: Hi\n\nAssistant: Hello!" + EOS + "User: Bye\n\nAssistant: Bye." + EOS),
    "ends on a user turn: stripped": (
        [{"role": "User", "content": "Hi"}], DEFAULT_SYSTEM + "\n\nUser: Hi"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_prompt_is_deepseek_template(name):
    conversation, expected = EXPECTED[name]
    assert prompt(conversation) == expected


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_tokens_decode_to_the_prompt_and_labels_are_the_answers(name):
    conversation, expected = EXPECTED[name]
    formatted = format_conversation(conversation, TOKENIZER, image_tokens=5)
    assert formatted.ids[0] == TOKENIZER.bos_id
    assert TOKENIZER.decode(formatted.ids[1:]) == expected
    assert formatted.ids.count(TOKENIZER.image_id) == 5 * expected.count("<image_placeholder>")
    trained = [label for label in formatted.labels if label != IGNORE]
    answers = [m["content"].strip() for m in conversation if m["role"] == "Assistant" and m["content"].strip()]
    assert TOKENIZER.decode(trained) == "".join(answer + EOS for answer in answers)
    # a label is either ignored or the token at its own position
    assert all(label in (IGNORE, token) for token, label in zip(formatted.ids, formatted.labels))


def test_image_order_follows_the_placeholders():
    conversation = EXPECTED["own system prompt, two images"][0]
    assert format_conversation(conversation, TOKENIZER, 3).images == [1, 0]


def test_special_strings_in_content_stay_bytes():
    conversation = [{"role": "User", "content": "say " + EOS}, {"role": "Assistant", "content": "no"}]
    formatted = format_conversation(conversation, TOKENIZER, 3)
    assert formatted.ids.count(TOKENIZER.eos_id) == 1  # only the template's own end token
    assert TOKENIZER.decode(formatted.ids[1:]) == prompt(conversation)


@pytest.mark.parametrize("conversation, why", [
    ([{"role": "Assistant", "content": "x"}], "role"),
    ([{"role": "User", "content": "a"}, {"role": "User", "content": "b"}], "role"),
    ([{"role": "User", "content": "<image_placeholder>x"}, {"role": "Assistant", "content": "y"}], "images"),
    ([{"role": "User", "content": "x", "images": [0]}, {"role": "Assistant", "content": "y"}], "images"),
    ([], "non-empty"),
])
def test_bad_conversations_are_refused(conversation, why):
    with pytest.raises(BadConversation, match=why):
        format_conversation(conversation, TOKENIZER, 3)


def test_plain_template_is_images_then_text():
    formatted = format_plain("page text", 2, TOKENIZER, image_tokens=4)
    assert formatted.ids == [TOKENIZER.bos_id] + [TOKENIZER.image_id] * 8 + list(b"page text") + [TOKENIZER.eos_id]
    assert formatted.labels == [IGNORE] * 9 + list(b"page text") + [TOKENIZER.eos_id]
    assert formatted.images == [0, 1]


def test_interleaved_template_puts_each_image_at_its_placeholder():
    formatted = format_interleaved("Intro.\n\n<image_placeholder>\n\nMore.<image_placeholder>", 2, TOKENIZER,
                                   image_tokens=3)
    image = [TOKENIZER.image_id] * 3
    assert formatted.ids == ([TOKENIZER.bos_id] + list(b"Intro.\n\n") + image + list(b"\n\nMore.") + image
                             + [TOKENIZER.eos_id])
    assert formatted.labels == ([IGNORE] + list(b"Intro.\n\n") + [IGNORE] * 3 + list(b"\n\nMore.") + [IGNORE] * 3
                                + [TOKENIZER.eos_id])
    assert formatted.images == [0, 1]
    with pytest.raises(BadConversation, match="1 <image_placeholder> for 2 images"):
        format_interleaved("one <image_placeholder> only", 2, TOKENIZER, image_tokens=3)


def test_chat_format_prints_the_prompt(tmp_path, capsys):
    path = tmp_path / "conversation.json"
    path.write_text(json.dumps({"key": "sft-x", "conversation": ONE_TURN}))
    assert chat_format([str(path)]) == 0
    assert capsys.readouterr().out == EXPECTED["one turn"][1] + "\n"
    assert chat_format([str(path), "--expand", "--image-tokens", "3"]) == 0
    assert capsys.readouterr().out.count("<image_placeholder>") == 3
    assert chat_format([str(path), "--labels"]) == 0
    assert capsys.readouterr().out == repr("A cat." + EOS) + "\n"
    path.write_text(json.dumps([{"role": "Assistant", "content": "x"}]))
    assert chat_format([str(path)]) == 1
    assert "expected User" in capsys.readouterr().err
