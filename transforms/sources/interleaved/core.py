"""What an isolated child runs for the interleaved stage: a document in, its samples and rows out.

``interleave_file`` reads an EPUB or PDF file, ``interleave_page`` renders a web page; both give
a list of Samples and RejectRecords (dropped images, filtered parts), document.py's ``interleave``.
No Beam here, so a child starts quickly.
"""

from __future__ import annotations

from vlcurate.transforms.io.files import read_capped
from vlcurate.transforms.sources.interleaved.config import DocumentTask, InterleavedConfig
from vlcurate.transforms.sources.interleaved.document import interleave
from vlcurate.transforms.sources.web.config import WebTask


def interleave_file(task: DocumentTask, config: InterleavedConfig) -> list:
    data = read_capped(task.uri, config.max_file_bytes)
    if task.format == "epub":
        from vlcurate.transforms.sources.interleaved.epub import read_epub

        document = read_epub(data, task.uri, config.epub)
    else:
        from vlcurate.transforms.sources.interleaved.pdf import read_pdf

        document = read_pdf(data, task.uri, config.max_pages, config.max_image_pixels)
    return interleave(document, config)


def interleave_page(task: WebTask, config: InterleavedConfig) -> list:
    from vlcurate.transforms.sources.interleaved.web import read_page

    return interleave(read_page(task, config.web), config)
