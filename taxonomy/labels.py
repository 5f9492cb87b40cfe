"""Labels files checked against a taxonomy: labelled examples, a filled-in review queue, samples' json.

One check for `vlcurate taxonomy check-labels` and `vlcurate taxonomy stats --labels`: each line's
label (the ``field``, dotted for nested) is a labelling leaf of the taxonomy, null (a review-queue
row no editor has labelled yet), or a problem named as ``FILE:LINE: message`` with what to do: an
old id (migrate), a category above the leaves, or an unknown id with the closest leaf it may have
meant.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Iterator

from vlcurate.taxonomy.changes import get_field
from vlcurate.taxonomy.tree import Taxonomy

# What a line's label is: a good one, one awaiting an editor, or a problem.
LEAF, UNLABELLED = "leaf", "unlabelled"
PROBLEMS = ("not_leaf", "stale", "unknown", "missing")


@dataclasses.dataclass(frozen=True)
class Finding:
    """One non-blank line of a labels file and what its label is."""

    path: str
    line: int
    kind: str  # LEAF, UNLABELLED or one of PROBLEMS
    label: str | None = None  # the id as written, when it is a string
    message: str = ""  # for a problem: what is wrong and what to do

    @property
    def problem(self) -> bool:
        return self.kind in PROBLEMS

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def check_label(value, taxonomy: Taxonomy) -> tuple[str, str]:
    """(kind, message) for one label value."""
    if value is None:
        return UNLABELLED, ""
    if not isinstance(value, str):
        return "missing", f"label {json.dumps(value)} is not an id (a string like '{taxonomy.leaves()[0].id}')"
    if value in taxonomy:
        node = taxonomy.node(value)
        if node.is_leaf:
            return LEAF, ""
        return "not_leaf", (f"'{value}' is a {node.level} category, not a labelling leaf: use one of its "
                            f"{sum(leaf.id.startswith(value + '/') for leaf in taxonomy.leaves())} leaves")
    current = taxonomy.resolve(value)
    if current is not None:
        return "stale", (f"'{value}' is an old id, now '{current}' in taxonomy {taxonomy.version}: "
                         "run vlcurate taxonomy migrate")
    close = closest_leaf(value, taxonomy)
    hint = f"did you mean '{close}'?" if close else \
        f"no leaf of taxonomy {taxonomy.version} is close; vlcurate taxonomy show lists them"
    return "unknown", f"unknown label '{value}' ({hint})"


def closest_leaf(value: str, taxonomy: Taxonomy) -> str | None:
    """The leaf an unknown id most likely meant: the one leaf with its last segment (a level left
    out or misspelt, 'recognition/counting'), else a close spelling of the whole id. The cutoff
    keeps guesses out: at 0.6 'recognition/gone' 'meant' 'recognition/global-description/others'."""
    leaves = [leaf.id for leaf in taxonomy.leaves()]
    same_end = [leaf for leaf in leaves if leaf.rsplit("/", 1)[-1] == value.rsplit("/", 1)[-1]]
    if len(same_end) == 1:
        return same_end[0]
    close = difflib.get_close_matches(value, leaves, n=1, cutoff=0.8)
    return close[0] if close else None


def check_lines(lines, path: str, taxonomy: Taxonomy, field: str = "label") -> Iterator[Finding]:
    """A finding for every non-blank line of a JSONL labels file."""
    for number, text in enumerate(lines, 1):
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError as error:
            yield Finding(path, number, "missing", message=f"not JSON: {error}")
            continue
        holder, key = get_field(record, field)
        if holder is None or key not in holder:
            yield Finding(path, number, "missing", message=f"no '{field}' field")
            continue
        value = holder[key]
        kind, message = check_label(value, taxonomy)
        yield Finding(path, number, kind, value if isinstance(value, str) else None, message)


def check_file(path: str, taxonomy: Taxonomy, field: str = "label") -> list[Finding]:
    """Every non-blank line's finding; OSError if the file cannot be read."""
    with open(path, encoding="utf-8") as lines:
        return list(check_lines(lines, path, taxonomy, field))
