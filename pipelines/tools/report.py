"""`vlcurate report`: write report.html beside a dataset's manifest.

    vlcurate report DATASET [--output FILE] [--target-mix NAME=SHARE,...] [--samples-per-category 6]

The page shows the funnel (counts per stage and reason), CLIP scores against the threshold, the
category mix against a target, taxonomy labels, OCR confidence, image sizes, throughput and a
contact sheet of thumbnails with their text. It works offline: figures and thumbnails are
embedded, and it has no scripts. DATASET may be a gs:// folder.
"""

from __future__ import annotations

import sys

from vlcurate.pipelines.flags import ToolParser
from vlcurate.transforms.data.mix import parse_weights, shares
from vlcurate.transforms.report.build import SHEET_SAMPLES, write_report


def parse_mix(spec: str) -> dict[str, float]:
    """``document_ocr=3,web_code=1`` -> shares that add up to 1."""
    return shares(parse_weights(spec, "--target-mix"), "--target-mix")


def run(argv: list[str]) -> int:
    parser = ToolParser(prog="vlcurate report", description=__doc__)
    parser.add_argument("dataset", help="a dataset folder (holding manifest.json)")
    parser.add_argument("--output", help="where to write the page (default: DATASET/report.html)")
    parser.add_argument("--target-mix", default="",
                        help="NAME=WEIGHT,... over categories or taxonomy main categories "
                             "(default: the run's own target mix, where its manifest records one)")
    parser.add_argument("--samples-per-category", type=int, default=SHEET_SAMPLES,
                        help="contact-sheet samples per category (0: no contact sheet)")
    args = parser.parse_args(argv)
    try:
        target = parse_mix(args.target_mix) if args.target_mix else None
    except ValueError as error:
        print(f"vlcurate report: --target-mix: {error}", file=sys.stderr)
        return 2
    try:
        path = write_report(args.dataset, target, output=args.output, per_category=max(0, args.samples_per_category))
    except (OSError, ValueError) as error:  # no manifest, an unreadable index or shard
        print(f"vlcurate report: {args.dataset}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    print(path)
    return 0
