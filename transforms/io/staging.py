"""The staging area: each sample's blob (its tar members, io/blobs.py) written once, where the
sample is made, while Beam carries its small record in place of its bytes.

A dataset's run stages under ``OUTPUT/.staging/PREFIX/`` (PREFIX is the run's shard prefix, so a
resumed run finds what its interrupted self staged, and runs into one output never share it):

- ``samples/KK/KEY-DIGEST.tar``: one sample's blob. A shard is these blobs in key order and two
  zero blocks: the writer copies bytes, it never re-encodes, and its memory is one blob whatever
  the dataset.
- ``samples/packs/PID-ID.pack``: the blobs an isolated child staged on a local disk, and
  ``samples/packs/ID.pack`` on an object store (gs://), a batch of one stage's blobs in one object
  (io/packs.py). A record names its pack and its offset there; on an object store it names its
  object before the object exists, so the stage holds its records back until the object is written.
- ``done/STAGE/BATCH.jsonl``: what the inputs of a source stage became, which a resumed run
  replays instead of rendering the inputs again (io/done_lines.py).

Names start with a dot so that dataset globs (shards/*, ...) never see them; the folder is removed
after a run succeeds. A local output is written with the os alone (an isolated child then needs no
Beam); anything else goes through io/files, so a gs:// output stages on gs://, and an isolated
child hands its blobs to its worker instead of writing them (``Pending``).
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import dataclasses
import hashlib
import os
import threading
import uuid
from collections.abc import Iterable, Iterator

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.io.blobs import StagedSample, decode, encode
from vlcurate.transforms.io.done_lines import Finished, done_lines
from vlcurate.transforms.io.files import atomic_write, read_capped, read_range
from vlcurate.transforms.io.packs import Pending, append_to_pack

STAGING = ".staging"
# A staged blob is our own bytes, but it is read back after a crash or from a bucket others can
# write: it is capped like any input (a sample over this could not be written to a shard anyway).
MAX_BLOB_BYTES = 1 << 31


class StagingLost(Exception):
    """A staged blob that is missing or not the bytes its record names."""


@dataclasses.dataclass(frozen=True)
class Staging:
    """Where one run stages: ``OUTPUT/.staging/PREFIX``. Every sample staged gets ``provenance``
    in its provenance (the pipeline that ran; in a recipe, the source), so that a sample a source
    stage staged and the writer stages again unchanged is the same blob."""

    root: str
    provenance: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, output: str, prefix: str, pipeline: str = "", **provenance: str) -> "Staging":
        named = {"pipeline": pipeline, **provenance} if pipeline else provenance
        return cls(f"{output.rstrip('/')}/{STAGING}/{prefix}", tuple(sorted(named.items())))

    def naming(self, **provenance: str) -> "Staging":
        """The same staging area, naming more in each sample's provenance (a recipe's source)."""
        return dataclasses.replace(self, provenance=tuple(sorted({**dict(self.provenance), **provenance}.items())))

    def blob_path(self, key: str, digest: str) -> str:
        # The digest keeps two different samples under one key (one PDF at two paths) apart.
        return f"{self.root}/samples/{key[-2:]}/{key}-{digest[:16]}.tar"

    def done_folder(self, stage: str) -> str:
        return f"{self.root}/done/{stage}"

    # --- samples -------------------------------------------------------------------------------

    @property
    def remote(self) -> bool:
        """Whether the staging area is on an object store (gs://): samples go there in packs."""
        return "://" in self.root

    def stage(self, sample: Sample, extras: dict | None = None, packed: bool = False) -> "StagedSample | Pending":
        """Write the sample's members once and return its record (with ``extras``: what dedup
        compares, computed from the sample's pixels while they were at hand). ``packed``: append
        them to this process's pack file, where the staging area is a local folder. On an object
        store nothing is written here: the ``Pending`` record and blob go to the stage's
        ``RemotePack``."""
        if self.provenance:
            sample = dataclasses.replace(sample, provenance={**sample.provenance, **dict(self.provenance)})
        record, blob = encode(sample, extras)
        if self.remote:
            return Pending(record, blob)
        if packed:
            path, offset = append_to_pack(f"{self.root}/samples/packs", blob)
            return dataclasses.replace(record, blob=path, offset=offset)
        path = self.blob_path(sample.key, record.sha256)
        if not _exists(path):  # content-addressed: a sample the source stage staged as it was is there
            _write(path, blob)
        return dataclasses.replace(record, blob=path)

    def load(self, record: StagedSample) -> bytes:
        """The blob's bytes, checked against the record; ``StagingLost`` names what went wrong."""
        try:
            data = read_capped(record.blob, MAX_BLOB_BYTES) if record.offset < 0 else _read_range(record)
        except Exception as error:  # missing, unreadable: the Reject of read_capped and the rest
            raise StagingLost(f"staged file {record.blob} is unreadable: {error}") from error
        if len(data) != record.size or hashlib.sha256(data).hexdigest() != record.sha256:
            raise StagingLost(f"staged file {record.blob} is not the bytes staged ({len(data)} bytes)")
        return data

    def sample(self, record: StagedSample) -> Sample:
        return decode(self.load(record))

    def loads(self, records: Iterable[StagedSample]) -> Iterator[tuple[StagedSample, "bytes | StagingLost"]]:
        """Each record with its blob, or the ``StagingLost`` its load raised, in order. On an object
        store up to READ_AHEAD reads (at most READ_AHEAD_BYTES) are in flight at once: each is a
        round trip, which a shard's samples read one after another would wait for in turn."""
        if not self.remote:
            for record in records:
                yield record, self._load_or_lost(record)
            return
        upcoming, window, ahead = iter(records), collections.deque(), 0
        while True:
            while len(window) < READ_AHEAD and (not window or ahead < READ_AHEAD_BYTES):
                record = next(upcoming, None)
                if record is None:
                    break
                window.append((record, _readers().submit(self._load_or_lost, record)))
                ahead += record.size
            if not window:
                return
            record, future = window.popleft()
            ahead -= record.size
            yield record, future.result()

    def _load_or_lost(self, record: StagedSample) -> "bytes | StagingLost":
        try:
            return self.load(record)
        except StagingLost as lost:
            return lost

    # --- finished inputs of source stages ------------------------------------------------------

    def finish(self, stage: str, done: list[tuple[tuple[str, str], list[StagedSample], list[RejectRecord]]]) -> None:
        """Record that each ``(ref, samples' records, reject rows)`` of ``stage`` is done, in one file."""
        if not done:
            return
        batch = f"{os.getpid()}-{uuid.uuid4().hex}"  # unique among every worker writing this stage
        _write(f"{self.done_folder(stage)}/{batch}.jsonl", done_lines(done))

    def finished(self, stage: str) -> "Finished":
        """What the inputs of ``stage`` became in an earlier attempt of this run, read once: look
        each input up with ``.get(ref)``. Empty for a fresh run (its folder holds nothing yet)."""
        return Finished.read(self.done_folder(stage))

    def remove(self) -> None:
        """Delete the staging area (after a successful run), and the .staging folder once empty."""
        from apache_beam.io.filesystems import FileSystems

        if self.remote:  # no folders there: every object under the prefix (a folder's name is no object's)
            FileSystems.delete([f"{self.root}/"])
            return
        if os.path.exists(self.root):
            FileSystems.delete([self.root])
        with contextlib.suppress(OSError):  # another run's staging is still there
            os.rmdir(os.path.dirname(self.root))


def staged_call(staging: Staging, function, *args):
    """Runs in an isolated child: the stage's ``function(*args)``, then the samples it made staged
    right there, so that only their records travel back to the pipeline's process, never their
    pixels (on an object store, records and blobs go back as ``Pending``, for the worker's
    ``RemotePack``: one object for many samples). ``function`` is a module-level function or its
    "module:function" name."""
    if isinstance(function, str):
        import importlib

        module, _, attribute = function.partition(":")
        function = getattr(importlib.import_module(module), attribute)
    result = function(*args)
    if isinstance(result, Sample):
        return staging.stage(result, packed=True)
    if isinstance(result, list):  # samples, and beside them any reject rows the function made
        return [staging.stage(item, packed=True) if isinstance(item, Sample) else item for item in result]
    return result


# Reads of staged blobs in flight at once on an object store (Staging.loads), and their bytes.
READ_AHEAD = 8
READ_AHEAD_BYTES = 64 << 20
_READERS: dict = {}  # this process's reader threads: {"pid": ..., "pool": ...}
_READERS_LOCK = threading.Lock()


def _readers() -> concurrent.futures.ThreadPoolExecutor:
    """The threads that read staged blobs ahead, shared by the shard writers of this process (each
    thread keeps its Cloud Storage client, io/files.read_range, so they live as long as it does)."""
    with _READERS_LOCK:
        if _READERS.get("pid") != os.getpid():  # a forked process starts its own
            _READERS.update(pid=os.getpid(), pool=concurrent.futures.ThreadPoolExecutor(
                2 * READ_AHEAD, thread_name_prefix="vlcurate-read"))
        return _READERS["pool"]


def _read_range(record: StagedSample) -> bytes:
    """A packed blob's bytes (its record's size, at most MAX_BLOB_BYTES)."""
    if record.size > MAX_BLOB_BYTES:
        raise ValueError(f"a staged blob of {record.size} bytes is over the cap")
    return read_range(record.blob, record.offset, record.size)


def _write(path: str, data: bytes) -> None:
    """Write a staged file atomically: locally with the os alone (an isolated child then needs no
    Beam), elsewhere through FileSystems."""
    if "://" in path:
        atomic_write(path, lambda out: out.write(data))
        return
    folder, name = os.path.split(path)
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex}")
    with open(temporary, "wb") as out:
        out.write(data)
    os.replace(temporary, path)


def _exists(path: str) -> bool:
    if "://" not in path:
        return os.path.exists(path)
    from apache_beam.io.filesystems import FileSystems

    return FileSystems.exists(path)
