"""PyMuPDF imported without the optional packages it would load itself.

PyMuPDF 2 imports pymupdf-layout (its layout model's ONNX sessions) and pymupdf4llm (markdown:
numpy, tabulate, onnxruntime) when they are installed, and pymupdf4llm imports pymupdf-layout too;
each catches the ImportError when one is missing. Rendering pages needs neither (core.py), and
markdown needs pymupdf4llm without the layout model (markdown.py); figures.py imports the model
itself. This module imports nothing heavy, so a render child still starts quickly.
"""

from __future__ import annotations

import contextlib
import sys


@contextlib.contextmanager
def without(*names: str):
    """While inside, ``import name`` fails as if the package were absent, for each of ``names``
    not imported yet; afterwards a plain import of it loads it as usual."""
    blocked = [name for name in names if name not in sys.modules]
    for name in blocked:
        sys.modules[name] = None  # None in sys.modules makes an import raise ModuleNotFoundError
    try:
        yield
    finally:
        for name in blocked:
            if sys.modules.get(name, ...) is None:
                del sys.modules[name]
