"""Regenerate the demo book in examples/interleaved/ (for `vlcurate interleaved`).

    python examples/make_interleaved.py [--outdir examples/interleaved]

A small EPUB 3 field guide: two chapters with three drawn pictures between their paragraphs, and
a 16-pixel bullet icon that the pipeline drops (image_tiny). Expected from `vlcurate
interleaved`: one sample with three images and three <image_placeholder>s, one filtered row.
Deterministic: fixed zip dates and member order, pictures drawn from fixed shapes.
"""

from __future__ import annotations

import argparse
import io
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw

CHAPTERS = (
    ("Birds of the shore", [
        "The shore is a narrow world between the tide lines. Waders work the wet sand at low water, and gulls "
        "follow the boats back to the harbour in the evening.",
        ("oystercatcher.png", "An oystercatcher on wet sand"),
        "The oystercatcher is easy to tell by its long orange bill and its loud piping call; it opens mussels "
        "by hammering or by slipping the bill between the shells.",
        ("bullet.png", ""),
        "Turnstones flip pebbles and weed to find sandhoppers, and they rarely mind a quiet walker nearby.",
    ]),
    ("Birds of the marsh", [
        "Behind the dunes the salt marsh floods only at the highest tides. Herons stand still in the creeks and "
        "wait for small fish to come within reach.",
        ("heron.png", "A grey heron in a creek"),
        "A grey heron may stand for an hour without moving. In flight it folds its neck back, which sets it "
        "apart from cranes and storks.",
        ("reeds.png", "Reeds at the edge of the marsh"),
        "The reed beds hide warblers and buntings; in spring their songs are the best way to find them.",
    ]),
)


def _picture(kind: str) -> bytes:
    size = (16, 16) if kind == "bullet.png" else (120, 90)
    image = Image.new("RGB", size, (236, 230, 214))
    draw = ImageDraw.Draw(image)
    if kind == "bullet.png":
        draw.ellipse((3, 3, 12, 12), fill=(30, 60, 120))
    elif kind == "oystercatcher.png":
        draw.rectangle((0, 62, 119, 89), fill=(196, 170, 120))
        draw.ellipse((40, 30, 80, 60), fill=(20, 20, 20))
        draw.polygon([(78, 42), (104, 48), (78, 46)], fill=(240, 110, 20))
        draw.line((55, 60, 55, 72), fill=(230, 120, 140), width=2)
    elif kind == "heron.png":
        draw.rectangle((0, 70, 119, 89), fill=(90, 120, 150))
        draw.ellipse((45, 25, 75, 55), fill=(150, 150, 160))
        draw.line((70, 30, 78, 10), fill=(150, 150, 160), width=4)
        draw.line((60, 55, 60, 80), fill=(80, 80, 80), width=2)
    else:
        for x in range(6, 120, 9):
            draw.line((x, 89, x + 4, 20 + (x * 7) % 30), fill=(110, 130, 60), width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def _chapter(title: str, items: list) -> bytes:
    body = [f"<h1>{title}</h1>"]
    for item in items:
        if isinstance(item, tuple):
            body.append(f'<p><img src="../images/{item[0]}" alt="{item[1]}"/></p>')
        else:
            body.append(f"<p>{item}</p>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml"><head>'
            f'<title>{title}</title></head><body>{"".join(body)}</body></html>').encode("utf-8")


def book() -> bytes:
    images = sorted({item[0] for _, items in CHAPTERS for item in items if isinstance(item, tuple)})
    manifest = "".join(f'<item id="c{i}" href="text/c{i}.xhtml" media-type="application/xhtml+xml"/>'
                       for i in range(len(CHAPTERS)))
    manifest += "".join(f'<item id="i{i}" href="images/{name}" media-type="image/png"/>' for i, name in enumerate(images))
    manifest += '<item id="nav" href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/>'
    spine = "".join(f'<itemref idref="c{i}"/>' for i in range(len(CHAPTERS)))
    nav = "".join(f'<li><a href="text/c{i}.xhtml">{title}</a></li>' for i, (title, _) in enumerate(CHAPTERS))
    members = [
        ("mimetype", b"application/epub+zip"),
        ("META-INF/container.xml", b'<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:'
                                   b'opendocument:xmlns:container"><rootfiles><rootfile full-path="OEBPS/content.opf" '
                                   b'media-type="application/oebps-package+xml"/></rootfiles></container>'),
        ("OEBPS/content.opf", ('<?xml version="1.0"?><package xmlns="http://www.idpf.org/2007/opf" version="3.0" '
                               'unique-identifier="id"><metadata xmlns:dc="http://purl.org/dc/elements/1.1/">'
                               '<dc:identifier id="id">vlcurate-field-guide</dc:identifier><dc:title>A small field '
                               'guide to coastal birds</dc:title><dc:language>en</dc:language></metadata>'
                               f'<manifest>{manifest}</manifest><spine>{spine}</spine></package>').encode("utf-8")),
        ("OEBPS/nav.xhtml", ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
                             'xmlns:epub="http://www.idpf.org/2007/ops"><head><title>Contents</title></head><body>'
                             f'<nav epub:type="toc"><ol>{nav}</ol></nav></body></html>').encode("utf-8")),
        *((f"OEBPS/text/c{i}.xhtml", _chapter(title, items)) for i, (title, items) in enumerate(CHAPTERS)),
        *((f"OEBPS/images/{name}", _picture(name)) for name in images),
    ]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--outdir", default=str(Path(__file__).parent / "interleaved"))
    out = Path(parser.parse_args().outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "field-guide.epub").write_bytes(book())
    print(f"wrote {out / 'field-guide.epub'}")


if __name__ == "__main__":
    main()
