"""Raw 8-bit pixels in, a PNG out: the encoder for the pages and crops we render.

MuPDF's own PNG writer (``Pixmap.tobytes("png")``) compresses with zlib at level 6 and no row
filter, and that was three quarters of a rendered page's CPU: 20.7 of 27 ms for a 1024-pixel
page (bench/pdf_pages.py's corpus). libdeflate at the same level compresses the same rows 2.3
times as fast and 2% smaller there (a page may come out up to 1% larger), so this writes the
same PNG layout (filter 0 on every row, one IDAT, the resolution in pHYs) with libdeflate. The
pixels decode to exactly the pixmap's; the bytes are deterministic for a pinned libdeflate
(requirements.txt).
"""

from __future__ import annotations

import struct
import zlib

import deflate
import numpy as np

LEVEL = 6  # zlib's and MuPDF's default level: the same size class, at libdeflate's speed
_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Colour channels -> PNG colour type: grey, RGB. No alpha: a pixmap's alpha is premultiplied into
# its colours and a PNG's is not (MuPDF's writer divides it out); our renders have none.
_COLOUR_TYPES = {1: 0, 3: 2}
_METRES_PER_INCH = 0.0254


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))


def encode_png(samples, width: int, height: int, colours: int, stride: int | None = None,
               dpi: tuple[int, int] | None = None) -> bytes:
    """A PNG of ``height`` rows of ``width`` 8-bit pixels of ``colours`` channels (1: grey, 3:
    RGB), rows ``stride`` bytes apart in ``samples`` (any buffer: a pixmap's ``samples_mv`` is not
    copied first). ``dpi`` goes into pHYs."""
    colour_type = _COLOUR_TYPES.get(colours)
    if colour_type is None:
        raise ValueError(f"no PNG colour type for {colours} colour channels without alpha")
    if width < 1 or height < 1:
        raise ValueError(f"a PNG needs at least one pixel, not {width}x{height}")
    row = width * colours
    stride = row if stride is None else stride
    pixels = np.frombuffer(samples, np.uint8)
    if stride < row or pixels.size < stride * (height - 1) + row:
        raise ValueError(f"{pixels.size} bytes cannot hold {height} rows of {row} bytes, {stride} apart")
    rows = np.lib.stride_tricks.as_strided(pixels, (height, row), (stride, 1), writeable=False)
    filtered = np.empty((height, row + 1), np.uint8)
    filtered[:, 0] = 0  # filter type None: the rows as they are, as MuPDF writes them
    filtered[:, 1:] = rows
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    parts = [_SIGNATURE, _chunk(b"IHDR", header)]
    if dpi is not None and dpi[0] > 0 and dpi[1] > 0:
        per_metre = [round(value / _METRES_PER_INCH) for value in dpi]
        parts.append(_chunk(b"pHYs", struct.pack(">IIB", *per_metre, 1)))
    parts += [_chunk(b"IDAT", deflate.zlib_compress(filtered, LEVEL)), _chunk(b"IEND", b"")]
    return b"".join(parts)


def pixmap_png(pixmap) -> bytes:
    """A PyMuPDF pixmap, grey or RGB and without alpha, as a PNG."""
    if pixmap.alpha:
        raise ValueError("a pixmap with alpha: its colours are premultiplied, render it with alpha=False")
    colours = pixmap.colorspace.n if pixmap.colorspace else 0
    return encode_png(pixmap.samples_mv, pixmap.width, pixmap.height, colours, pixmap.stride,
                      (pixmap.xres, pixmap.yres))
