"""A page's blocks in reading order when its text runs in columns: a recursive XY cut.

PyMuPDF's ``sort=True`` orders blocks top to bottom, then left to right, which on a two-column page
alternates between the columns. Here a region is cut first at a vertical gutter that no block
crosses (columns, read left to right), else at horizontal gaps (bands, read top to bottom), and
each part is ordered the same way. A band that only continues the columns of the band above is
kept with it, so two columns whose paragraph breaks happen to line up are not read band by band;
a block across the gutter (a title, a wide figure, a centred page number) ends the columns above it.
"""

from __future__ import annotations

from collections.abc import Sequence

# The narrowest gap read as a gutter between columns, in points (a tenth of an inch; column
# gutters are 12 to 24 pt, words within a block never leave a block).
GUTTER_PT = 7.0

# Above this many blocks a page keeps the plain top-to-bottom order: the cut's cost grows with
# the square of the blocks (bands are joined one by one) and its recursion with their number, and
# a hostile page can hold tens of thousands. Text pages have tens; a dense table page a few hundred.
MAX_BLOCKS = 400

Box = Sequence[float]  # x0, y0, x1, y1


def reading_order(boxes: Sequence[Box]) -> list[int]:
    """The indexes of ``boxes`` in reading order."""
    if len(boxes) > MAX_BLOCKS:
        return _top_down(range(len(boxes)), boxes)
    return _order(list(range(len(boxes))), boxes)


def _order(items: list[int], boxes: Sequence[Box]) -> list[int]:
    if len(items) <= 1:
        return items
    columns = _split(items, boxes, axis=0, min_gap=GUTTER_PT)
    if len(columns) > 1:
        return [index for column in columns for index in _order(column, boxes)]
    bands = _merge_columned(_split(items, boxes, axis=1, min_gap=0.0), boxes)
    if len(bands) > 1:
        return [index for band in bands for index in _order(band, boxes)]
    return _top_down(items, boxes)


def _top_down(items, boxes: Sequence[Box]) -> list[int]:
    """``items`` by their boxes' top, then left edge (PyMuPDF's ``sort=True``)."""
    return sorted(items, key=lambda index: (boxes[index][1], boxes[index][0]))


def _split(items: list[int], boxes: Sequence[Box], axis: int, min_gap: float) -> list[list[int]]:
    """``items`` in groups separated by gaps wider than ``min_gap`` along ``axis`` (0: x, 1: y)
    that no box crosses, in order along the axis."""
    ordered = sorted(items, key=lambda index: (boxes[index][axis], boxes[index][axis + 2]))
    groups: list[list[int]] = []
    end = None
    for index in ordered:
        start, stop = boxes[index][axis], boxes[index][axis + 2]
        if end is None or start - end > min_gap:
            groups.append([index])
            end = stop
        else:
            groups[-1].append(index)
            end = max(end, stop)
    return groups


def _merge_columned(bands: list[list[int]], boxes: Sequence[Box]) -> list[list[int]]:
    """Consecutive bands joined while together they still split into columns and the next band
    only continues columns already there (a band of author names under a title does not)."""
    merged = [bands[0]]
    for band in bands[1:]:
        columns = _split(merged[-1] + band, boxes, axis=0, min_gap=GUTTER_PT)
        before, after = set(merged[-1]), set(band)
        if len(columns) > 1 and all(before & set(column) for column in columns if after & set(column)):
            merged[-1] = merged[-1] + band
        else:
            merged.append(band)
    return merged
