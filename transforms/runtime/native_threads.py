"""How many threads native libraries may use in an isolated child: its share of the cores.

Left alone, every native library in a child sizes its thread pool to all the machine's cores:
onnxruntime (pymupdf-layout's model, which ``import pymupdf`` loads, and PP-OCR), OpenMP
(Tesseract builds with it), BLAS. With one child per core that is cores x cores threads, most of
them spinning: measured on 2 cores, pymupdf-layout took 0.12 s a page in one child and 0.26 s
in each of two. ``limit`` runs first thing in the child, before any of them is imported.
"""

from __future__ import annotations

import os

ENV = "VLCURATE_NATIVE_THREADS"  # set by the parent for each isolated child


def limit(threads: int) -> None:
    """Cap native thread pools in this process at ``threads`` (read once, at library load)."""
    for name in ("OMP_NUM_THREADS", "OMP_THREAD_LIMIT", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(threads)
    try:
        import onnxruntime
    except ImportError:
        return
    original = onnxruntime.InferenceSession
    if getattr(original, "vlcurate_threads", None) is not None:
        return

    class Limited(original):
        """An InferenceSession on ``threads`` intra-op threads unless its caller chose fewer
        (pymupdf-layout has no setting for it, so its sessions are made through this class)."""

        vlcurate_threads = threads

        def __init__(self, path_or_bytes, sess_options=None, *args, **kwargs):
            sess_options = sess_options or onnxruntime.SessionOptions()
            if not 0 < sess_options.intra_op_num_threads <= threads:
                sess_options.intra_op_num_threads = threads
            sess_options.inter_op_num_threads = 1
            super().__init__(path_or_bytes, sess_options, *args, **kwargs)

    onnxruntime.InferenceSession = Limited


def from_environment() -> None:
    """``limit`` with the count the parent gave this child, if it gave one."""
    value = os.environ.get(ENV, "")
    if value.isdigit() and int(value) > 0:
        limit(int(value))


def session_threads(model_path: str) -> tuple[str, int]:
    """(OMP_NUM_THREADS, intra-op threads of an onnxruntime session made with default options)
    in this process: what a child's libraries will use."""
    import onnxruntime

    session = onnxruntime.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    return os.environ.get("OMP_NUM_THREADS", ""), session.get_session_options().intra_op_num_threads
