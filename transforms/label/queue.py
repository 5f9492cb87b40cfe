"""The review queue's rows: what an editor needs to decide one unsure sample, one JSON line each.

The shard writer writes the rows of the samples a shard holds (``review/SHARD-review.jsonl``), so
the queue is written in parallel with the shards and lists exactly the samples the dataset kept.
A row's ``text`` and ``label`` make it a training example as it stands: an editor fills in
``label`` and the file goes to `vlcurate taxonomy train --examples` (`vlcurate taxonomy
check-labels` first says which labels are not leaves). The rest is what the editor decides by: the
whole conversation, where the sample's images are in the dataset (its shard and member names:
`vlcurate inspect DATASET --key KEY --save-images DIR` writes them out), the labeler's candidates,
and where the sample came from.
"""

from __future__ import annotations

import json

from vlcurate.transforms.data.review import REVIEW_FOLDER, REVIEW_STATUS
from vlcurate.transforms.data.sample import Sample, dumps_json
from vlcurate.transforms.io.files import open_for_reading
from vlcurate.transforms.sources.sft import user_text


def label_text(sample: Sample) -> str:
    """What the labeler reads: the User turns of a conversation, or the sample's text."""
    return user_text(sample.conversation) if sample.conversation else (sample.text or "")


def needs_review(sample: Sample) -> bool:
    return bool(sample.taxonomy) and sample.taxonomy.get("status") == REVIEW_STATUS


def review_row(sample: Sample, shard: str) -> dict:
    """One line of the review queue for a sample the labeler was unsure of, held by ``shard``
    (its file name, ``sft-000000.tar``)."""
    taxonomy = sample.taxonomy
    origin = {"pipeline": sample.provenance.get("pipeline"), "uri": sample.uri, "locator": sample.locator}
    if "recipe_source" in sample.provenance:
        origin["recipe_source"] = sample.provenance["recipe_source"]
    return {
        "key": sample.key,
        "uri": sample.uri,
        "locator": sample.locator,
        "source": origin,
        "text": label_text(sample),
        "conversation": sample.conversation,
        "images": {"shard": shard, "members": sample.image_names()},
        "label": None,
        "main": taxonomy["main"],
        "confidence": taxonomy["confidence"],
        "candidates": taxonomy["top"],
        "version": taxonomy["version"],
    }


def queue_bytes(samples, shard: str) -> bytes:
    """The rows of ``samples`` (key-sorted, as ``shard`` holds them) that need review, as JSON lines."""
    return b"".join(dumps_json(review_row(sample, shard)) + b"\n" for sample in samples if needs_review(sample))


def read_review_queue(path: str) -> list[dict]:
    """The rows of one review-queue file."""
    with open_for_reading(path) as handle:
        return [json.loads(line) for line in handle.read().decode("utf-8").splitlines() if line.strip()]


def queue_files(dataset: str) -> list[str]:
    """A dataset's review-queue files, in shard order."""
    from apache_beam.io.filesystems import FileSystems

    try:
        found = FileSystems.match([f"{dataset.rstrip('/')}/{REVIEW_FOLDER}/*-review.jsonl"])[0].metadata_list
    except Exception:  # no review/ folder: nothing was unsure
        return []
    return sorted(meta.path for meta in found)


def dataset_queue(dataset: str) -> list[dict]:
    """Every row of a dataset's review queue, shard by shard."""
    return [row for path in queue_files(dataset) for row in read_review_queue(path)]
