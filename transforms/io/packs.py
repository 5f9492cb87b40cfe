"""Many staged blobs in one file or object: a record names the pack and its blob's offset there.

- On a local disk an isolated child appends the blobs it stages to its own pack file
  (``append_to_pack``): creating a file a sample cost about a millisecond here, as much as the
  rest of the bookkeeping of a page.
- On an object store (gs://) a stage's worker writes the blobs of up to a batch of its inputs as
  one object (``RemotePack``): Cloud Storage bills every object written, and a rename is a copy,
  so an object a sample cost more than the shuffle it saved (docs/scaling.md).
"""

from __future__ import annotations

import dataclasses
import os
import threading
import uuid
from typing import TYPE_CHECKING

from vlcurate.transforms.io.blobs import StagedSample
from vlcurate.transforms.io.files import atomic_write

if TYPE_CHECKING:
    from vlcurate.transforms.io.staging import Staging


@dataclasses.dataclass(frozen=True)
class Pending:
    """A sample staged for an object store: its record (no blob placed yet) and its blob's bytes,
    on their way to the ``RemotePack`` of the stage that made it."""

    record: StagedSample
    blob: bytes


class RemotePack:
    """The blobs one stage's worker makes for a staging area on an object store, written as one
    object (``samples/packs/ID.pack``) per batch instead of one, or two with the rename, per sample.

    ``hold(output)`` places a ``Pending`` sample in the pack (its record names the object and the
    offset) and keeps every output back; ``write()`` writes the object and gives the outputs held.
    A record must not leave before its object exists: a stage fused behind this one in the same
    bundle may read the blob at once (the quality stages' ``Load``). A bundle that fails leaves at
    most an object no record names, removed with the staging area.
    """

    MAX_BYTES = 64 << 20  # a batch of big samples is written early: the worker holds at most this

    def __init__(self, staging: Staging):
        self._folder = f"{staging.root}/samples/packs"
        self._start()

    def _start(self) -> None:
        self._path = f"{self._folder}/{uuid.uuid4().hex}.pack"
        self._blobs: list[bytes] = []
        self.size = 0
        self.held: list = []

    def hold(self, output):
        """Keep ``output`` back until ``write``; a ``Pending`` sample becomes its placed record."""
        if isinstance(output, Pending):
            record = dataclasses.replace(output.record, blob=self._path, offset=self.size)
            self._blobs.append(output.blob)
            self.size += len(output.blob)
            output = record
        self.held.append(output)
        return output

    @property
    def full(self) -> bool:
        return self.size >= self.MAX_BYTES

    def write(self) -> list:
        """Write the object (whole: io/files' temporary name and rename) and return the outputs held."""
        held, blobs, path = self.held, self._blobs, self._path

        def write_blobs(out):
            for blob in blobs:
                out.write(blob)

        if blobs:
            atomic_write(path, write_blobs)
        self._start()
        return held


_PACK: dict = {}  # this process's open pack file: {"folder": ..., "handle": ...}
_PACK_LOCK = threading.Lock()


def append_to_pack(folder: str, blob: bytes) -> tuple[str, int]:
    """Append ``blob`` to this process's pack file in ``folder``: (the file, the blob's offset).

    A process keeps one pack open, the current run's. An isolated child outlives runs (a test
    session runs many), so the pack of an earlier run, or one whose staging was removed, is closed
    when the child next stages: a process never holds more than one (an open deleted file keeps
    its disk space until it is closed)."""
    with _PACK_LOCK:
        handle = _PACK.get("handle")
        if handle is None or _PACK.get("folder") != folder or os.fstat(handle.fileno()).st_nlink == 0:
            if handle is not None:
                handle.close()
            os.makedirs(folder, exist_ok=True)
            handle = open(os.path.join(folder, f"{os.getpid()}-{uuid.uuid4().hex}.pack"), "ab")
            _PACK.update(folder=folder, handle=handle)
        offset = handle.tell()
        handle.write(blob)
        handle.flush()  # with the OS before the record leaves: a killed child loses no blob it reported
        return handle.name, offset
