"""How good OCR is: character error rate against a reference text (the bench and the tests use it)."""

from __future__ import annotations

import numpy as np


def normalise(text: str) -> str:
    """Whitespace runs as one space: line breaks and spacing are layout, not characters read."""
    return " ".join(text.split())


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance, one DP row at a time in numpy (O(len(a) * len(b)) work, fast enough
    for whole pages). Insertions along a row are a running minimum: row[j] = min_k<=j (t[k] + j - k)."""
    if not a or not b:
        return max(len(a), len(b))
    codes_b = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    columns = np.arange(len(b) + 1, dtype=np.int64)
    row = columns.copy()
    for i, char in enumerate(a, start=1):
        substitute = row[:-1] + (codes_b != ord(char))
        delete = row[1:] + 1
        candidate = np.empty_like(row)
        candidate[0] = i
        candidate[1:] = np.minimum(substitute, delete)
        row = np.minimum.accumulate(candidate - columns) + columns
    return int(row[-1])


def character_error_rate(hypothesis: str, reference: str) -> float:
    """Edits to turn the OCR text into the reference, per reference character (after normalising)."""
    hypothesis, reference = normalise(hypothesis), normalise(reference)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    return edit_distance(hypothesis, reference) / len(reference)
