"""The staging area: each sample's tar members written once, where the sample is made, and the
small record that Beam carries in place of its bytes.

A dataset's run stages under ``OUTPUT/.staging/PREFIX/`` (PREFIX is the run's shard prefix, so a
resumed run finds what its interrupted self staged, and runs into one output never share it):

- ``samples/KK/KEY-DIGEST.tar``: one sample's tar members exactly as a shard holds them (each a
  header block and its padded data). A shard is then these blobs in key order and two zero blocks:
  the writer copies bytes, it never re-encodes, and its memory is one blob whatever the dataset.
- ``samples/packs/PID-ID.pack``: the blobs an isolated child staged on a local disk, one after
  another in one file per child (a record names the file and the offset). Creating a file cost
  about a millisecond here, as much as the rest of the bookkeeping of a page.
- ``samples/packs/ID.pack`` on an object store (gs://): the blobs of up to a batch of one stage's
  inputs in one object, written by the stage's worker (``RemotePack``). Cloud Storage bills every
  object written, and a rename is a copy: an object a sample made staging cost more than the
  shuffle it saved (docs/scaling.md). A record names its object before the object exists, so the
  stage holds its records back until the object is written.
- ``done/STAGE/BATCH.jsonl``: what the inputs of a source stage became (per input, a line with
  its ref, its samples' records and its reject rows), written after their samples are staged, a
  batch of inputs a file (one file an input cost more than the pipeline's own work per page). A
  resumed run replays these instead of rendering the inputs again; a kill loses at most the batch
  being gathered.

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
import json
import math
import os
import tarfile
import threading
import uuid
from collections.abc import Iterable, Iterator

from vlcurate.transforms.data.rejects import RejectRecord
from vlcurate.transforms.data.review import REVIEW_LABEL, REVIEW_STATUS, REVIEWED_STATUS
from vlcurate.transforms.data.sample import Sample, sample_from_members, split_member_name
from vlcurate.transforms.io.files import atomic_write, open_for_reading, read_capped, read_range

STAGING = ".staging"
TAR_BLOCK = 512
# A staged blob is our own bytes, but it is read back after a crash or from a bucket others can
# write: it is capped like any input (a sample over this could not be written to a shard anyway).
MAX_BLOB_BYTES = 1 << 31


class StagingLost(Exception):
    """A staged blob that is missing or not the bytes its record names."""


def tar_header(name: str, size: int) -> bytes:
    """A USTAR header with fixed fields: the same member always gets the same 512 bytes."""
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = 0
    info.mode = 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.type = tarfile.REGTYPE
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def tar_members(members) -> bytes:
    """``(name, data)`` pairs as tar members, block-exact (no end blocks)."""
    out = bytearray()
    for name, data in members:
        out += tar_header(name, len(data))
        out += data
        out += bytes(-len(data) % TAR_BLOCK)
    return bytes(out)


def decode(blob: bytes) -> Sample:
    """The sample a staged blob holds; the blob's sha256 was checked against its record (``load``),
    so its images are not hashed again."""
    return sample_from_members(members_of(blob), check_images=False)


def members_of(blob: bytes) -> dict[str, bytes]:
    """A staged blob's members by suffix ("png", "json", ...); the blob's hash was checked first.

    The headers are ``tar_header``'s own USTAR headers, so only their name, prefix and octal size
    fields are read (``TarInfo.frombuf`` parses and checks every field: a fifth of the CPU of
    writing a shard)."""
    members, offset = {}, 0
    while offset < len(blob):
        header = blob[offset:offset + TAR_BLOCK]
        name = _field(header, 0, 100)
        prefix = _field(header, 345, 500)
        size = int(_field(header, 124, 136).strip() or "0", 8)
        start = offset + TAR_BLOCK
        members[split_member_name(f"{prefix}/{name}" if prefix else name)[1]] = blob[start:start + size]
        offset = start + math.ceil(size / TAR_BLOCK) * TAR_BLOCK
    return members


def _field(header: bytes, start: int, end: int) -> str:
    """A NUL-terminated text field of a tar header."""
    return header[start:end].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


@dataclasses.dataclass(frozen=True, slots=True)
class StagedSample:
    """What crosses Beam's shuffles for one sample: its identity, what the filters, the shard plan
    and the manifest need, and where its bytes are; nothing of the pixels. It is kept lean (a local
    run holds one per sample at its shuffles): the index row is made when the shard is written."""

    key: str
    uri: str
    blob: str  # the staged members' path
    sha256: str  # of the blob: a staged file that changed or went missing is caught at write time
    size: int  # bytes in a tar: the blob's length
    category: str
    locator: str
    text_source: str | None = None
    scored: tuple[tuple[str, float], ...] = ()  # the sample's scores, sorted
    label: str | None = None  # the taxonomy leaf, REVIEW_LABEL when unsure, None: not labelled
    source: str | None = None  # the recipe source it came from, for the reject rows that name it
    extras: dict = dataclasses.field(default_factory=dict)  # what dedup compares (hashes, an embedding)
    offset: int = -1  # where the blob starts in its file, a pack (-1: the blob is the whole file)

    # The metadata a filter reads, named as on a Sample: filters judge records and samples alike.
    @property
    def scores(self) -> dict:
        return dict(self.scored)

    @property
    def provenance(self) -> dict:
        return {"recipe_source": self.source} if self.source else {}


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
            path, offset = _append_to_pack(f"{self.root}/samples/packs", blob)
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
        lines = (json.dumps({"ref": list(ref), "samples": [_fields(record) for record in staged],
                             "rejects": [_fields(record) for record in rejects]},
                            sort_keys=True, separators=(",", ":")) for ref, staged, rejects in done)
        batch = f"{os.getpid()}-{uuid.uuid4().hex}"  # unique among every worker writing this stage
        _write(f"{self.done_folder(stage)}/{batch}.jsonl", "\n".join(lines).encode("utf-8") + b"\n")

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


_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields(record) -> dict:
    """A flat record's fields by name, as they are: ``dataclasses.asdict`` deep-copies every value
    (about 0.1 ms a page in the pipeline's main process, where each page's done line is written)."""
    names = _FIELD_NAMES.get(type(record))
    if names is None:
        names = _FIELD_NAMES[type(record)] = tuple(field.name for field in dataclasses.fields(record))
    return {name: getattr(record, name) for name in names}


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


_PACK: dict = {}  # this process's open pack file: {"folder": ..., "handle": ...}
_PACK_LOCK = threading.Lock()


def _append_to_pack(folder: str, blob: bytes) -> tuple[str, int]:
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


def encode(sample: Sample, extras: dict | None = None) -> tuple[StagedSample, bytes]:
    """The sample's record (its blob not yet placed) and the bytes it takes in a shard."""
    blob = tar_members(sample.members())
    record = StagedSample(sample.key, sample.uri, "", hashlib.sha256(blob).hexdigest(), len(blob), sample.category,
                          sample.locator, sample.text_source,
                          tuple(sorted((name, float(value)) for name, value in sample.scores.items())),
                          label_of(sample), sample.provenance.get("recipe_source"), dict(extras or {}))
    return record, blob


def index_row(sample: Sample, size: int) -> dict:
    """The sample's row in the index parquet."""
    first = sample.images[0] if sample.images else None
    taxonomy = sample.taxonomy or {}
    language = sample.meta.get("language")  # {"id", "confidence"} once the labelling stage ran
    return {
        "key": sample.key,
        "source": sample.source,
        "category": sample.category,
        "uri": sample.uri,
        "locator": sample.locator,
        "image_count": len(sample.images),
        "image_width": first.width if first else None,
        "image_height": first.height if first else None,
        "image_bytes": sum(len(image.data) for image in sample.images),
        "text_chars": len(sample.text or ""),
        "text_source": sample.text_source,
        "scores": sorted((name, float(value)) for name, value in sample.scores.items()),
        "taxonomy_id": taxonomy.get("id"),
        "taxonomy_confidence": taxonomy.get("confidence"),
        "language": language.get("id") if isinstance(language, dict) else None,
        # The rule of the manifest's label counts: a leaf id is labelled, no id is review.
        "taxonomy_status": "unlabelled" if sample.taxonomy is None else REVIEWED_STATUS
        if taxonomy.get("status") == REVIEWED_STATUS else "labelled" if taxonomy.get("id") else REVIEW_STATUS,
        "sample_bytes": size,
    }


def label_of(sample: Sample) -> str | None:
    return None if sample.taxonomy is None else (sample.taxonomy.get("id") or REVIEW_LABEL)


class Finished:
    """The done files of one stage, as an index from an input's ref to its line. Built when a stage
    starts (a resumed run's replay); a fresh run's is empty, so its lookups cost a dict miss."""

    def __init__(self, lines: dict[str, bytes]):
        self._lines = lines

    @classmethod
    def read(cls, folder: str) -> "Finished":
        lines: dict[str, bytes] = {}
        for path in _listed(folder, ".jsonl"):
            try:
                with open_for_reading(path) as handle:
                    data = handle.read()
            except OSError:  # gone since it was listed: its inputs are done again
                continue
            for line in data.splitlines():
                try:
                    ref = json.loads(line)["ref"]
                except (ValueError, KeyError, TypeError):  # not ours, or cut: its input is done again
                    continue
                lines[_ref_key(ref)] = line
        return cls(lines)

    def __len__(self) -> int:
        return len(self._lines)

    def get(self, ref: tuple[str, str]) -> tuple[list[StagedSample], list[RejectRecord]] | None:
        line = self._lines.get(_ref_key(ref))
        if line is None:
            return None
        doc = json.loads(line)
        return ([StagedSample(**record) for record in doc["samples"]],
                [RejectRecord(**record) for record in doc["rejects"]])


def _ref_key(ref) -> str:
    return "\x1f".join(ref)


def _listed(folder: str, suffix: str) -> list[str]:
    """The files directly in ``folder`` ending in ``suffix`` (none when it does not exist)."""
    if "://" not in folder:
        try:
            return sorted(os.path.join(folder, name) for name in os.listdir(folder) if name.endswith(suffix))
        except OSError:
            return []
    from apache_beam.io.filesystems import FileSystems

    try:
        return sorted(meta.path for meta in FileSystems.match([f"{folder}/*{suffix}"])[0].metadata_list)
    except Exception:  # a folder that does not exist matches nothing
        return []
