"""Files through Beam's FileSystems (local, gs://, ...): capped reads and atomic, hashed writes."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import posixpath
import threading
import uuid
from collections.abc import Iterator

from vlcurate.transforms.data.rejects import Reject


def _filesystems():
    """Beam's FileSystems, imported on first use: the import costs about a second, and the
    isolated PDF child reads local files without it."""
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def _uncompressed():
    from apache_beam.io.filesystem import CompressionTypes

    return CompressionTypes.UNCOMPRESSED


@dataclasses.dataclass(frozen=True)
class WrittenFile:
    """What the manifest records of a file the run wrote."""

    path: str
    bytes: int
    sha256: str


class _HashingWriter:
    """A write-only file object that hashes and counts what passes through it."""

    def __init__(self, raw):
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def write(self, data) -> int:
        self._raw.write(data)
        self.sha256.update(data)
        self.bytes += len(data)
        return len(data)

    def flush(self):
        self._raw.flush()


class ExistingFileDiffers(RuntimeError):
    """Resuming found a finished file whose bytes are not what this run makes."""


def atomic_write(path: str, write, keep_identical: bool = False) -> WrittenFile:
    """Call ``write(file_obj)`` on a temporary file beside ``path``, then rename it into place.

    A reader never sees a half-written file, and a retried bundle simply replaces the file with
    identical bytes. The temporary name starts with a dot so globs of the final names skip it.
    With ``keep_identical`` (resuming a run) a file already at ``path`` is left untouched when it
    holds the same bytes, and ExistingFileDiffers is raised when it does not.
    """
    filesystems = _filesystems()
    folder, name = posixpath.split(path)
    temporary = filesystems.join(folder, f".tmp-{name}-{uuid.uuid4().hex}")
    with filesystems.create(temporary, compression_type=_uncompressed()) as raw:
        writer = _HashingWriter(raw)
        write(writer)
    written = WrittenFile(path, writer.bytes, writer.sha256.hexdigest())
    if keep_identical and filesystems.exists(path):
        filesystems.delete([temporary])
        if file_sha256(path) != written.sha256:
            raise ExistingFileDiffers(f"{path} exists with other bytes than this run writes: its inputs or "
                                      "settings changed since the run that wrote it")
        return written
    filesystems.rename([temporary], [path])
    return written


def write_bytes(path: str, data: bytes, keep_identical: bool = False) -> WrittenFile:
    return atomic_write(path, lambda out: out.write(data), keep_identical)


def file_sha256(uri: str) -> str:
    """sha256 of a local or FileSystems file (model weights, trained data, a finished shard), read a
    megabyte at a time. A local path does not import Beam, so isolated children may call it."""
    digest = hashlib.sha256()
    with open_for_reading(uri) as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def open_for_reading(uri: str):
    """A binary stream of a local path or any FileSystems URI, read as stored (no decompression)."""
    if "://" in uri:
        return _filesystems().open(uri, compression_type=_uncompressed())
    return open(uri, "rb")


def read_range(uri: str, offset: int, size: int) -> bytes:
    """``size`` bytes of ``uri`` from ``offset`` (fewer where the file ends first).

    On gs:// one ranged request of exactly those bytes: Beam's reader there fetches 16 MB from
    the offset whatever is asked (google-cloud-storage's BlobReader reads a whole chunk ahead) and
    makes a new client, with its own connection, at every open; a staged blob of 150 KB in a pack
    of many cost megabytes of download and a handshake each."""
    if uri.startswith("gs://"):
        return _gcs_range(uri, offset, size)
    with open_for_reading(uri) as handle:
        handle.seek(offset)
        return handle.read(size)


_GCS = threading.local()  # each thread's Cloud Storage client: one for every read it makes


def _gcs_client():
    client = getattr(_GCS, "client", None)
    if client is None or getattr(_GCS, "pid", None) != os.getpid():  # a forked child needs its own
        from apache_beam.io.gcp.gcsio import GcsIO  # the client and credentials Beam's FileSystems use

        _GCS.client, _GCS.pid = GcsIO().client, os.getpid()
    return _GCS.client


def _gcs_range(uri: str, offset: int, size: int) -> bytes:
    if size <= 0:
        return b""
    bucket, _, name = uri[len("gs://"):].partition("/")
    blob = _gcs_client().bucket(bucket).blob(name)
    # ``end`` is the last byte, inclusive; raw: the bytes as stored, as Beam's reader asks.
    return blob.download_as_bytes(start=offset, end=offset + size - 1, checksum=None, raw_download=True)


def read_capped(uri: str, max_bytes: int) -> bytes:
    """Read a whole input, refusing one over ``max_bytes`` without reading past the cap."""
    try:
        with open_for_reading(uri) as handle:
            data = handle.read(max_bytes + 1)
    except Exception as error:  # any filesystem's error: missing, permission, network
        raise Reject("read_error", f"{type(error).__name__}: {error}") from error
    if len(data) > max_bytes:
        raise Reject("file_too_large", f"over {max_bytes} bytes")
    return data


def capped_lines(handle, max_bytes: int) -> Iterator[tuple[bytes, bool]]:
    """(line, whole) pairs; a line longer than ``max_bytes`` is skipped to its end unread and
    comes out as (b"", False), so one giant line costs no memory."""
    while True:
        line = handle.readline(max_bytes + 1)
        if not line:
            return
        if len(line) > max_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = handle.readline(1 << 20)
            yield b"", False
        else:
            yield line, True


def jsonl_lines(uri: str, max_bytes: int) -> Iterator[tuple[str, bytes | None]]:
    """("line N", bytes) for each non-blank line of a JSON-lines file, streamed; a line over
    ``max_bytes`` comes out as ("line N", None), unread. A file that cannot be opened is a Reject."""
    try:
        handle = open_for_reading(uri)
    except Exception as error:
        raise Reject("read_error", f"{type(error).__name__}: {error}") from error
    with handle:
        for number, (line, whole) in enumerate(capped_lines(handle, max_bytes), 1):
            if not whole:
                yield f"line {number}", None
            elif line.strip():
                yield f"line {number}", line
