"""The byte-level tokenizer: ids 0-255 are UTF-8 bytes, then a few reserved special tokens.

A byte vocabulary needs no trained merges and no downloaded files, and it encodes any text a
shard holds. Special tokens are never produced from text: a page that happens to contain the
string ``<｜end▁of▁sentence｜>`` stays bytes, and the chat template inserts the real tokens itself.
"""

from __future__ import annotations

BOS = "<｜begin▁of▁sentence｜>"
EOS = "<｜end▁of▁sentence｜>"
IMAGE = "<image_placeholder>"
PAD = "<｜pad｜>"
# Reserved so that a later change (e.g. grounding boxes) does not renumber the vocabulary.
SPECIALS = (BOS, EOS, IMAGE, PAD, "<｜reserved_0｜>", "<｜reserved_1｜>", "<｜reserved_2｜>", "<｜reserved_3｜>")
BYTES = 256
IGNORE = -100  # label of a position the loss skips (prompts, images, padding)


class ByteTokenizer:
    """UTF-8 bytes plus ``SPECIALS``; ``vocab_size`` is 264."""

    def __init__(self):
        self.special_ids = {name: BYTES + i for i, name in enumerate(SPECIALS)}
        self.bos_id = self.special_ids[BOS]
        self.eos_id = self.special_ids[EOS]
        self.image_id = self.special_ids[IMAGE]
        self.pad_id = self.special_ids[PAD]
        self.vocab_size = BYTES + len(SPECIALS)

    def encode(self, text: str) -> list[int]:
        """Text as byte ids; special-token strings inside it are plain bytes."""
        return list(text.encode("utf-8"))

    def decode(self, ids, collapse_images: bool = True) -> str:
        """Ids back to text; a run of image tokens reads as one ``<image_placeholder>`` (the form
        the prompt string has before expansion) unless ``collapse_images`` is off."""
        out, pending = [], bytearray()
        names = {value: name for name, value in self.special_ids.items()}
        previous = None
        for token in ids:
            token = int(token)
            if token < BYTES:
                pending.append(token)
            else:
                if pending:
                    out.append(pending.decode("utf-8", errors="replace"))
                    pending = bytearray()
                if not (collapse_images and token == self.image_id and previous == self.image_id):
                    out.append(names.get(token, ""))
            previous = token
        if pending:
            out.append(pending.decode("utf-8", errors="replace"))
        return "".join(out)
