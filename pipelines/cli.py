"""The `vlcurate` command: one subcommand per pipeline; flags after it go to that pipeline."""

from __future__ import annotations

import logging
import sys

_COMMANDS = {
    "pdf": ("vlcurate.pipelines.pdf_pages", "render PDF pages into document_ocr samples"),
    "web": ("vlcurate.pipelines.web_screenshots", "screenshot web pages into web_code samples"),
    "ocr": ("vlcurate.pipelines.ocr_images", "read the text in images into scene_ocr samples"),
    "charts": ("vlcurate.pipelines.pdf_charts", "crop figures, charts and tables from PDFs into table_chart samples"),
    "notebooks": ("vlcurate.pipelines.notebooks", "pair notebook plots with their code into web_code samples"),
    "text": ("vlcurate.pipelines.text_corpus", "text-only corpora into text_only samples"),
    "filter": ("vlcurate.pipelines.filter_dataset", "score, filter and deduplicate a dataset into a new one"),
    "models": ("vlcurate.pipelines.models", "fetch model weights on a connected machine (models fetch clip ...)"),
    "run": ("vlcurate.pipelines.recipe", "run a recipe: every source through its stages into one dataset, with a report"),
    "sft": ("vlcurate.pipelines.sft", "ingest, language-id and label instruction data into sft samples"),
    "taxonomy": ("vlcurate.taxonomy.cli", "validate, show, diff and migrate the use-case taxonomy; train its labeler"),
    "report": ("vlcurate.pipelines.report_cli", "write report.html beside a dataset's manifest (funnel, plots, contact sheet)"),
    "inspect": ("vlcurate.pipelines.inspect_cli", "print a dataset's summary, or show one sample"),
    "train": ("vlcurate.training.train", "train the small DeepSeek-VL-shaped model on a dataset's shards"),
    "chat-format": ("vlcurate.training.chat_cli", "print the prompt the trainer builds for a conversation file"),
}

_USAGE = "usage: vlcurate COMMAND [flags]   (vlcurate COMMAND --help for its flags)\n\ncommands:\n" + "\n".join(
    f"  {name:<12} {about}" for name, (_, about) in _COMMANDS.items()
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0
    command, rest = argv[0], argv[1:]
    if command not in _COMMANDS:
        print(f"vlcurate: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    module = __import__(_COMMANDS[command][0], fromlist=["run"])
    if ("-h" in rest or "--help" in rest) and hasattr(module, "OPTIONS"):  # a pipeline: Beam's flags too
        return _help(module)
    result = module.run(rest)  # pipelines return their manifest; tools return an exit status
    return result if isinstance(result, int) else 0


def _help(module) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="vlcurate", description=module.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for options_class in _options_classes(module):
        options_class._add_argparse_args(parser.add_argument_group(options_class.__name__))
    parser.print_help()
    print("\nAny Apache Beam flag (--runner, --direct_num_workers, Dataflow's --project ...) passes through.")
    return 0


def _options_classes(module):
    """The flag groups a command takes: those its module lists in OPTIONS, and the shared ones."""
    from vlcurate.pipelines.common import DatasetOptions, QualityOptions

    return [*module.OPTIONS, DatasetOptions, QualityOptions]


if __name__ == "__main__":
    sys.exit(main())
