"""What a caption looks like: a line that starts "Figure 3", "Fig. 2", "Table 1", "Chart 4", "图 5"
or "表 6". Such a line is a caption wherever it stands (under, over, or drawn inside the figure
just under its axes), so neither the figure finder nor the chart reader may take it for an axis
title or a tick label."""

from __future__ import annotations

import re

_CAPTION = re.compile(
    r"^\s*(?:(fig(ure)?|table|tab|chart|plot|graph|exhibit)\.?\s*(\d+|[ivxlc]+\b)|[图表]\s*\d+)", re.IGNORECASE)
_TABLE = re.compile(r"^\s*(?:tab(le)?\b|tab\.|表)", re.IGNORECASE)


def is_caption(text: str) -> bool:
    return _CAPTION.match(text) is not None


def names_a_table(caption: str | None) -> bool:
    """A caption that calls its figure a table ("Table 2", "Tab. 2", "表 2")."""
    return bool(caption) and is_caption(caption) and _TABLE.match(caption) is not None
