"""transforms/runtime/heap.py: the shard writer hands freed C-heap pages back (glibc's malloc_trim)."""

from __future__ import annotations

import os
import platform

from vlcurate.transforms.runtime import heap


def test_trim_reaches_glibc_here():
    # This project's machines run Debian's glibc: a trim that silently did nothing would let the
    # sink's peak grow back unnoticed.
    assert platform.libc_ver()[0] == "glibc"
    assert heap._malloc_trim() is not None
    heap.trim()


def test_trim_returns_freed_pages():
    page = os.sysconf("SC_PAGE_SIZE")

    def rss() -> int:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * page

    # Many mid-sized blocks (under glibc's mmap threshold, so from the heap), every other one
    # freed: the holes stay with glibc until trimmed.
    blocks = [bytearray(64 * 1024) for _ in range(1600)]
    del blocks[::2]
    held = rss()
    heap.trim()
    assert held - rss() > 20 * 1024 * 1024  # about 50 MB of holes; most of it goes back
