"""The one hardened shard reader, through which filter, inspect, the report and the trainer read shards.

A shard is untrusted input: a copy that failed half way, a disk that flipped a bit, a tar someone
else wrote. ``tarfile`` in stream mode takes a header cut short, or a missing end, for the end of
the archive, so a cut shard reads as a shorter one with no error. Here the 512-byte USTAR blocks
are parsed by hand and every problem is a ``ShardError(path, offset, reason)``: a shard that is
cut (inside a header, inside a member's data, at a block boundary, before or between its two zero
end blocks), corrupt (header checksum, size field, a member that is not a regular file, a name
with a path or a dot-dot, a member twice in a sample, a sample whose members are not together,
bytes after the end), oversized (a member over the byte cap) or holding a pickle-like member.
With the manifest's record of the shard (``expect``: its bytes and sha256) those are checked too.
Samples are yielded as soon as the next sample's header is whole, so a reader that catches the
error keeps every sample before the damage; the last sample waits for the archive's end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import struct
import tarfile
from collections.abc import Callable, Iterable, Iterator, Mapping

from vlcurate.transforms.data.sample import Sample, sample_from_members
from vlcurate.transforms.io.files import open_for_reading

BLOCK = tarfile.BLOCKSIZE
_ZERO_BLOCK = bytes(BLOCK)
_CHUNK = 1 << 20  # data is read and hashed a megabyte at a time, so a skipped member costs no memory
_MAX_PAX_BYTES = 64 * 1024  # a pax header holds a few short records; a huge one is not a shard's
# Caps for reading shards we did not write (hostile until proven otherwise).
MAX_MEMBER_BYTES = 256 * 1024 * 1024
# Member suffixes whose usual decoders unpickle (webdataset's .pyd/.pickle, torch.load's .pth/.pt,
# numpy's .npy/.npz with allow_pickle, joblib, dill): refused unread, by every reader, whatever
# part of the suffix they are (KEY.pth.gz is refused too). Nothing in vlcurate ever unpickles.
PICKLE_SUFFIXES = frozenset({"pyd", "pickle", "pkl", "pck", "pcl", "dill", "joblib", "pth", "pt", "ckpt",
                             "npy", "npz"})

# The reasons of a ShardError: what is wrong with the shard.
PROBLEMS = {
    "unreadable": "the shard could not be opened or read (missing, permission, network)",
    "truncated": "the shard ends inside a header, inside a member's data, or before its two end-of-archive blocks",
    "bad_checksum": "a header's checksum does not match its bytes: a damaged header, or no tar header at all",
    "bad_header": "a header is not a USTAR header, a pax extended header is malformed, or a zero block stands "
    "inside the archive",
    "bad_size": "a header's size field is not a number",
    "not_regular": "a member is not a regular file (link, directory, device, FIFO, GNU long name, pax global header)",
    "bad_name": "a member name has a path, a dot-dot or an empty part, control characters, or no KEY.SUFFIX form",
    "duplicate_member": "a sample holds the same member twice",
    "split_sample": "a sample's members are not together: its key comes back after another sample's",
    "member_too_large": "a member is larger than the reader's byte cap",
    "pickle_refused": "a member has a pickle-like suffix (.pth .pt .pkl .pickle .pyd .npy .npz ...); it is never read",
    "trailing_data": "bytes other than zero padding follow the end-of-archive blocks",
    "bad_sample": "a sample's members do not decode to a vlcurate sample (json, schema, image sha256)",
    "size_mismatch": "the shard's size is not the one the manifest records",
    "sha256_mismatch": "the shard's sha256 is not the one the manifest records",
}
# Problems of one sample inside a sound archive: its data can be stepped over, so a lenient reader
# (the trainer) skips that sample and reads on. Every other problem ends the shard.
SAMPLE_PROBLEMS = frozenset({"pickle_refused", "member_too_large"})

_TYPES = {b"1": "hard link", b"2": "symbolic link", b"3": "character device", b"4": "block device",
          b"5": "directory", b"6": "FIFO", b"7": "contiguous file", b"g": "pax global header",
          b"L": "GNU long name", b"K": "GNU long link name"}


class ShardError(ValueError):
    """A shard that cannot be read whole: names the shard, the byte offset and the problem."""

    def __init__(self, path: str, offset: int, reason: str, detail: str = ""):
        if reason not in PROBLEMS:
            raise ValueError(f"unknown shard problem {reason!r}; add it to shard_reader.PROBLEMS")
        super().__init__(f"shard {path}: {reason} at byte {offset:,}" + (f": {detail}" if detail else ""))
        self.path, self.offset, self.reason, self.detail = path, offset, reason, detail

    def __reduce__(self):  # travels between processes (DataLoader workers, Beam) with its fields
        return ShardError, (self.path, self.offset, self.reason, self.detail)


@dataclasses.dataclass
class Group:
    """One sample's members as the archive holds them, in archive order."""

    key: str
    number: int  # the sample's position in the shard, from 0
    offset: int  # where its first header starts
    members: dict[str, bytes] | None  # suffix -> bytes; None when not wanted or refused (left unread)
    refused: str | None = None  # lenient reading: the SAMPLE_PROBLEMS reason that refused this sample


class _Stream:
    """The shard's bytes in order: counted, so every error can say where, and hashed when the
    manifest's sha256 is to be checked."""

    def __init__(self, handle, path: str, hashed: bool):
        self._handle, self.path, self.offset = handle, path, 0
        self.digest = hashlib.sha256() if hashed else None

    def error(self, reason: str, detail: str, offset: int | None = None) -> ShardError:
        return ShardError(self.path, self.offset if offset is None else offset, reason, detail)

    def read(self, size: int) -> bytes:
        """Up to ``size`` bytes; fewer only where the shard ends (a short read is retried: pipes
        and network streams give what they have)."""
        parts = []
        while size > 0:
            try:
                data = self._handle.read(min(size, _CHUNK))
            except Exception as error:  # any filesystem's or pipe's error mid-read
                raise self.error("unreadable", f"{type(error).__name__}: {error}") from error
            if not data:
                break
            parts.append(data)
            size -= len(data)
            self.offset += len(data)
            if self.digest is not None:
                self.digest.update(data)
        return b"".join(parts)

    def exact(self, size: int, what: str) -> bytes:
        data = self.read(size)
        if len(data) < size:
            raise self.error("truncated", f"the file ends inside {what} ({len(data):,} of {size:,} bytes)")
        return data

    def skip(self, size: int, what: str) -> None:
        while size > 0:  # read, not seek: a cut inside skipped data must show, and the hash needs every byte
            size -= len(self.exact(min(size, _CHUNK), what))


def read_groups(path: str, *, max_member_bytes: int = MAX_MEMBER_BYTES, want: Callable[[int], bool] | None = None,
                lenient: bool = False, expect: Mapping | None = None,
                opener: Callable = open_for_reading) -> Iterator[Group]:
    """The samples of one shard as member groups, streamed (a local path, or any FileSystems URI).

    ``want(number)`` False leaves a sample's data unread (another reader's share, or before a resume
    point); its headers are checked all the same. ``lenient`` turns the SAMPLE_PROBLEMS into a
    refused Group instead of an error. ``expect`` is the manifest's record of the shard (``bytes``,
    ``sha256``), checked at its end. ``opener(path)`` gives the binary stream.
    """
    try:
        handle = opener(path)
    except Exception as error:  # missing, permission, network: the shard as a whole is unreadable
        raise ShardError(path, 0, "unreadable", f"{type(error).__name__}: {error}") from error
    try:
        yield from _groups(_Stream(handle, path, bool(expect and expect.get("sha256"))), max_member_bytes,
                           want, lenient, expect)
    finally:
        try:
            handle.close()
        except Exception:  # a pipe's exit status: whatever it cut short was already found above
            pass


def _groups(stream: _Stream, cap: int, want, lenient: bool, expect: Mapping | None) -> Iterator[Group]:
    finished: set[str] = set()  # keys of the samples already yielded, to catch a sample split in two
    group, suffixes = None, set()
    extended = None  # the fields of a pax extended header, for the member after it
    while True:
        at = stream.offset
        header = stream.read(BLOCK)
        if len(header) < BLOCK:
            where = "inside a header" if header else "before its end-of-archive blocks"
            raise stream.error("truncated", f"the file ends {where}")
        if header == _ZERO_BLOCK:
            if extended is not None:
                raise stream.error("bad_header", "a pax extended header with no member after it", at)
            _check_end(stream, expect)
            break
        name, size, kind = _parse_header(stream, header, at)
        if kind == b"x":  # a pax header (webdataset's writer adds one for mtime): it amends the next member
            if extended is not None:
                raise stream.error("bad_header", "two pax extended headers in a row", at)
            if size > _MAX_PAX_BYTES:
                raise stream.error("bad_header", f"a pax extended header of {size:,} bytes", at)
            extended = _pax_fields(stream, stream.exact(size, "a pax extended header"), at)
            stream.skip(-size % BLOCK, "the padding of a pax extended header")
            continue
        if kind not in (b"0", b"\0"):
            what = _TYPES.get(kind, f"type {kind!r}")
            raise stream.error("not_regular", f"member {name!r} is not a regular file ({what})", at)
        if extended is not None:
            name, size, extended = extended.get("path", name), extended.get("size", size), None
        key, suffix = _split_name(stream, name, at)
        if group is None or key != group.key:
            if group is not None:
                finished.add(group.key)
                yield group
            if key in finished:
                raise stream.error("split_sample", f"member {name!r} comes after another sample's members", at)
            number = 0 if group is None else group.number + 1
            group = Group(key, number, at, {} if want is None or want(number) else None)
            suffixes = set()
        if suffix in suffixes:
            raise stream.error("duplicate_member", f"member {name!r} is in the sample twice", at)
        suffixes.add(suffix)
        problem = _member_problem(name, suffix, size, cap)
        if problem is not None:
            if not lenient:
                raise stream.error(problem[0], problem[1], at)
            group.members, group.refused = None, group.refused or problem[0]
        if group.members is not None:
            group.members[suffix] = stream.exact(size, f"member {name!r}")
        else:
            stream.skip(size, f"member {name!r}")
        stream.skip(-size % BLOCK, f"the padding of member {name!r}")
    if group is not None:
        yield group


def _number(field: bytes) -> int | None:
    """A header's numeric field: octal digits ended by NUL or space, or GNU's base-256 (high bit set,
    positive only); None when it is neither."""
    if field[:1] == b"\x80":
        return int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    if not digits or any(byte not in b"01234567" for byte in digits):
        return None
    return int(digits, 8)


def _parse_header(stream: _Stream, header: bytes, at: int) -> tuple[str, int, bytes]:
    """(name, size, type flag) of a header whose checksum, magic, name and size field are sound."""
    stored = _number(header[148:156])
    # The checksum counts its own field as eight spaces; old tars summed signed bytes.
    unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
    signed = sum(struct.unpack("148b", header[:148])) + 8 * 32 + sum(struct.unpack("356b", header[156:]))
    if stored is None or stored not in (unsigned, signed):
        raise stream.error("bad_checksum", f"the header checksum field {header[148:156]!r} does not match the "
                           f"header's bytes (sum {unsigned:o}): a damaged header, or not a tar file", at)
    magic = header[257:265]
    if magic[:5] != b"ustar":
        raise stream.error("bad_header", f"not a USTAR header (magic {magic!r})", at)
    raw_name = header[:100].split(b"\0", 1)[0]
    prefix = header[345:500].split(b"\0", 1)[0] if magic == b"ustar\x0000" else b""  # GNU keeps times there
    if prefix:
        raw_name = prefix + b"/" + raw_name
    try:
        name = raw_name.decode("utf-8")
    except UnicodeDecodeError as error:
        raise stream.error("bad_name", f"member name {raw_name!r} is not UTF-8", at) from error
    size = _number(header[124:136])
    if size is None:
        raise stream.error("bad_size", f"member {name!r} has the size field {header[124:136]!r}", at)
    return name, size, header[156:157]


def _pax_fields(stream: _Stream, data: bytes, at: int) -> dict:
    """``path`` and ``size`` of a pax extended header's "LENGTH KEYWORD=VALUE\\n" records (the only
    ones that change what is read; mtime, uid and the like do not matter here)."""
    fields, position = {}, 0
    while position < len(data):
        space = data.find(b" ", position)
        length = data[position:space]
        record = data[position:position + int(length)] if space > 0 and length.isdigit() else b""
        keyword, equals, value = record[len(length) + 1:-1].partition(b"=")
        if not record.endswith(b"\n") or len(record) < int(length or 0) or not equals:
            raise stream.error("bad_header", f"a malformed pax extended header record at {position}", at)
        fields[keyword] = value
        position += len(record)
    out = {}
    if b"path" in fields:
        try:
            out["path"] = fields[b"path"].decode("utf-8")
        except UnicodeDecodeError as error:
            raise stream.error("bad_name", f"pax member name {fields[b'path']!r} is not UTF-8", at) from error
    if b"size" in fields:
        if not fields[b"size"].isdigit():
            raise stream.error("bad_size", f"a pax size field {fields[b'size']!r}", at)
        out["size"] = int(fields[b"size"])
    return out


def _split_name(stream: _Stream, name: str, at: int) -> tuple[str, str]:
    """KEY and SUFFIX of a member name (split at its first dot, as webdataset does), refusing any
    name that could point elsewhere or be read two ways."""
    if "/" in name or "\\" in name:
        raise stream.error("bad_name", f"member name {name!r} has a path", at)
    if any(ord(char) < 32 or ord(char) == 127 for char in name):
        raise stream.error("bad_name", f"member name {name!r} has control characters", at)
    if not all(name.split(".")):
        raise stream.error("bad_name", f"member name {name!r} has a dot-dot or an empty part", at)
    key, dot, suffix = name.partition(".")
    if not dot:
        raise stream.error("bad_name", f"member name {name!r} has no KEY.SUFFIX form", at)
    return key, suffix


def _member_problem(name: str, suffix: str, size: int, cap: int) -> tuple[str, str] | None:
    if PICKLE_SUFFIXES.intersection(suffix.lower().split(".")):
        return "pickle_refused", f"member {name!r} has a pickle-like suffix; refused unread"
    if size > cap:
        return "member_too_large", f"member {name!r} is too large: {size:,} bytes, over the cap of {cap:,}"
    return None


def _check_end(stream: _Stream, expect: Mapping | None) -> None:
    """After the first zero block: the second, then nothing but zero padding (tarfile and GNU tar pad
    to a 10 KiB record), then the manifest's size and sha256."""
    at = stream.offset
    second = stream.read(BLOCK)
    if len(second) < BLOCK:
        where = "inside the second" if second else "after the first"
        raise stream.error("truncated", f"the file ends {where} of its two end-of-archive blocks")
    if second != _ZERO_BLOCK:
        raise stream.error("bad_header", "a zero block inside the archive (a lone end-of-archive block)", at - BLOCK)
    while True:
        at = stream.offset
        rest = stream.read(_CHUNK)
        if not rest:
            break
        if rest.strip(b"\0"):
            where = at + len(rest) - len(rest.lstrip(b"\0"))
            raise stream.error("trailing_data", "bytes after the end-of-archive blocks", where)
    expect = expect or {}
    if expect.get("bytes") is not None and stream.offset != expect["bytes"]:
        raise stream.error("size_mismatch", f"{stream.offset:,} bytes, the manifest records {expect['bytes']:,}")
    if stream.digest is not None and stream.digest.hexdigest() != expect["sha256"]:
        raise stream.error("sha256_mismatch", f"sha256 {stream.digest.hexdigest()}, the manifest records "
                           f"{expect['sha256']}")


# --- what callers read ------------------------------------------------------------------------


def read_shard(path: str, max_member_bytes: int = MAX_MEMBER_BYTES, expect: Mapping | None = None) -> Iterator[Sample]:
    """The Samples of one shard, in archive order; any problem (a sample that does not decode too)
    is a ShardError raised after the samples before it."""
    for group in read_groups(path, max_member_bytes=max_member_bytes, expect=expect):
        try:
            sample = sample_from_members(group.members)
        except Exception as error:  # hostile bytes: any decoding error means a bad sample
            raise ShardError(path, group.offset, "bad_sample",
                             f"sample {group.key}: {type(error).__name__}: {error}") from error
        yield sample


def read_dicts(url: str, **options) -> Iterator[dict]:
    """webdataset-style samples of one shard: ``{"__key__": KEY, "__url__": url, SUFFIX: bytes, ...}``,
    the shape ``webdataset.tarfile_to_samples`` gives; ``options`` as for ``read_groups``."""
    for group in read_groups(url, **options):
        if group.members is not None:
            yield {"__key__": group.key, "__url__": url, **group.members}


def webdataset_stage(handler: Callable[[Exception], bool] | None = None, **options):
    """A webdataset pipeline stage in place of its tar expansion (``tarfile_to_samples``):
    ``{"url": ...}`` dicts in, ``read_dicts`` samples out. A ShardError goes to ``handler`` as
    webdataset's handlers take it (True: read on with the next shard; False: stop); none re-raises."""

    def stage(sources: Iterable[Mapping]) -> Iterator[dict]:
        for source in sources:
            try:
                yield from read_dicts(source["url"], **options)
            except ShardError as error:
                if handler is None:
                    raise
                if not handler(error):
                    return

    return stage


def listed_shards(dataset: str, manifest: Mapping) -> list[tuple[str, dict]]:
    """(path, manifest record) of every shard a dataset's manifest lists; the record is what
    ``expect`` takes (``bytes``, ``sha256``, ``samples``)."""
    folder = dataset.rstrip("/")
    return [(f"{folder}/{shard['name']}", shard) for shard in manifest.get("shards") or []]


def check_shard(path: str, expect: Mapping | None = None, read: bool = False) -> ShardError | None:
    """What is wrong with one shard, or None. Without ``read`` only its size is compared with the
    manifest's (one stat: it finds any cut, a missing shard or an appended one); with ``read`` the
    whole shard is read as ``read_shard`` does (structure, members, samples, size and sha256)."""
    try:
        if read:
            for _ in read_shard(path, expect=expect):
                pass
            return None
        size = _file_size(path)
        wanted = (expect or {}).get("bytes")
        if wanted is not None and size != wanted:
            reason = "truncated" if size < wanted else "size_mismatch"
            raise ShardError(path, size, reason, f"{size:,} bytes, the manifest records {wanted:,}")
    except ShardError as error:
        return error
    return None


def _file_size(path: str) -> int:
    try:
        if "://" not in path:
            return os.stat(path).st_size
        from apache_beam.io.filesystems import FileSystems

        return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
    except Exception as error:  # missing (an empty match too), permission, network
        raise ShardError(path, 0, "unreadable", f"{type(error).__name__}: {error}") from error
