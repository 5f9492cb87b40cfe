"""DeepSeek-VL's "deepseek" chat template, and the plain template for pretraining samples.

The prompt string is built exactly as DeepSeek-VL's ``Conversation.get_prompt`` does for
``SeparatorStyle.DeepSeek`` (sep ``"\\n\\n"``, sep2 ``<｜end▁of▁sentence｜>``) followed by the
processor's ``.strip()``:

    {system}\\n\\nUser: {user}\\n\\nAssistant: {assistant}<｜end▁of▁sentence｜>User: ...

Tokens are built from the same pieces, in the same order, so the ids decode back to that string
(with each expanded image collapsed to one ``<image_placeholder>``) and the labels can mark
exactly the assistant's text and its end token.
"""

from __future__ import annotations

import dataclasses

from vlcurate.training.tokenizer import EOS, IGNORE, IMAGE, ByteTokenizer

DEFAULT_SYSTEM = (
    "You are a helpful language and vision assistant. You are able to understand the visual content "
    "that the user provides, and assist the user with a variety of tasks using natural language."
)
ROLES = ("User", "Assistant")
SEP, SEP2 = "\n\n", EOS


class BadConversation(ValueError):
    """A conversation the template cannot render (roles out of turn, images not matching)."""


@dataclasses.dataclass(frozen=True)
class Piece:
    """One span of the prompt: its text, and whether the loss is taken on it."""

    text: str
    trained: bool = False
    user: bool = False  # user text: its <image_placeholder>s become image tokens
    end: bool = False  # the end-of-sentence token that closes an assistant turn


@dataclasses.dataclass(frozen=True)
class Formatted:
    """A sample ready for the model: ids, labels (IGNORE where no loss), and the image order."""

    ids: list[int]
    labels: list[int]
    images: list[int]  # indexes into the sample's images, in the order their tokens appear


def normalise(conversation) -> tuple[str, list[tuple[str, str, list[int]]]]:
    """(system prompt, [(role, stripped content, image indexes)]) from DeepSeek-VL's message list.

    A leading ``System`` message is the system prompt (empty content: no system prompt at all);
    without one the default is used. Roles must alternate User, Assistant, starting with User.
    A message's ``images`` are indexes into the sample's images (a vlcurate sample's form), or
    file paths (DeepSeek-VL's documented form), which stand for the sample's images in the order
    they are listed: the first path is image 0, the next one image 1, across the messages.
    """
    if not isinstance(conversation, list) or not conversation:
        raise BadConversation("conversation must be a non-empty list of messages")
    messages = list(conversation)
    system = DEFAULT_SYSTEM
    if isinstance(messages[0], dict) and str(messages[0].get("role", "")).lower() == "system":
        system = str(messages.pop(0).get("content") or "")
    turns = []
    forms = set()
    next_image = 0
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise BadConversation(f"message {i} is not an object")
        role = str(message.get("role", "")).capitalize()
        if role != ROLES[i % 2]:
            raise BadConversation(f"message {i} has role {message.get('role')!r}, expected {ROLES[i % 2]}")
        content = message.get("content") or ""
        if not isinstance(content, str):
            raise BadConversation(f"message {i} content is not a string")
        images = message.get("images") or []
        if not isinstance(images, list):
            raise BadConversation(f"message {i} has bad images {images!r} (not a list)")
        if images and all(isinstance(path, str) and path for path in images):
            forms.add("paths")
            images = list(range(next_image, next_image + len(images)))
        elif all(isinstance(index, int) and not isinstance(index, bool) and index >= 0 for index in images):
            forms.update(["indexes"] if images else [])
        else:
            raise BadConversation(f"message {i} has bad images {images!r} (neither indexes nor paths)")
        if len(forms) > 1:
            raise BadConversation(f"message {i} lists images by index and another by path: use one form")
        next_image += len(images)
        turns.append((role, content.strip(), list(images)))
    return system, turns


def pieces(conversation) -> tuple[list[Piece], list[int]]:
    """The prompt as pieces (assistant text and its end token trained) and the image order."""
    system, turns = normalise(conversation)
    out = [Piece(system + SEP)] if system else []
    image_order: list[int] = []
    for i, (role, content, images) in enumerate(turns):
        if content.count(IMAGE) != len(images):
            raise BadConversation(
                f"message {i} has {content.count(IMAGE)} {IMAGE} but lists {len(images)} images")
        image_order.extend(images)
        if not content:
            out.append(Piece(role + ":"))
        elif role == "User":
            out.append(Piece(f"User: {content}{SEP}", user=True))
        else:
            out.extend([Piece("Assistant: "), Piece(content, True), Piece(SEP2, True, end=True)])
    # The processor strips the whole prompt: only the ends can carry whitespace.
    out[0] = dataclasses.replace(out[0], text=out[0].text.lstrip())
    out[-1] = dataclasses.replace(out[-1], text=out[-1].text.rstrip())
    return [piece for piece in out if piece.text], image_order


def prompt(conversation) -> str:
    """The exact prompt string DeepSeek-VL builds for a conversation (images not expanded)."""
    return "".join(piece.text for piece in pieces(conversation)[0])


def _encode_piece(piece: Piece, tokenizer: ByteTokenizer, image_tokens: int) -> list[int]:
    """Bytes of the piece's text; in user text each ``<image_placeholder>`` becomes the image's
    tokens; the assistant's end piece is the end token."""
    text = piece.text
    if piece.end:
        return [tokenizer.eos_id]
    if not piece.user:
        return tokenizer.encode(text)
    ids: list[int] = []
    parts = text.split(IMAGE)
    for j, part in enumerate(parts):
        ids.extend(tokenizer.encode(part))
        if j < len(parts) - 1:
            ids.extend([tokenizer.image_id] * image_tokens)
    return ids


def format_conversation(conversation, tokenizer: ByteTokenizer, image_tokens: int) -> Formatted:
    """Ids and labels of an SFT sample: BOS, then the prompt; loss on assistant text and EOS."""
    parts, image_order = pieces(conversation)
    ids, labels = [tokenizer.bos_id], [IGNORE]
    for piece in parts:
        piece_ids = _encode_piece(piece, tokenizer, image_tokens)
        ids.extend(piece_ids)
        labels.extend(piece_ids if piece.trained else [IGNORE] * len(piece_ids))
    return Formatted(ids, labels, image_order)


def format_plain(text: str, image_count: int, tokenizer: ByteTokenizer, image_tokens: int) -> Formatted:
    """A pretraining sample (page text, OCR, code, caption, plain text): BOS, the images, the
    text, EOS; loss on the text and EOS."""
    body = tokenizer.encode(text) + [tokenizer.eos_id]
    head = [tokenizer.bos_id] + [tokenizer.image_id] * (image_tokens * image_count)
    return Formatted(head + body, [IGNORE] * len(head) + body, list(range(image_count)))


def format_interleaved(text: str, image_count: int, tokenizer: ByteTokenizer, image_tokens: int) -> Formatted:
    """An interleaved pretraining sample (a document's text with an ``<image_placeholder>`` at each
    image's place, DeepSeek-VL's interleaved form): BOS, the text with each placeholder expanded
    to its image's tokens, EOS; loss on the text and EOS, never on image tokens. The placeholders
    must be exactly the images."""
    parts = text.split(IMAGE)
    if len(parts) - 1 != image_count:
        raise BadConversation(f"{len(parts) - 1} {IMAGE} for {image_count} images")
    ids, labels = [tokenizer.bos_id], [IGNORE]
    for j, part in enumerate(parts):
        piece = tokenizer.encode(part)
        ids.extend(piece)
        labels.extend(piece)
        if j < len(parts) - 1:
            ids.extend([tokenizer.image_id] * image_tokens)
            labels.extend([IGNORE] * image_tokens)
    ids.append(tokenizer.eos_id)
    labels.append(tokenizer.eos_id)
    return Formatted(ids, labels, list(range(image_count)))
