"""`vlcurate chat-format FILE.json`: print the exact prompt the trainer builds for a conversation.

FILE.json is a conversation in DeepSeek-VL's form (a list of ``{"role", "content", "images"}``
messages, an optional leading System message), a sample's KEY.json (its ``conversation``), or a
list of either; ``-`` reads standard input. The output is the prompt string byte for byte, each
``<image_placeholder>`` once (``--expand`` repeats it to the model's image-token count);
``--labels`` prints instead the part the loss is taken on, one span a line.
"""

from __future__ import annotations

import argparse
import json
import sys

from vlcurate.training.chat import BadConversation, pieces, prompt
from vlcurate.training.model import ModelConfig
from vlcurate.training.train import at_least
from vlcurate.training.tokenizer import IMAGE


def _conversations(doc):
    if isinstance(doc, dict):
        return [doc.get("conversation")]
    if isinstance(doc, list) and doc and all(isinstance(item, dict) and "role" in item for item in doc):
        return [doc]
    if isinstance(doc, list):
        return [item.get("conversation") if isinstance(item, dict) else item for item in doc]
    return [doc]


def run(argv) -> int:
    from vlcurate.pipelines.flags import HelpFormatter

    ap = argparse.ArgumentParser(prog="vlcurate chat-format", description=__doc__, formatter_class=HelpFormatter)
    ap.add_argument("file", help="conversation JSON file, or - for standard input")
    ap.add_argument("--expand", action="store_true", help="repeat each <image_placeholder> to --image-tokens")
    ap.add_argument("--image-tokens", type=at_least(1), default=ModelConfig().image_tokens,
                    help="image tokens per <image_placeholder> with --expand (the bundled model's: 576)")
    ap.add_argument("--labels", action="store_true", help="print the trained spans (assistant text and end token)")
    args = ap.parse_args(argv)
    try:
        text = sys.stdin.read() if args.file == "-" else open(args.file, encoding="utf-8").read()
        conversations = _conversations(json.loads(text))
    except (OSError, ValueError) as error:
        print(f"vlcurate chat-format: {args.file}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
        return 2
    if not conversations:
        print(f"vlcurate chat-format: {args.file} holds no conversation (an empty list)", file=sys.stderr)
        return 1
    status = 0
    for i, conversation in enumerate(conversations):
        if i:
            print("\n" + "-" * 40)  # between conversations, never inside one
        try:
            if args.labels:
                parts = pieces(conversation)[0]
                spans, current = [], ""
                for piece in parts:
                    if piece.trained:
                        current += piece.text
                    elif current:
                        spans.append(current)
                        current = ""
                if current:
                    spans.append(current)
                sys.stdout.write("\n".join(repr(span) for span in spans) + "\n")
            else:
                out = prompt(conversation)
                sys.stdout.write(out.replace(IMAGE, IMAGE * args.image_tokens) if args.expand else out)
                sys.stdout.write("\n")
        except BadConversation as error:
            print(f"vlcurate chat-format: conversation {i}: {error}", file=sys.stderr)
            status = 1
    return status
