"""`vlcurate inspect`: print a dataset's summary, or show one sample.

    vlcurate inspect DATASET                  totals, categories, labels, shards, rejects by reason;
                                              a shard whose size is not the manifest's is named as
                                              damaged and the exit status is 1
    vlcurate inspect DATASET --verify         also read every shard whole (tar structure, members,
                                              samples, sha256) through the shard reader
    vlcurate inspect DATASET --key KEY        one sample: its json, text excerpt and image facts
    vlcurate inspect SHARD.tar [--key KEY]    the shard's first sample (or KEY)
    ... --save-images DIR                     also write the sample's images to DIR

DATASET and SHARD may be gs:// paths.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from vlcurate.pipelines.flags import HelpFormatter
from vlcurate.pipelines.summary import summary
from vlcurate.transforms.io.manifest import read_manifest
from vlcurate.transforms.io.lookup import find_sample
from vlcurate.transforms.io.shard_reader import check_shard, listed_shards
from vlcurate.transforms.report.build import excerpt
from vlcurate.transforms.data.sample import dumps_json



def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="vlcurate inspect", description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("path", help="a dataset folder or a shard (.tar)")
    parser.add_argument("--key", help="show this sample")
    parser.add_argument("--save-images", metavar="DIR", help="write the shown sample's images to DIR")
    parser.add_argument("--text-chars", type=int, default=1000, help="how much of the text to print")
    parser.add_argument("--verify", action="store_true",
                        help="read every shard of the dataset whole and check it against the manifest")
    args = parser.parse_args(argv)
    path = args.path.rstrip("/") if not args.path.endswith(".tar") else args.path
    try:
        if args.key is None and not path.endswith(".tar"):
            manifest = read_manifest(path)
            print(summary(path, manifest))
            return report_damage(path, manifest, args.verify)
        sample, where = find_sample(path, args.key)
    except BrokenPipeError:  # the reader went away (`| head`), not the dataset: cli.main ends quietly
        raise
    except (OSError, ValueError) as error:
        print(f"vlcurate inspect: {args.path}: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    if sample is None:
        print(f"vlcurate inspect: no sample {args.key or ''} in {args.path}".replace("  ", " "), file=sys.stderr)
        return 1
    print(show_sample(sample, where, args.text_chars))
    if args.save_images:
        for saved in save_images(sample, args.save_images):
            print(f"saved {saved}")
    return 0


def report_damage(dataset: str, manifest: dict, verify: bool) -> int:
    """Name each damaged shard of the dataset on stderr; 1 if there is one, else 0. Without ``verify``
    a shard is only sized (one stat each: any cut, a missing or an appended shard shows)."""
    damaged = [error for path, record in listed_shards(dataset, manifest)
               if (error := check_shard(path, record, read=verify)) is not None]
    for error in damaged:
        print(f"vlcurate inspect: damaged {error}", file=sys.stderr)
    if damaged:
        print(f"vlcurate inspect: {len(damaged)} of {len(manifest.get('shards') or [])} shards damaged; "
              "`vlcurate filter` keeps the samples before the damage", file=sys.stderr)
    return 1 if damaged else 0


def show_sample(sample, where: str | None, text_chars: int) -> str:
    doc = json.loads(dumps_json(sample.to_json()))
    lines = [f"sample {sample.key}" + (f" in {where}" if where else ""), "json:",
             json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False)]
    text = sample.text or ""
    lines.append(f"text ({len(text)} chars):")
    shown = text[:text_chars] + (" ..." if len(text) > text_chars else "")
    lines.append("  " + shown.replace("\n", "\n  ") if text else "  (none)")
    if not text and sample.conversation:
        lines.append("first user turn: " + excerpt(sample, text_chars))
    if sample.html is not None:
        lines.append(f"html: {len(sample.html)} chars")
    if sample.markdown is not None:
        lines.append(f"markdown: {len(sample.markdown)} chars")
    lines.append(f"images ({len(sample.images)}):")
    for i, image in enumerate(sample.images):
        lines.append(f"  {i}: {image.format} {image.width}x{image.height}, {len(image.data):,} bytes, sha256 {image.sha256}")
    return "\n".join(lines)


def save_images(sample, folder: str) -> list[str]:
    """Write the images as KEY.EXT (one image) or KEY.N.EXT, as in the shard; returns the paths."""
    os.makedirs(folder, exist_ok=True)
    saved = []
    for i, image in enumerate(sample.images):
        name = f"{sample.key}.{image.extension}" if len(sample.images) == 1 else f"{sample.key}.{i}.{image.extension}"
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(image.data)
        saved.append(path)
    return saved
