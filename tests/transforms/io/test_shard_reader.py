"""The one shard reader on real shards written by the project's writer: a whole shard reads back
as written; a shard cut anywhere, corrupt, oversized or holding a pickle-like member is a
ShardError naming the shard and the problem, after the samples before the damage, never a
shorter read in silence."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import math
import pickle
import tarfile

import pytest
from PIL import Image as PILImage

from vlcurate.transforms.data.sample import Sample, encode_image, make_key
from vlcurate.transforms.io.shard_reader import (
    BLOCK,
    PICKLE_SUFFIXES,
    PROBLEMS,
    ShardError,
    check_shard,
    read_dicts,
    read_groups,
    read_shard,
    webdataset_stage,
)
from vlcurate.transforms.io.shards import write_tar
from vlcurate.transforms.io.blobs import tar_members


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A sample's tar members, as the writer lays them out (a test may rearrange them)."""

    members: tuple

    @property
    def size(self) -> int:
        return len(tar_members(self.members))


def encode_sample(s: Sample) -> Encoded:
    return Encoded(tuple(s.members()))


def sample(n: int) -> Sample:
    """A sample with an image, and a text longer than a block (so a cut can fall on a block
    boundary inside a member's data)."""
    image = PILImage.new("RGB", (6 + n, 5), ((n * 61) % 256, 90, 200))
    return Sample(key=make_key("pdf", "doc", n), source="pdf", category="document_ocr", uri=f"file:///in/{n}.pdf",
                  locator=f"page={n}", images=(encode_image(image, "png"),), text=f"page {n} " * 200,
                  text_source="pdf-text-layer")


SAMPLES = sorted((sample(n) for n in range(3)), key=lambda s: s.key)


def write(path, encoded) -> bytes:
    with open(path, "wb") as handle:
        write_tar(handle, [tar_members(e.members) for e in encoded])
    return path.read_bytes()


@pytest.fixture
def shard(tmp_path):
    """A real 3-sample shard: (path, its bytes, the manifest's record of it)."""
    path = tmp_path / "data-000000.tar"
    data = write(path, [encode_sample(s) for s in SAMPLES])
    return path, data, {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(), "samples": 3}


def members_at(data: bytes) -> list[tuple[str, int, int]]:
    """(name, header offset, data offset) of each member, as tarfile sees the whole shard."""
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(info.name, info.offset, info.offset_data) for info in tar.getmembers()]


def sample_starts(data: bytes) -> list[int]:
    starts: dict[str, int] = {}
    for name, offset, _ in members_at(data):
        starts.setdefault(name.partition(".")[0], offset)
    return sorted(starts.values())


def read_until_error(path, **options) -> tuple[list, ShardError]:
    got = []
    with pytest.raises(ShardError) as caught:
        for item in read_shard(str(path), **options):
            got.append(item)
    return got, caught.value


def assert_names(error: ShardError, path, reason: str):
    assert error.reason == reason and error.path == str(path)
    assert str(path) in str(error) and reason in str(error)


def test_a_whole_shard_reads_back_as_written_and_matches_its_record(shard):
    path, _, record = shard
    assert list(read_shard(str(path))) == SAMPLES
    assert list(read_shard(str(path), expect=record)) == SAMPLES
    assert check_shard(str(path), record) is None and check_shard(str(path), record, read=True) is None


# --- cut shards --------------------------------------------------------------------------------


CUTS = ["empty", "inside the first header", "inside a header", "at a block boundary before a header",
        "inside a member's data", "at a block boundary inside a member's data", "without its end blocks",
        "with one end block", "inside the second end block"]


def cuts(data: bytes) -> dict[str, tuple[int, int]]:
    """where to cut -> (offset, samples read before the error). A sample is yielded once the next
    sample's header is whole (or the archive's end is), since until then more of it may follow."""
    starts = sample_starts(data)
    text = next(offset for name, _, offset in members_at(data) if name.endswith(".txt") and offset > starts[1])
    members_end = len(data) - 2 * BLOCK
    return {
        "empty": (0, 0),
        "inside the first header": (100, 0),
        "inside a header": (starts[2] + 100, 1),
        "at a block boundary before a header": (starts[2], 1),
        "inside a member's data": (starts[2] + BLOCK + 7, 2),
        "at a block boundary inside a member's data": (text + BLOCK, 1),
        "without its end blocks": (members_end, 2),
        "with one end block": (members_end + BLOCK, 2),
        "inside the second end block": (len(data) - 1, 2),
    }


@pytest.mark.parametrize("where", CUTS)
def test_a_cut_shard_is_an_error_after_the_samples_before_the_cut(shard, where):
    path, data, record = shard
    offset, kept = cuts(data)[where]
    path.write_bytes(data[:offset])
    got, error = read_until_error(path)
    assert_names(error, path, "truncated")
    assert error.offset == offset and "the file ends" in str(error)
    assert got == SAMPLES[:kept]
    # the cheap check (one stat) sees every cut too, and says so by name
    found = check_shard(str(path), record)
    assert found.reason == "truncated" and str(path) in str(found) and f"{len(data):,}" in str(found)


def test_the_old_stream_reader_read_a_cut_shard_short_in_silence(shard):
    """The bug this reader fixes: tarfile's stream mode takes a cut header for the archive's end."""
    path, data, _ = shard
    cut = data[:sample_starts(data)[1] + 100]
    with tarfile.open(fileobj=io.BytesIO(cut), mode="r|") as tar:
        assert len([info.name for info in tar]) == 3  # the first sample's three members, no error
    path.write_bytes(cut)
    got, error = read_until_error(path)
    assert got == [] and error.reason == "truncated"


# --- corrupt shards ----------------------------------------------------------------------------


def patch_header(data: bytes, offset: int, field: slice, value: bytes, checksum: bool = True) -> bytes:
    """``data`` with one header field replaced, its checksum recomputed (or left stale)."""
    header = bytearray(data[offset:offset + BLOCK])
    header[field] = value.ljust(field.stop - field.start, b"\0")
    if checksum:
        header[148:156] = b" " * 8
        header[148:156] = b"%06o\0 " % sum(header)
    return data[:offset] + bytes(header) + data[offset + BLOCK:]


def test_a_damaged_header_checksum(shard):
    path, data, _ = shard
    third = sample_starts(data)[2]
    path.write_bytes(patch_header(data, third, slice(136, 148), b"77777777777", checksum=False))  # mtime, stale sum
    got, error = read_until_error(path)
    assert_names(error, path, "bad_checksum")
    assert error.offset == third and got == SAMPLES[:1]


def test_a_bad_size_field(shard):
    path, data, _ = shard
    second = sample_starts(data)[1]
    path.write_bytes(patch_header(data, second, slice(124, 136), b"00000zz1000"))
    got, error = read_until_error(path)
    assert_names(error, path, "bad_size")
    assert error.offset == second and got == []


def test_a_size_field_past_the_end_is_a_cut(shard):
    path, data, _ = shard
    last_member = members_at(data)[-1][1]
    path.write_bytes(patch_header(data, last_member, slice(124, 136), b"%011o" % (len(data) * 4)))
    got, error = read_until_error(path)
    assert_names(error, path, "truncated")
    assert got == SAMPLES[:2]


def test_junk_is_not_a_shard(tmp_path):
    path = tmp_path / "junk.tar"
    path.write_bytes(b"this is not a tar file at all" * 40)
    got, error = read_until_error(path)
    assert_names(error, path, "bad_checksum")
    assert error.offset == 0 and got == []


def test_a_missing_shard_is_unreadable(tmp_path):
    path = tmp_path / "missing.tar"
    got, error = read_until_error(path)
    assert_names(error, path, "unreadable")
    assert check_shard(str(path), {"bytes": 3072}).reason == "unreadable"


def with_members(*extra: tuple[str, bytes], at: int = 1, replace: bool = False) -> list:
    """The three samples encoded, with ``extra`` members added to (or replacing those of) sample ``at``."""
    encoded = [encode_sample(s) for s in SAMPLES]
    members = () if replace else encoded[at].members
    encoded[at] = dataclasses.replace(encoded[at], members=tuple(sorted(members + extra)))
    return encoded


@pytest.mark.parametrize("suffix", sorted(PICKLE_SUFFIXES) + ["PTH", "pth.gz", "0.npy"])
def test_a_pickle_like_member_is_refused_unread(tmp_path, suffix):
    path = tmp_path / "pickled.tar"
    payload = pickle.dumps({"never": "unpickled"})
    write(path, with_members((f"{SAMPLES[1].key}.{suffix}", payload)))
    got, error = read_until_error(path)
    assert_names(error, path, "pickle_refused")
    assert got == SAMPLES[:1] and f"{SAMPLES[1].key}.{suffix}" in str(error)
    # the lenient reading (the trainer's) refuses that sample alone, unread, and reads on
    groups = list(read_groups(str(path), lenient=True))
    assert [(g.key, g.refused, g.members is None) for g in groups] == [
        (SAMPLES[0].key, None, False), (SAMPLES[1].key, "pickle_refused", True), (SAMPLES[2].key, None, False)]


@pytest.mark.parametrize("name, says", [
    ("sub/{key}.json", "has a path"), ("../{key}.json", "has a path"), ("/tmp/{key}.json", "has a path"),
    ("{key}..json", "dot-dot"), ("..", "dot-dot"), (".{key}.json", "empty part"), ("{key}", "KEY.SUFFIX"),
    ("{key}.j\x1bson", "control characters"),
])
def test_a_member_name_with_a_path_or_a_dot_dot(tmp_path, name, says):
    path = tmp_path / "named.tar"
    write(path, with_members((name.format(key=SAMPLES[1].key), b"{}")))
    got, error = read_until_error(path)
    assert_names(error, path, "bad_name")
    assert says in str(error) and len(got) <= 1


def test_a_member_twice_in_a_sample(tmp_path):
    path = tmp_path / "twice.tar"
    json_member = next(m for m in encode_sample(SAMPLES[1]).members if m[0].endswith(".json"))
    write(path, with_members(json_member))
    got, error = read_until_error(path)
    assert_names(error, path, "duplicate_member")
    assert got == SAMPLES[:1]


def test_a_sample_whose_members_are_not_together(tmp_path):
    path = tmp_path / "split.tar"
    encoded = [encode_sample(s) for s in SAMPLES]
    head, tail = encoded[0].members[:2], encoded[0].members[2:]  # json and png; then txt, after another sample
    first = dataclasses.replace(encoded[0], members=head)
    write(path, [first, encoded[1], dataclasses.replace(encoded[0], members=tail), encoded[2]])
    got, error = read_until_error(path)
    assert_names(error, path, "split_sample")
    assert error.offset == first.size + encoded[1].size  # the header of the member that came back
    assert [s.key for s in got] == [SAMPLES[0].key, SAMPLES[1].key]


def test_bytes_after_the_end_blocks(shard):
    path, data, _ = shard
    path.write_bytes(data + bytes(BLOCK) + b"hidden archive")
    got, error = read_until_error(path)
    assert_names(error, path, "trailing_data")
    assert error.offset == len(data) + BLOCK and got == SAMPLES[:2]


def test_zero_padding_after_the_end_is_fine_but_not_the_manifests_size(shard):
    path, data, record = shard
    path.write_bytes(data + bytes(10 * BLOCK))  # as tarfile and GNU tar pad to a 10 KiB record
    assert list(read_shard(str(path))) == SAMPLES
    got, error = read_until_error(path, expect=record)
    assert_names(error, path, "size_mismatch")
    assert got == SAMPLES[:2]
    assert check_shard(str(path), record).reason == "size_mismatch"


def test_changed_bytes_fail_the_manifests_sha256(shard):
    path, data, record = shard
    text = members_at(data)[-1][2]  # the last sample's text: no checksum of the sample covers it
    path.write_bytes(data[:text] + b"P" + data[text + 1:])
    assert len(list(read_shard(str(path)))) == 3  # sound as a tar
    got, error = read_until_error(path, expect=record)
    assert_names(error, path, "sha256_mismatch")
    assert got == SAMPLES[:2] and record["sha256"] in str(error)
    assert check_shard(str(path), record) is None  # same size: only reading finds it
    assert check_shard(str(path), record, read=True).reason == "sha256_mismatch"


def test_a_member_that_does_not_decode_is_a_bad_sample(tmp_path):
    path = tmp_path / "bad-image.tar"
    encoded = [encode_sample(s) for s in SAMPLES]
    members = tuple((name, data[:-1] + bytes([data[-1] ^ 1]) if name.endswith(".png") else data)
                    for name, data in encoded[1].members)
    encoded[1] = dataclasses.replace(encoded[1], members=members)
    write(path, encoded)
    got, error = read_until_error(path)
    assert_names(error, path, "bad_sample")
    assert "sha256" in str(error) and SAMPLES[1].key in str(error) and got == SAMPLES[:1]


def test_an_oversized_member(shard):
    path, data, _ = shard
    biggest = max(len(payload) for e in map(encode_sample, SAMPLES) for _, payload in e.members)
    got, error = read_until_error(path, max_member_bytes=biggest - 1)
    assert_names(error, path, "member_too_large")
    assert "too large" in str(error)
    lenient = list(read_groups(str(path), lenient=True, max_member_bytes=biggest - 1))
    assert len(lenient) == 3 and any(g.refused == "member_too_large" for g in lenient)


def _member(name: str, type_: bytes, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = type_
    info.linkname = linkname
    return info


def _hostile_tar(path, bad: tarfile.TarInfo | None, data: bytes = b""):
    """A GNU tar (tarfile's own writer, padded to a 10 KiB record) of one good sample and ``bad``."""
    good = SAMPLES[0]
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for name, member in good.members():
            info = tarfile.TarInfo(name)
            info.size = len(member)
            tar.addfile(info, io.BytesIO(member))
        if bad is not None:
            bad.size = len(data) if bad.type == tarfile.REGTYPE else 0
            tar.addfile(bad, io.BytesIO(data) if bad.type == tarfile.REGTYPE else None)
    return good


@pytest.mark.parametrize(
    "bad",
    [
        _member("pdf-evil.json", tarfile.SYMTYPE, "/etc/passwd"),
        _member("pdf-evil.json", tarfile.LNKTYPE, "pdf-other.json"),
        _member("pdf-evil", tarfile.DIRTYPE),
        _member("pdf-evil.json", tarfile.FIFOTYPE),
        _member("pdf-evil.json", tarfile.CHRTYPE),
        _member("pdf-evil-" + "x" * 120 + ".json", tarfile.REGTYPE),  # a GNU long name header first
    ],
    ids=["symlink", "hardlink", "directory", "fifo", "chardev", "gnu-longname"],
)
def test_a_member_that_is_not_a_regular_file(tmp_path, bad):
    path = tmp_path / "hostile.tar"
    good = _hostile_tar(path, bad, b"{}")
    got, error = read_until_error(path)
    assert_names(error, path, "not_regular")
    assert "not a regular file" in str(error) and got == []
    # the control: the same GNU tar without the bad member (and its 10 KiB record's zero padding) reads
    assert _hostile_tar(path, None) == good and list(read_shard(str(path))) == [good]


# --- what else reads through it ----------------------------------------------------------------


def test_webdataset_written_shards_with_pax_headers_read_the_same(tmp_path):
    """webdataset's TarWriter puts a pax header before every member (for mtime)."""
    import webdataset as wds

    path = tmp_path / "wds.tar"
    with wds.TarWriter(str(path)) as writer:
        for s in SAMPLES:
            writer.write({"__key__": s.key, **{name.partition(".")[2]: data for name, data in s.members()}})
    assert b"PaxHeader" in path.read_bytes()
    assert list(read_shard(str(path))) == SAMPLES


def test_webdataset_style_dicts_and_stage(shard, tmp_path):
    import webdataset as wds

    path, data, _ = shard
    dicts = list(read_dicts(str(path)))
    assert [d["__key__"] for d in dicts] == [s.key for s in SAMPLES]
    assert all(d["__url__"] == str(path) for d in dicts)
    assert {k for k in dicts[0] if not k.startswith("__")} == {"json", "png", "txt"}
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:sample_starts(data)[2] + BLOCK + 7])
    seen = []
    pipeline = wds.DataPipeline(wds.SimpleShardList([str(cut), str(path)]),
                                webdataset_stage(handler=lambda error: seen.append(error) or True))
    keys = [d["__key__"] for d in pipeline]
    assert keys == [s.key for s in SAMPLES[:2]] + [s.key for s in SAMPLES]
    assert [(e.path, e.reason) for e in seen] == [(str(cut), "truncated")]
    with pytest.raises(ShardError):
        list(wds.DataPipeline(wds.SimpleShardList([str(cut)]), webdataset_stage()))


def test_want_leaves_samples_unread_but_checks_them(shard):
    path, data, _ = shard
    groups = list(read_groups(str(path), want=lambda number: number == 1))
    assert [(g.number, g.members is None) for g in groups] == [(0, True), (1, False), (2, True)]
    path.write_bytes(data[:len(data) - BLOCK - 3])
    with pytest.raises(ShardError, match="truncated"):
        list(read_groups(str(path), want=lambda number: False))


def test_shard_errors_travel_between_processes_and_name_known_problems():
    error = ShardError("gs://b/shards/data-000001.tar", 1536, "truncated", "the file ends inside a header")
    again = pickle.loads(pickle.dumps(error))
    assert (again.path, again.offset, again.reason, str(again)) == (error.path, 1536, "truncated", str(error))
    assert str(error) == "shard gs://b/shards/data-000001.tar: truncated at byte 1,536: the file ends inside a header"
    with pytest.raises(ValueError, match="unknown shard problem"):
        ShardError("x.tar", 0, "gremlins")
    assert all(PROBLEMS.values())


def test_sizes_in_cuts_are_what_the_writer_wrote(shard):
    """The cut offsets above follow the writer's layout: a header block, then data padded to blocks."""
    _, data, _ = shard
    sizes = [encode_sample(s).size for s in SAMPLES]
    assert sample_starts(data) == [0, sizes[0], sizes[0] + sizes[1]]
    assert len(data) == sum(sizes) + 2 * BLOCK
    assert all(math.ceil(len(t) / BLOCK) >= 2 for t in (s.text.encode() for s in SAMPLES))
