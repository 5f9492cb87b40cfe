"""Every `vlcurate` command in one table: the CLI's list and the recipe's source kinds both read it.

A pipeline command names its module (which has ``OPTIONS``, ``configure`` and ``build``), the
pipeline name its manifest and samples record, its default shard prefix, the input extensions a
folder is filtered by, and, where a recipe can use it as a source, its recipe kind and whether its
samples are image-text pairs that CLIP can judge. Nothing here imports a pipeline: modules load
when a command runs.
"""

from __future__ import annotations

import dataclasses
import importlib

from vlcurate.transforms.sources.pdf.config import CHILD_MODULES as PDF_CHILDREN

IMAGE_EXTENSIONS = ("png", "jpg", "jpeg", "webp", "bmp", "tif", "tiff", "gif")


@dataclasses.dataclass(frozen=True)
class Command:
    word: str  # what a user types: vlcurate WORD
    module: str
    about: str  # one line for `vlcurate --help`
    pipeline: str = ""  # the pipeline name in manifests and provenance ("" for tools)
    prefix: str = ""  # default shard prefix
    extensions: tuple[str, ...] = ()  # what a folder input is filtered by
    kind: str = ""  # the recipe kind ("" : not a recipe source)
    pairs: bool = False  # its samples are image-text pairs CLIP can judge
    # What its isolated children import (its stages' ``preload``), for `vlcurate` to start them
    # before Beam loads (pipelines/cli.py ``prestart``); () for a command that has none to start.
    children: tuple[str, ...] = ()

    def load(self):
        return importlib.import_module(self.module)


_P = "vlcurate.pipelines."
COMMANDS: tuple[Command, ...] = (
    Command("pdf", _P + "pdf_pages", "render PDF pages into document_ocr samples",
            "pdf_pages", "pdf", ("pdf",), "pdf", True, PDF_CHILDREN),
    Command("web", _P + "web_screenshots", "screenshot web pages into web_code samples",
            "web_screenshots", "web", ("html",), "web", True),
    Command("ocr", _P + "ocr_images", "read the text in images into scene_ocr samples",
            "ocr_images", "ocr", IMAGE_EXTENSIONS, "images", True),
    Command("charts", _P + "pdf_charts", "crop figures, charts and tables from PDFs into table_chart samples",
            "pdf_charts", "chart", ("pdf",), "charts", True, PDF_CHILDREN),
    Command("notebooks", _P + "notebooks", "pair notebook plots with their code into web_code samples",
            "notebooks", "notebook", ("ipynb",), "notebooks", True),
    Command("captions", _P + "captions", "download image URL lists (or caption a folder) into caption samples",
            "captions", "caption", IMAGE_EXTENSIONS, "captions", True),
    Command("sft", _P + "sft", "ingest, language-id and label instruction data into sft samples",
            "sft", "sft", ("jsonl", "json"), "sft", False),
    Command("text", _P + "text_corpus", "text-only corpora into text_only samples",
            "text", "text", ("txt", "md", "jsonl"), "text", False),
    Command("interleaved", _P + "interleaved",
            "web pages, EPUB books and PDFs into interleaved samples (text with images in reading order)",
            "interleaved", "interleaved", ("html", "htm", "xhtml", "epub", "pdf"), "interleaved"),
    Command("filter", _P + "filter_dataset", "score, filter and deduplicate a dataset into a new one",
            "filter", "filtered", ("tar",)),
    Command("run", _P + "recipe", "run a recipe: every source through its stages into one dataset, with a report",
            "recipe"),
    Command("taxonomy", "vlcurate.taxonomy.cli",
            "validate, show, diff and migrate the use-case taxonomy; train its labeler"),
    Command("report", _P + "tools.report", "write report.html beside a dataset's manifest (funnel, plots, contact sheet)"),
    Command("review", _P + "tools.review", "the editors' review desk: label the taxonomy queue in a browser, "
                                           "apply it; Label Studio export/import"),
    Command("inspect", _P + "tools.inspect", "print a dataset's summary, or show one sample"),
    Command("models", _P + "tools.models", "fetch model weights on a connected machine (models fetch clip ...)"),
    Command("train", "vlcurate.training.train", "train the small DeepSeek-VL-shaped model on a dataset's shards"),
    Command("chat-format", "vlcurate.training.chat_cli", "print the prompt the trainer builds for a conversation file or a dataset's sample"),
)

BY_WORD = {command.word: command for command in COMMANDS}
BY_KIND = {command.kind: command for command in COMMANDS if command.kind}


def command(word: str) -> Command:
    return BY_WORD[word]
