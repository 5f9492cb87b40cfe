"""Instruction (SFT) records in three common shapes -> one conversation in DeepSeek-VL's form.

DeepSeek-VL's form is a list of messages ``{"role": "User"|"Assistant"|"System", "content": str,
"images": [...]}`` where each ``<image_placeholder>`` in a content stands for the next image. In
a vlcurate sample, ``images`` holds indexes into the sample's images. Accepted records:

- DeepSeek-VL: ``{"conversation": [{"role": "User", "content": "<image_placeholder>...",
  "images": ["a.png"]}, {"role": "Assistant", "content": "..."}]}``
- LLaVA (and ShareGPT's from/value turns): ``{"image": "a.png" | [...], "conversations":
  [{"from": "human", "value": "<image>\\n..."}, {"from": "gpt", "value": "..."}]}``
- ShareGPT/OpenAI-style messages: ``{"messages": [{"role": "user", "content": "<image>..." |
  [{"type": "text", "text": ...}, {"type": "image", "image": "a.png"}, {"type": "image_url",
  "image_url": {"url": "data:..."}}]}, ...], "images": [...]}``

An image is a path (relative to the record's file, and never outside the image root) or a
``data:image/...;base64,`` URI; remote URLs are not fetched. Anything malformed is a ``Reject``.
This module is plain Python: the Beam stages are transforms/sources/records.py's.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterator, Mapping
from typing import Any

from vlcurate import __version__
from vlcurate.transforms.io.files import jsonl_lines, read_capped
from vlcurate.transforms.data.images import open_image, reencoded
from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.data.sample import Sample, dumps_json, make_key

PLACEHOLDER = "<image_placeholder>"
LLAVA_TAG = "<image>"
FORMATS = ("auto", "deepseek", "llava", "sharegpt")
_ROLES = {"user": "User", "human": "User", "assistant": "Assistant", "gpt": "Assistant", "system": "System",
          "User": "User", "Assistant": "Assistant", "System": "System"}
_DATA_URI = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class SftConfig:
    """Caps for untrusted instruction records and the images they name."""

    format: str = "auto"
    image_root: str = ""  # paths may not leave this folder; "" = the folder of the record's file
    max_record_bytes: int = 4 * 1024 * 1024
    max_file_bytes: int = 1024 * 1024 * 1024
    max_image_bytes: int = 32 * 1024 * 1024
    max_image_pixels: int = 40_000_000
    max_images: int = 16
    max_text_chars: int = 200_000

    def __post_init__(self):
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r} not in {FORMATS}")


@dataclasses.dataclass(frozen=True)
class SftRecord:
    """One line (or array element) of an instruction file, not yet parsed; ``problem`` is a
    (reason, detail) found while reading it (a line too long, or not UTF-8)."""

    uri: str
    locator: str  # "line N" (JSONL, 1-based) or "item N" (a JSON array, 0-based)
    text: str
    problem: tuple[str, str] | None = None


@dataclasses.dataclass(frozen=True)
class Conversation:
    """DeepSeek-VL messages whose ``images`` are still references (paths or data URIs)."""

    messages: tuple[dict[str, Any], ...]
    format: str

    @property
    def image_refs(self) -> list[str]:
        return [ref for message in self.messages for ref in message.get("images", ())]


# --- parsing the three shapes ------------------------------------------------------------------------


def parse_record(doc: Any, record_format: str = "auto") -> Conversation:
    """The conversation a decoded JSON record holds, in DeepSeek-VL form (images as references)."""
    if not isinstance(doc, Mapping):
        raise Reject("sft_malformed", f"a record must be a JSON object, not {type(doc).__name__}")
    if record_format == "auto":
        record_format = detect_format(doc)
    parse = {"deepseek": _from_deepseek, "llava": _from_llava, "sharegpt": _from_messages}[record_format]
    messages = parse(doc)
    check_conversation(messages)
    return Conversation(tuple(messages), record_format)


def detect_format(doc: Mapping) -> str:
    if "conversation" in doc:
        return "deepseek"
    if "conversations" in doc:
        return "llava"
    if "messages" in doc:
        return "sharegpt"
    raise Reject("sft_malformed", "no conversation, conversations or messages field")


def _from_deepseek(doc: Mapping) -> list[dict]:
    messages = []
    for turn in _turns(doc, "conversation"):
        images = turn.get("images", [])
        if not isinstance(images, list) or not all(isinstance(ref, str) for ref in images):
            raise Reject("sft_malformed", "a message's images must be a list of strings")
        messages.append(_message(turn.get("role"), turn.get("content"), images))
    return messages


def _from_llava(doc: Mapping) -> list[dict]:
    images = _image_list(doc.get("image", doc.get("images", [])))
    turns = [(turn.get("from"), turn.get("value")) for turn in _turns(doc, "conversations")]
    return _with_tagged_images(turns, images)


def _from_messages(doc: Mapping) -> list[dict]:
    images = _image_list(doc.get("images", []))
    turns = []
    for turn in _turns(doc, "messages"):
        content = turn.get("content")
        if isinstance(content, list):  # OpenAI-style parts: the image parts stand where they are
            content = "".join(_part_text(part, images) for part in content)
        turns.append((turn.get("role"), content))
    return _with_tagged_images(turns, images)


def _turns(doc: Mapping, field: str) -> list[Mapping]:
    turns = doc.get(field)
    if not isinstance(turns, list) or not all(isinstance(turn, Mapping) for turn in turns):
        raise Reject("sft_malformed", f"{field} must be a list of objects")
    return turns


def _image_list(value) -> list[str]:
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(ref, str) for ref in value):
        raise Reject("sft_malformed", "images must be a string or a list of strings")
    return list(value)


def _part_text(part, images: list[str]) -> str:
    """One OpenAI-style content part as text; an image part appends its reference to ``images``
    and becomes a tag (images listed beside the messages come first, in their own order)."""
    if not isinstance(part, Mapping):
        raise Reject("sft_malformed", "a content part must be an object")
    kind = part.get("type")
    if kind == "text" and isinstance(part.get("text"), str):
        return part["text"]
    if kind in ("image", "image_url"):
        ref = part.get("image") or part.get("url") or part.get("path")
        if kind == "image_url":
            url = part.get("image_url")
            ref = url.get("url") if isinstance(url, Mapping) else url
        if not isinstance(ref, str):
            raise Reject("sft_malformed", f"a {kind} part without its image")
        images.append(ref)
        return LLAVA_TAG
    raise Reject("sft_malformed", f"unknown content part type {kind!r}")


def _with_tagged_images(turns: list[tuple[Any, Any]], images: list[str]) -> list[dict]:
    """Messages from (role, text) turns whose ``<image>`` tags take ``images`` in order. LLaVA
    records often carry one image and no tag: it then goes in front of the first user turn."""
    tags = sum(text.count(LLAVA_TAG) for _, text in turns if isinstance(text, str))
    if images and tags == 0:
        first_user = next((i for i, (role, _) in enumerate(turns) if _ROLES.get(role) == "User"), None)
        if first_user is not None and isinstance(turns[first_user][1], str):
            role, text = turns[first_user]
            turns = [*turns[:first_user], (role, f"{LLAVA_TAG}\n{text}"), *turns[first_user + 1:]]
            tags = 1
    if tags != len(images):
        raise Reject("sft_image_mismatch", f"{tags} image tags for {len(images)} images")
    messages, remaining = [], list(images)
    for role, text in turns:
        if not isinstance(text, str):
            raise Reject("sft_malformed", "a message's content must be a string")
        count = text.count(LLAVA_TAG)
        mine, remaining = remaining[:count], remaining[count:]
        messages.append(_message(role, text.replace(LLAVA_TAG, PLACEHOLDER), mine))
    return messages


def _message(role, content, images: list[str]) -> dict:
    if role not in _ROLES:
        raise Reject("sft_malformed", f"unknown role {role!r}")
    if not isinstance(content, str):
        raise Reject("sft_malformed", "a message's content must be a string")
    message = {"role": _ROLES[role], "content": content}
    if images:
        message["images"] = list(images)
    return message


def check_conversation(messages: list[dict]) -> None:
    """An optional System message, then User and Assistant turns alternating, ending with a
    non-empty Assistant answer; as many placeholders as images in every message."""
    turns = messages[1:] if messages and messages[0]["role"] == "System" else messages
    if len(turns) < 2:
        raise Reject("sft_malformed", "a conversation needs a user turn and an assistant answer")
    for i, message in enumerate(turns):
        expected = "User" if i % 2 == 0 else "Assistant"
        if message["role"] != expected:
            raise Reject("sft_malformed", f"message {i + 1} is {message['role']}, expected {expected}")
    if len(turns) % 2 or not turns[-1]["content"].strip():
        raise Reject("sft_malformed", "the conversation must end with a non-empty assistant answer")
    for message in messages:
        if message["role"] != "User" and PLACEHOLDER in message["content"]:
            raise Reject("sft_image_mismatch", f"an image placeholder in a {message['role']} message")
        if message["content"].count(PLACEHOLDER) != len(message.get("images", ())):
            raise Reject("sft_image_mismatch", f"{message['content'].count(PLACEHOLDER)} placeholders for "
                                               f"{len(message.get('images', ()))} images in one message")


def as_record(conversation: Conversation, record_format: str) -> dict:
    """The conversation written back in one of the three shapes (what ``parse_record`` reads):
    for exporting vlcurate's SFT data to LLaVA or ShareGPT tools, and for round-trip tests."""
    messages = conversation.messages
    images = conversation.image_refs
    if record_format == "deepseek":
        return {"conversation": [dict(message) for message in messages]}
    tagged = [(m["role"], m["content"].replace(PLACEHOLDER, LLAVA_TAG)) for m in messages]
    if record_format == "llava":
        names = {"User": "human", "Assistant": "gpt", "System": "system"}
        record = {"conversations": [{"from": names[role], "value": text} for role, text in tagged]}
        if images:
            record["image"] = images[0] if len(images) == 1 else images
        return record
    if record_format == "sharegpt":
        record = {"messages": [{"role": role.lower(), "content": text} for role, text in tagged]}
        if images:
            record["images"] = images
        return record
    raise ValueError(f"format {record_format!r} not in {FORMATS[1:]}")


# --- images --------------------------------------------------------------------------------------------


def image_bytes(ref: str, record_uri: str, config: SftConfig) -> bytes:
    """The bytes a reference names: a data URI, or a file under the image root."""
    if _DATA_URI.match(ref):
        payload = ref.split(",", 1)[1]
        if len(payload) > config.max_image_bytes * 4 // 3 + 4:
            raise Reject("file_too_large", f"data URI over {config.max_image_bytes} bytes")
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as error:
            raise Reject("image_unreadable", f"bad base64 in a data URI: {error}") from error
    if "://" in ref or ref.startswith("data:"):
        raise Reject("sft_image_missing", f"{ref[:80]}: only local paths and data:image URIs are read")
    path = resolve_image_path(ref, record_uri, config.image_root)
    if "://" not in path and not os.path.isfile(path):
        raise Reject("sft_image_missing", f"{ref}: no such file")
    return read_capped(path, config.max_image_bytes)


def resolve_image_path(ref: str, record_uri: str, image_root: str = "") -> str:
    """``ref`` resolved against the record file's folder; it must stay under ``image_root`` (by
    default that folder), so that a hostile record cannot read ``/etc/passwd`` or ``../../keys``."""
    folder = posixpath.dirname(record_uri)
    root = image_root or folder
    if "://" in folder or "://" in root:  # gs:// and friends have no symlinks: compare normalised paths
        scheme, _, rest = folder.partition("://")
        target = f"{scheme}://{posixpath.normpath(posixpath.join(rest, ref))}"
        root_scheme, _, root_rest = root.partition("://")
        inside = target.startswith(f"{root_scheme}://{posixpath.normpath(root_rest)}/")
    else:
        target = os.path.realpath(os.path.join(folder, ref))
        inside = target.startswith(os.path.realpath(root) + os.sep)
    if not inside:
        raise Reject("sft_image_missing", f"{ref}: outside the image root {root}")
    return target


# --- the sample ----------------------------------------------------------------------------------------


def sft_sample(record: SftRecord, config: SftConfig) -> Sample:
    """One instruction record -> one ``sft`` sample (``interleaved`` with images, else ``text_only``)."""
    if record.problem:
        raise Reject(*record.problem)
    try:
        doc = json.loads(record.text)
    except ValueError as error:
        raise Reject("sft_malformed", f"not JSON: {error}") from error
    conversation = parse_record(doc, config.format)
    if sum(len(message["content"]) for message in conversation.messages) > config.max_text_chars:
        raise Reject("sft_malformed", f"more than {config.max_text_chars} characters of text")
    refs = conversation.image_refs
    if len(refs) > config.max_images:
        raise Reject("sft_malformed", f"{len(refs)} images, cap {config.max_images}")
    images = tuple(
        reencoded(*open_image(image_bytes(ref, record.uri, config), config.max_image_pixels)) for ref in refs
    )
    messages, next_index = [], 0
    for message in conversation.messages:
        message = dict(message)
        if "images" in message:
            count = len(message["images"])
            message["images"] = list(range(next_index, next_index + count))
            next_index += count
        messages.append(message)
    # The key is the content: the same conversation with the same pictures is one sample wherever
    # it appears, and the sink keeps one of its copies.
    identity = hashlib.sha256(dumps_json({"messages": messages, "images": [i.sha256 for i in images]}))
    return Sample(
        key=make_key("sft", identity.hexdigest()),
        source="sft",
        category="interleaved" if images else "text_only",
        uri=record.uri,
        locator=record.locator,
        images=images,
        text=flattened(messages),
        text_source="sft",
        conversation=messages,
        provenance={"vlcurate": __version__},
        meta={"sft": {"format": conversation.format, "turns": sum(m["role"] == "User" for m in messages)}},
    )


def flattened(messages: list[dict]) -> str:
    """The conversation as plain text (txt member): one "Role: content" paragraph per message."""
    return "\n\n".join(f"{m['role']}: {m['content'].strip()}" for m in messages)


def user_text(conversation: list[dict]) -> str:
    """What the user asked, placeholders removed: the text a use-case label is predicted from."""
    return "\n".join(m["content"].replace(PLACEHOLDER, " ").strip() for m in conversation if m["role"] == "User")


# --- files of records ------------------------------------------------------------------------------------


def read_records(uri: str, config: SftConfig) -> Iterator[SftRecord]:
    """The records of one file: a .json file's array items (the file read whole, under
    ``max_file_bytes``), or a .jsonl file's non-blank lines, streamed, each under ``max_record_bytes``."""
    if uri.lower().endswith(".json"):
        try:
            items = json.loads(read_capped(uri, config.max_file_bytes).decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            raise Reject("sft_malformed", f"not a JSON file: {error}") from error
        for i, item in enumerate(items if isinstance(items, list) else [items]):
            text = json.dumps(item, ensure_ascii=False)
            too_large = len(text.encode("utf-8")) > config.max_record_bytes
            yield SftRecord(uri, f"item {i}", "" if too_large else text,
                            ("record_too_large", f"over {config.max_record_bytes} bytes") if too_large else None)
        return
    for locator, line in jsonl_lines(uri, config.max_record_bytes):
        if line is None:
            yield SftRecord(uri, locator, "", ("record_too_large", f"over {config.max_record_bytes} bytes"))
            continue
        try:
            yield SftRecord(uri, locator, line.decode("utf-8"))
        except UnicodeDecodeError as error:
            yield SftRecord(uri, locator, "", ("sft_malformed", f"not UTF-8: {error}"))
