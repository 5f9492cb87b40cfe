"""The Sample contract: keys, validation, tar members, canonical JSON, image encoding, round trips."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from collections import defaultdict

import pytest
import webdataset as wds
from PIL import Image as PILImage
from PIL import ImageCms

from vlcurate.transforms.data.sample import (
    SCHEMA,
    Image,
    Sample,
    encode_image,
    make_key,
    sample_from_members,
    split_member_name,
)
from vlcurate.transforms.io.shard_reader import read_shard
from vlcurate.transforms.io.shards import write_tar
from vlcurate.transforms.io.blobs import tar_members

NON_ASCII = "Größe — 数学 ∑ naïve café 🙂"


def pixels(color, size=(8, 6), mode="RGB"):
    """A small image with a little structure (two colours), so encoders have something to do."""
    image = PILImage.new(mode, size, color)
    image.putpixel((0, 0), (255, 255, 255) if mode == "RGB" else 255)
    return image


def png(color, size=(8, 6)) -> Image:
    return encode_image(pixels(color, size), "png")


def jpeg(color, size=(16, 12)) -> Image:
    return encode_image(pixels(color, size), "jpeg")


def sample(key=None, **fields) -> Sample:
    base = dict(
        key=make_key("pdf", "doc-sha", 0) if key is None else key,
        source="pdf",
        category="document_ocr",
        uri="file:///data/doc.pdf",
        locator="page=0",
    )
    base.update(fields)
    return Sample(**base)


def corpus() -> list[Sample]:
    """One of each shape: png + text, jpeg, several images, web with html, text only."""
    return [
        sample(
            key=make_key("pdf", "aaa", 0),
            images=(png((10, 20, 30)),),
            text=NON_ASCII,
            text_source="pdf-text-layer",
            scores={"ocr_confidence": 0.75},
            provenance={"pipeline": "pdf_pages", "version": "0.1.0"},
            meta={"page": {"number": 0, "width_pt": 612.0}, "title": NON_ASCII},
        ),
        sample(key=make_key("pdf", "bbb", 3), uri="file:///data/b.pdf", locator="page=3", images=(jpeg((200, 10, 10)),)),
        sample(
            key=make_key("chart", "ccc"),
            source="chart",
            category="table_chart",
            uri="file:///charts/c.json",
            locator="",
            images=(png((1, 2, 3)), png((4, 5, 6), size=(5, 9)), jpeg((7, 8, 9))),
            text="a | b\n1 | 2",
            text_source="caption",
        ),
        sample(
            key=make_key("web", "https://example.org/", "1280x800"),
            source="web",
            category="web_code",
            uri="https://example.org/",
            locator="viewport=1280x800",
            images=(png((0, 128, 255), size=(12, 8)),),
            text="<div>hi</div>",
            html="<!doctype html><html><body><p>" + NON_ASCII + "</p></body></html>",
            text_source="html",
            scores={"clip": 0.31},
            taxonomy={"id": "web/code", "confidence": 0.9, "version": "1"},
            conversation=[
                {"role": "User", "content": "<image_placeholder>Write the HTML.", "images": [0]},
                {"role": "Assistant", "content": "<div>hi</div>"},
            ],
        ),
        sample(key=make_key("text", "ddd"), source="text", category="text_only", uri="s3://b/t.txt", locator="", text="x"),
    ]


# --- make_key ---------------------------------------------------------------------------------


def test_make_key_format_and_pinned_value():
    key = make_key("pdf", "0f3a9c", 7)
    # Pinned: sha256("pdf\x1f0f3a9c\x1f7")[:24]. A change to the key scheme renames every sample.
    assert key == "pdf-4df294601fe76b3795cea882"
    assert key == make_key("pdf", "0f3a9c", "7")  # parts are str()-ed
    web = make_key("web-archive", "https://example.org/", "1280x800")
    prefix, digest = web.rsplit("-", 1)
    assert prefix == "web-archive" and len(digest) == 24 and all(c in "0123456789abcdef" for c in digest)


def test_make_key_is_stable_and_identities_differ():
    assert make_key("pdf", "abc", 1) == make_key("pdf", "abc", 1)
    keys = {
        make_key("pdf", "abc", 1),
        make_key("pdf", "abc", 2),
        make_key("pdf", "abd", 1),
        make_key("web", "abc", 1),
        make_key("pdf", "a", "bc"),
        make_key("pdf", "ab", "c"),
        make_key("pdf", "abc"),
        make_key("pdf"),
    }
    assert len(keys) == 8


@pytest.mark.parametrize("source", ["PDF", "pdf.x", "pdf_x", "", "-pdf", "pdf-", "pdf/x", "p df"])
def test_make_key_rejects_bad_source(source):
    with pytest.raises(ValueError):
        make_key(source, "abc")


def test_make_key_rejects_separator_in_identity():
    with pytest.raises(ValueError):
        make_key("pdf", "a\x1fb")


# --- Sample validation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["PDF-abc", "pdf-ABC", "pdf-abc.png", "pdf.abc", "", "-pdf", "pdf_abc", "pdf abc", "pdf/abc"]
)
def test_sample_rejects_bad_key(key):
    with pytest.raises(ValueError, match="key"):
        sample(key=key)


def test_sample_rejects_unknown_source_and_category():
    with pytest.raises(ValueError, match="source"):
        sample(source="video")
    with pytest.raises(ValueError, match="category"):
        sample(category="memes")
    # the known ones pass
    sample(source="notebook", category="interleaved")


@pytest.mark.parametrize("field", ["schema", "key", "image", "images", "uri", "scores", "provenance", "conversation"])
def test_sample_rejects_meta_that_clashes_with_a_core_field(field):
    with pytest.raises(ValueError, match="clash"):
        sample(meta={field: "x", "fine": 1})


def test_image_rejects_unknown_format_and_empty_size():
    with pytest.raises(ValueError):
        Image(b"x", "gif", 1, 1)
    with pytest.raises(ValueError):
        Image(b"x", "png", 0, 1)


# --- members and KEY.json ---------------------------------------------------------------------


def test_members_single_png_with_text():
    s = corpus()[0]
    names = [name for name, _ in s.members()]
    assert names == [f"{s.key}.json", f"{s.key}.png", f"{s.key}.txt"]
    members = dict(s.members())
    assert members[f"{s.key}.png"] == s.images[0].data
    assert members[f"{s.key}.txt"] == NON_ASCII.encode("utf-8")


def test_members_single_jpeg_is_jpg():
    s = corpus()[1]
    assert [name for name, _ in s.members()] == [f"{s.key}.jpg", f"{s.key}.json"]


def test_members_several_images_are_numbered():
    s = corpus()[2]
    names = [name for name, _ in s.members()]
    assert names == [f"{s.key}.0.png", f"{s.key}.1.png", f"{s.key}.2.jpg", f"{s.key}.json", f"{s.key}.txt"]
    members = dict(s.members())
    for i, image in enumerate(s.images):
        assert members[f"{s.key}.{i}.{image.extension}"] == image.data
    doc = json.loads(members[f"{s.key}.json"])
    assert "image" not in doc
    assert doc["images"] == [
        {"width": image.width, "height": image.height, "sha256": hashlib.sha256(image.data).hexdigest(),
         "format": image.format}
        for image in s.images
    ]
    assert [d["format"] for d in doc["images"]] == ["png", "png", "jpeg"]
    assert (doc["images"][1]["width"], doc["images"][1]["height"]) == (5, 9)


def test_members_web_sample_has_html():
    s = corpus()[3]
    names = [name for name, _ in s.members()]
    assert names == [f"{s.key}.html", f"{s.key}.json", f"{s.key}.png", f"{s.key}.txt"]
    assert dict(s.members())[f"{s.key}.html"] == s.html.encode("utf-8")
    # every member of a sample splits back to the sample's key at the first dot
    assert {split_member_name(name)[0] for name in names} == {s.key}


def test_json_document():
    s = corpus()[0]
    raw = dict(s.members())[f"{s.key}.json"]
    doc = json.loads(raw.decode("utf-8"))
    assert doc["schema"] == SCHEMA == "vlcurate.sample/1"
    assert doc["key"] == s.key
    assert (doc["source"], doc["category"], doc["uri"], doc["locator"]) == (
        "pdf", "document_ocr", "file:///data/doc.pdf", "page=0",
    )
    assert doc["image"] == {
        "width": 8, "height": 6, "sha256": hashlib.sha256(s.images[0].data).hexdigest(), "format": "png",
    }
    assert "images" not in doc
    assert doc["text_source"] == "pdf-text-layer"
    assert doc["scores"] == {"ocr_confidence": 0.75}
    assert doc["provenance"] == {"pipeline": "pdf_pages", "version": "0.1.0"}
    assert doc["page"] == {"number": 0, "width_pt": 612.0}  # meta at top level
    assert "taxonomy" not in doc and "conversation" not in doc


def test_json_keys_sorted_at_every_level_and_utf8_as_is():
    s = corpus()[3]
    raw = dict(s.members())[f"{s.key}.json"]

    def check_sorted(pairs):
        names = [name for name, _ in pairs]
        assert names == sorted(names)
        return dict(pairs)

    doc = json.loads(raw, object_pairs_hook=check_sorted)
    assert doc["taxonomy"] == {"id": "web/code", "confidence": 0.9, "version": "1"}
    assert doc["conversation"][0]["images"] == [0]
    raw0 = dict(corpus()[0].members())[f"{corpus()[0].key}.json"]
    assert NON_ASCII.encode("utf-8") in raw0  # not \u-escaped
    assert b"\\u" not in raw0
    assert raw0 == json.dumps(
        json.loads(raw0), sort_keys=True, ensure_ascii=False, separators=(",", ":")
    ).encode("utf-8")


def test_json_refuses_nan():
    s = sample(scores={"clip": float("nan")})
    with pytest.raises(ValueError):
        s.members()


# --- encode_image -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["png", "jpeg"])
def test_encode_image_same_pixels_same_bytes(fmt):
    a = pixels((30, 60, 90), size=(20, 10))
    b = PILImage.frombytes("RGB", a.size, a.tobytes())  # a separate object, same pixels
    first, second = encode_image(a, fmt), encode_image(b, fmt)
    assert first.data == second.data
    assert first == second
    assert (first.width, first.height, first.format) == (20, 10, fmt)
    decoded = PILImage.open(io.BytesIO(first.data))
    assert decoded.format == {"png": "PNG", "jpeg": "JPEG"}[fmt]
    assert decoded.size == (20, 10)
    if fmt == "png":
        assert decoded.convert("RGB").tobytes() == a.tobytes()  # lossless
    else:
        assert not decoded.info.get("progressive")


def test_encode_image_converts_modes():
    rgba = PILImage.new("RGBA", (4, 4), (1, 2, 3, 128))
    assert PILImage.open(io.BytesIO(encode_image(rgba, "jpeg").data)).mode == "RGB"
    cmyk = PILImage.new("CMYK", (4, 4), (1, 2, 3, 4))
    assert PILImage.open(io.BytesIO(encode_image(cmyk, "png").data)).mode == "RGB"
    with pytest.raises(ValueError):
        encode_image(rgba, "webp")


def _with_metadata(fmt: str) -> PILImage.Image:
    """An image as a stage gets it from a file: carrying EXIF, an ICC profile, a comment, dpi."""
    exif = PILImage.Exif()
    exif[0x010F] = "SomeCamera"  # Make
    exif[0x0132] = "2021:02:03 04:05:06"  # DateTime
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    buffer = io.BytesIO()
    extra = {"comment": b"written by someone"} if fmt == "jpeg" else {}
    pixels((40, 80, 120), size=(16, 16)).save(
        buffer, format=fmt.upper(), exif=exif.tobytes(), icc_profile=icc, dpi=(300, 300), **extra
    )
    loaded = PILImage.open(io.BytesIO(buffer.getvalue()))
    loaded.load()
    assert loaded.info.get("icc_profile") and loaded.getexif()  # the fixture does carry metadata
    return loaded


@pytest.mark.parametrize(
    "source_fmt,fmt", [(a, b) for a in ("png", "jpeg") for b in ("png", "jpeg")], ids=lambda v: v
)
def test_encode_image_writes_no_exif(source_fmt, fmt):
    encoded = encode_image(_with_metadata(source_fmt), fmt)
    decoded = PILImage.open(io.BytesIO(encoded.data))
    assert not decoded.getexif()
    assert "exif" not in decoded.info
    assert b"SomeCamera" not in encoded.data


@pytest.mark.parametrize(
    "source_fmt,fmt", [(a, b) for a in ("png", "jpeg") for b in ("png", "jpeg")], ids=lambda v: v
)
def test_encode_image_metadata_does_not_change_bytes(source_fmt, fmt):
    """Same pixels, same bytes: metadata the source image carried (ICC, comment) is not written."""
    loaded = _with_metadata(source_fmt)
    bare = PILImage.frombytes(loaded.mode, loaded.size, loaded.tobytes())
    encoded = encode_image(loaded, fmt)
    assert encoded.data == encode_image(bare, fmt).data
    assert "icc_profile" not in PILImage.open(io.BytesIO(encoded.data)).info


# --- round trips ------------------------------------------------------------------------------


def _write(path, samples):
    with open(path, "wb") as out:
        write_tar(out, [tar_members(s.members()) for s in samples])


def _read_with_tarfile(path) -> list[Sample]:
    groups: dict[str, dict[str, bytes]] = defaultdict(dict)
    order = []
    with tarfile.open(path) as tar:
        for info in tar.getmembers():
            assert info.isreg()
            key, suffix = split_member_name(info.name)
            if key not in groups:
                order.append(key)
            groups[key][suffix] = tar.extractfile(info).read()
    return [sample_from_members(groups[key]) for key in order]


def _read_with_webdataset(path) -> list[Sample]:
    out = []
    for raw in wds.WebDataset(str(path), shardshuffle=False, empty_check=True):
        assert raw["__key__"]
        members = {name: value for name, value in raw.items() if not name.startswith("__")}
        assert all(isinstance(value, bytes) for value in members.values())
        out.append(sample_from_members(members))
    return out


def test_round_trip_tarfile_webdataset_read_shard(tmp_path):
    samples = sorted(corpus(), key=lambda s: s.key)
    path = tmp_path / "round.tar"
    _write(path, samples)

    by_tarfile = _read_with_tarfile(path)
    by_webdataset = _read_with_webdataset(path)
    by_read_shard = list(read_shard(str(path)))

    assert by_tarfile == samples
    assert by_webdataset == samples
    assert by_read_shard == samples
    multi = next(s for s in by_webdataset if len(s.images) == 3)
    assert [image.format for image in multi.images] == ["png", "png", "jpeg"]
    web = next(s for s in by_webdataset if s.source == "web")
    assert web.html.endswith(NON_ASCII + "</p></body></html>")
    assert web.conversation[0]["images"] == [0]
    assert by_webdataset[[s.key for s in samples].index(corpus()[0].key)].meta == corpus()[0].meta
    # and re-encoding what was read gives the very same members
    assert [s.members() for s in by_webdataset] == [s.members() for s in samples]


def test_sample_from_members_rejects_wrong_image_sha(tmp_path):
    single = corpus()[0]
    members = {split_member_name(name)[1]: data for name, data in single.members()}
    members["png"] = png((99, 99, 99)).data
    with pytest.raises(ValueError, match="sha256"):
        sample_from_members(members)

    several = corpus()[2]
    members = {split_member_name(name)[1]: data for name, data in several.members()}
    members["0.png"], members["1.png"] = members["1.png"], members["0.png"]
    with pytest.raises(ValueError, match="sha256"):
        sample_from_members(members)

    # the same through a shard: read_shard refuses it too
    path = tmp_path / "bad.tar"
    good = sample_from_members({split_member_name(name)[1]: data for name, data in single.members()})
    assert good == single
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in single.members():
            if name.endswith(".png"):
                data = data[:-1] + bytes([data[-1] ^ 1])
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ValueError, match="sha256"):
        list(read_shard(str(path)))


def test_sample_from_members_needs_json_and_schema():
    s = corpus()[1]
    members = {split_member_name(name)[1]: data for name, data in s.members()}
    with pytest.raises(ValueError, match="json"):
        sample_from_members({k: v for k, v in members.items() if k != "json"})
    doc = json.loads(members["json"])
    doc["schema"] = "vlcurate.sample/0"
    with pytest.raises(ValueError, match="schema"):
        sample_from_members(dict(members, json=json.dumps(doc).encode()))


def test_split_member_name():
    assert split_member_name("pdf-abc.0.png") == ("pdf-abc", "0.png")
    assert split_member_name("pdf-abc.json") == ("pdf-abc", "json")
    for bad in ("pdf-abc", ".json"):
        with pytest.raises(ValueError):
            split_member_name(bad)
