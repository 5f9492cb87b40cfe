"""Recipe values checked the way their commands check them, so that a recipe accepts exactly what
the command line does and a refused value is named on the line of the key that causes it.

A section's values become the flags they stand for (a source's options: its command's flags;
``stages.clip``: ``--clip-*``; ``stages.label``: `vlcurate sft`'s label flags; ``shards``: the
shard flags). The flags' parser checks each value's type; then the function that turns the flags
into the stage's settings (a pipeline's ``configure``, ``clip_config``, ``sft_config``,
``shard_config``) checks what the values mean together, before anything runs.
"""

from __future__ import annotations

import argparse
import re

from apache_beam.options.pipeline_options import PipelineOptions

_PREFIX = re.compile(r"^vlcurate(?: [\w-]+)?: ")


class FlagParser(argparse.ArgumentParser):
    """The flags of some PipelineOptions classes, for checking values; errors raise ValueError."""

    def __init__(self, options_classes):
        super().__init__(add_help=False)
        for options_class in options_classes:
            options_class._add_argparse_args(self)

    def error(self, message):
        # argparse says "argument --ocr-dpi/--ocr_dpi: ..."; a recipe's line already names its key
        raise ValueError(re.sub(r"^argument [^:]+: ", "", message))

    @property
    def flag_names(self) -> set[str]:
        return {option[2:] for action in self._actions for option in action.option_strings if option.startswith("--")}

    def is_switch(self, name: str) -> bool:
        return any(f"--{name}" in action.option_strings and action.nargs == 0 for action in self._actions)


def refusal(build, flags_by_key: dict) -> tuple[object, str] | None:
    """None when ``build(flags)`` accepts every key's flags together. Otherwise (key, words): the
    words of the refusal, and the key whose flags alone are refused with the same words (None
    when only the combination is refused)."""
    try:
        build([flag for flags in flags_by_key.values() for flag in flags])
        return None
    except (SystemExit, ValueError) as error:  # commands stop with SystemExit("vlcurate: ...")
        words = _words(error)
    for key, flags in flags_by_key.items():
        try:
            build(flags)
        except (SystemExit, ValueError) as error:
            if _words(error) == words:
                return key, words
    return None, words


def _words(error: BaseException) -> str:
    text = str(error.code if isinstance(error, SystemExit) else error).strip()
    return _PREFIX.sub("", text.splitlines()[0]) if text else type(error).__name__


def configure_source(module, source_input: str, dry_run: bool):
    """``build`` for a source's options: its command's own ``configure``."""
    extra = ["--dry_run=True"] if dry_run else []  # as the run will: a dry run reads no model file

    def build(flags):
        module.configure(PipelineOptions(["--input", source_input, *extra, *flags]))

    return build


def clip_settings(flags):
    from vlcurate.pipelines.options import clip_config

    clip_config(PipelineOptions(flags))


def label_settings(flags):
    from vlcurate.pipelines.sft import sft_config

    sft_config(PipelineOptions(flags))


def shard_settings(flags):
    from vlcurate.pipelines.options import shard_config

    shard_config(PipelineOptions(["--output", "recipe", *flags]), "recipe")
