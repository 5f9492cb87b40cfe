"""`vlcurate chat-format`: print the exact prompt the trainer builds for a conversation.

    vlcurate chat-format FILE.json              a conversation, a sample's KEY.json, or a list of either
    vlcurate chat-format -                      the same, from standard input
    vlcurate chat-format DATASET --key KEY      the sample KEY of a dataset (its shard found in the index)
    vlcurate chat-format SHARD.tar --key KEY    the sample KEY of one shard
    vlcurate chat-format FILE.json --key KEY    the sample KEY of a file that lists samples' KEY.json

A conversation is DeepSeek-VL's list of ``{"role", "content", "images"}`` messages (an optional
leading System message), ``images`` as indexes into the sample's images or as file paths (the
documented DeepSeek-VL form: the paths stand for the sample's images in the order listed); both
give the same bytes. The output is the prompt string byte for byte, each ``<image_placeholder>``
once (``--expand`` repeats it to the model's image-token count); ``--labels`` prints instead the
part the loss is taken on, one span a line. A sample without a conversation (pretraining data) is
printed as the trainer reads it: an ``<image_placeholder>`` per image, then its text.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vlcurate.training.chat import BadConversation, pieces, prompt
from vlcurate.training.model import ModelConfig
from vlcurate.training.train import at_least
from vlcurate.training.tokenizer import EOS, IMAGE

PROG = "vlcurate chat-format"


class _Refused(Exception):
    """A one-line refusal: the message, and the exit status (2: usage, 1: not found or unreadable)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _conversations(doc):
    if isinstance(doc, dict):
        return [doc.get("conversation")]
    if isinstance(doc, list) and doc and all(isinstance(item, dict) and "role" in item for item in doc):
        return [doc]
    if isinstance(doc, list):
        return [item.get("conversation") if isinstance(item, dict) else item for item in doc]
    return [doc]


def _from_file(path: str, key: str | None) -> list:
    """The conversations of a JSON file (or standard input), or with ``key`` the sample's of that key."""
    try:
        doc = json.loads(sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read())
    except (OSError, ValueError) as error:
        raise _Refused(f"{path}: {getattr(error, 'strerror', None) or error}", 2) from error
    if key is None:
        return _conversations(doc)
    samples = doc if isinstance(doc, list) else [doc]
    found = [item for item in samples if isinstance(item, dict) and item.get("key") == key]
    if not found:
        raise _Refused(f"no sample {key} in {path}", 1)
    if found[0].get("conversation") is None:
        raise _Refused(f"sample {key} in {path} has no conversation (its text is in its txt member)", 1)
    return [found[0]["conversation"]]


def _from_shards(path: str, key: str | None) -> list:
    """The conversation of the sample ``key`` of a dataset folder or a shard."""
    from vlcurate.transforms.io.lookup import find_sample

    what = "a shard" if path.endswith(".tar") else "a dataset"
    if "://" not in path and not os.path.exists(path):
        raise _Refused(f"{path}: No such file or directory", 2)
    if key is None:
        raise _Refused(f"{path} is {what}: name the sample with --key KEY", 2)
    try:
        sample, _where = find_sample(path.rstrip("/") if what == "a dataset" else path, key)
    except (OSError, ValueError) as error:
        raise _Refused(f"{path}: {error}", 1) from error
    if sample is None:
        raise _Refused(f"no sample {key} in {path}", 1)
    if sample.conversation is not None:
        return [sample.conversation]
    return [{"plain": sample.text or "", "image_count": len(sample.images)}]  # as the trainer reads it


def _is_file(path: str) -> bool:
    """A JSON file (or standard input), not a shard or a dataset folder."""
    if path.endswith(".tar"):
        return False
    return path == "-" or path.endswith(".json") or ("://" not in path and os.path.isfile(path))


def run(argv) -> int:
    from vlcurate.pipelines.flags import HelpFormatter

    ap = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("file", help="conversation JSON file (- for standard input), a dataset folder or a shard (.tar)")
    ap.add_argument("--key", help="the sample to print (needed for a dataset or a shard)")
    ap.add_argument("--expand", action="store_true", help="repeat each <image_placeholder> to --image-tokens")
    ap.add_argument("--image-tokens", type=at_least(1), default=ModelConfig().image_tokens,
                    help="image tokens per <image_placeholder> with --expand (the bundled model's: 576)")
    ap.add_argument("--labels", action="store_true", help="print the trained spans (assistant text and end token)")
    args = ap.parse_args(argv)
    try:
        conversations = _from_file(args.file, args.key) if _is_file(args.file) else _from_shards(args.file, args.key)
    except _Refused as refused:
        print(f"{PROG}: {refused}", file=sys.stderr)
        return refused.status
    if not conversations:
        print(f"{PROG}: {args.file} holds no conversation (an empty list)", file=sys.stderr)
        return 1
    status = 0
    for i, conversation in enumerate(conversations):
        if i:
            print("\n" + "-" * 40)  # between conversations, never inside one
        try:
            sys.stdout.write(_render(conversation, args))
        except BadConversation as error:
            print(f"{PROG}: conversation {i}: {error}", file=sys.stderr)
            status = 1
    return status


def _render(conversation, args) -> str:
    """The prompt (or with --labels the trained spans, one a line) of one conversation."""
    if isinstance(conversation, dict) and "plain" in conversation:
        if args.labels:
            return repr(conversation["plain"] + EOS) + "\n"
        out = IMAGE * conversation["image_count"] + conversation["plain"]
    elif args.labels:
        spans, current = [], ""
        for piece in pieces(conversation)[0]:
            if piece.trained:
                current += piece.text
            elif current:
                spans.append(current)
                current = ""
        if current:
            spans.append(current)
        return "\n".join(repr(span) for span in spans) + "\n"
    else:
        out = prompt(conversation)
    return (out.replace(IMAGE, IMAGE * args.image_tokens) if args.expand else out) + "\n"
