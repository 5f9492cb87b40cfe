"""Generated PDFs for the tests: good ones, and one of each kind of bad input the PDF stage meets.

Everything is made with PyMuPDF at test time, small and fast to build.
"""

from __future__ import annotations

import pymupdf


def text_pdf(pages: int = 3, label: str = "doc", width: float = 612, height: float = 792, title: str = "") -> bytes:
    """Pages with two text blocks each: a heading line and a body line, in reading order."""
    document = pymupdf.open()
    for number in range(pages):
        page = document.new_page(width=width, height=height)
        page.insert_text((72, 72), f"{label} heading {number + 1}", fontsize=16)
        page.insert_text((72, 160), f"Body text of {label} page {number + 1}.", fontsize=11)
    if title:
        document.set_metadata({"title": title, "author": "vlcurate tests", "producer": "pymupdf"})
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)


def scanned_pdf() -> bytes:
    """One page that holds only an image of text: no text layer, so OCR has to take it."""
    picture = pymupdf.open()
    page = picture.new_page(width=300, height=120)
    page.insert_text((20, 60), "scanned words", fontsize=24)
    png = page.get_pixmap(matrix=pymupdf.Matrix(2, 2)).tobytes("png")
    document = pymupdf.open()
    document.new_page(width=300, height=120).insert_image(pymupdf.Rect(0, 0, 300, 120), stream=png)
    return document.tobytes(garbage=4, deflate=True, no_new_id=True)


def encrypted_pdf() -> bytes:
    document = pymupdf.open(stream=text_pdf(1, "secret"), filetype="pdf")
    return document.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="user", owner_pw="owner")


def truncated_pdf() -> bytes:
    """The first 200 bytes of a good PDF: a header and a fragment, past repair."""
    return text_pdf(3, "cut")[:200]


def zero_page_pdf() -> bytes:
    """A well-formed PDF (valid xref, no repair needed) whose page tree is empty.

    PyMuPDF refuses to save a document without pages, so the bytes are written by hand.
    """
    objects = [b"<</Type/Catalog/Pages 2 0 R>>", b"<</Type/Pages/Kids[]/Count 0>>"]
    out = bytearray(b"%PDF-1.7\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<</Size %d/Root 1 0 R>>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def slow_pdf(levels: int = 7, width: float = 300, height: float = 300) -> bytes:
    """One page whose content is a form XObject drawn ten times per level, ``levels`` deep.

    A couple of kilobytes that make MuPDF fill 10**levels triangles: about ten seconds at 7
    levels here. A hostile page of this kind is what the page timeout is for.
    """
    document = pymupdf.open()
    page = document.new_page(width=width, height=height)
    previous = None
    for _ in range(levels):
        xref = document.get_new_xref()
        if previous is None:
            content, resources = b"0 0 m 10 10 l 20 0 l h f", ""
        else:
            content = b" ".join(b"q 1 0 0 1 %d 0 cm /X Do Q" % (i % 3) for i in range(10))
            resources = f"/Resources <</XObject <</X {previous} 0 R>>>>"
        document.update_object(xref, f"<</Type/XObject/Subtype/Form/BBox[0 0 300 300]{resources}>>")
        document.update_stream(xref, content)
        previous = xref
    document.xref_set_key(page.xref, "Resources", f"<</XObject <</Top {previous} 0 R>>>>")
    contents = document.get_new_xref()
    document.update_object(contents, "<<>>")
    document.update_stream(contents, b"q /Top Do Q")
    document.xref_set_key(page.xref, "Contents", f"{contents} 0 R")
    return document.tobytes(no_new_id=True)


NOT_A_PDF = b"GIF89a this is not a PDF at all\n"
