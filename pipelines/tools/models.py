"""`vlcurate models fetch clip --model M --pretrained TAG --output PATH`: weights for offline runs.

On a machine with network, open_clip downloads the pretrained weights once; they are written as a
plain state dict (torch.save of tensors, loadable with weights_only=True) and their sha256 is
printed, for `--clip-checkpoint PATH` on machines without network.
"""

from __future__ import annotations

import os
import sys

from vlcurate.transforms.io.files import file_sha256
from vlcurate.pipelines.flags import ToolParser


def fetch_clip(model: str, pretrained: str, output: str) -> str:
    """Download ``model``/``pretrained`` through open_clip, save its state dict; returns the sha256."""
    import open_clip
    import torch

    weights = open_clip.create_model(model, pretrained=pretrained).state_dict()
    folder = os.path.dirname(os.path.abspath(output))
    os.makedirs(folder, exist_ok=True)
    temporary = f"{output}.partial"
    torch.save(weights, temporary)
    os.replace(temporary, output)
    return file_sha256(output)


def run(argv=None) -> None:
    parser = ToolParser(prog="vlcurate models", description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    fetch = sub.add_parser("fetch", help="download model weights into a local file")
    fetch.add_argument("kind", choices=["clip"], help="which model: clip (open_clip weights)")
    fetch.add_argument("--model", required=True, help="open_clip architecture, e.g. ViT-B-32")
    fetch.add_argument("--pretrained", required=True, help="open_clip pretrained tag, e.g. laion2b_s34b_b79k")
    fetch.add_argument("--output", required=True, help="where to write the state dict (.pt)")
    args = parser.parse_args(argv)
    try:
        digest = fetch_clip(args.model, args.pretrained, args.output)
    except Exception as error:  # no network, unknown tag
        raise SystemExit(f"vlcurate models fetch: cannot fetch {args.model}/{args.pretrained}: {error}") from error
    print(f"{args.output}  sha256 {digest}\nuse: --clip-model {args.model} --clip-checkpoint {args.output}")


if __name__ == "__main__":
    run(sys.argv[1:])
