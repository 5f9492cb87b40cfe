"""The review queue's names, in one place: how an unsure label is counted, marked and filed.

A sample the labeler is unsure of keeps ``taxonomy.status == REVIEW_STATUS`` and no id; the
manifest counts it under the label ``REVIEW_LABEL``; its row goes to its shard's queue file under
``review/``, which editors label and the labeler trains on.
"""

from __future__ import annotations

REVIEW_STATUS = "review"  # json.taxonomy.status of a sample waiting for an editor
REVIEW_LABEL = "(review)"  # its key in the manifest's label counts (no leaf id can look like it)
REVIEWED_STATUS = "reviewed"  # json.taxonomy.status of a sample an editor labelled (`vlcurate review apply`)
REVIEW_FOLDER = "review"
DECISIONS = "decisions.jsonl"  # the review desk's append-only log of editors' decisions, in REVIEW_FOLDER


def review_queue_path(output: str, shard: str) -> str:
    """Where the review rows of one shard go inside its dataset."""
    return f"{output.rstrip('/')}/{REVIEW_FOLDER}/{shard}-review.jsonl"


def decisions_path(dataset: str) -> str:
    """The review desk's decisions log of a dataset."""
    return f"{dataset.rstrip('/')}/{REVIEW_FOLDER}/{DECISIONS}"
