"""A pipeline command's flags: checked before anything runs, and listed by its --help.

Beam parses every PipelineOptions subclass loaded in the process into one parser and drops, with a
warning, whatever none of them knows: a typo (``--pagesize``) ran at the default, and a flag of
another command (``--clip-model`` on `vlcurate text`) was taken and ignored. So a command's argv is
first parsed here against the flags it takes (its module's ``OPTIONS`` and the shared
DatasetOptions and QualityOptions, less the shared flags its ``UNUSED_FLAGS`` names) and the flags
of Beam's own options classes. An unknown flag, another command's flag, a bad value, a
single-valued flag given twice or a missing --input/--output is a UsageError: one line, exit
status 2. A new command gets all of this from its OPTIONS tuple.
"""

from __future__ import annotations

import argparse
import difflib
import fnmatch
import inspect

REQUIRED = ("input", "output")  # what every pipeline command must be given
_TITLES = {  # --help's group titles for the shared options classes; a command's own: "vlcurate WORD"
    "DatasetOptions": "input, output, runs and shards",
    "OcrOptions": "OCR",
    "NetworkOptions": "network",
    "UrlListOptions": "URL lists",
    "QualityOptions": "quality stages: CLIP scores and filters, deduplication",
}


class UsageError(Exception):
    """A user's mistake on the command line: `vlcurate` prints it as one line and exits with 2."""


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps a description's line breaks, and adds each flag's default unless its help gives it."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if default is None or default is False or default in ("", []) or default is argparse.SUPPRESS \
                or "default" in text:
            return text
        return f"{text} (default: %(default)s)"


class ToolParser(argparse.ArgumentParser):
    """A tool command's parser (not a pipeline's): a usage mistake is a UsageError, so `vlcurate`
    prints one line and exits with 2 instead of argparse's usage block."""

    def error(self, message):
        raise UsageError(f"{self.prog}: {message} ({self.prog} --help)")


def check(word: str, module, argv: list[str]) -> None:
    """Refuse, as a UsageError, anything in ``argv`` that `vlcurate WORD` would not use as given."""
    parser = command_parser(word, module)
    own = _option_strings(parser)
    for options_class in _beam_classes():
        options_class._add_argparse_args(parser)  # pylint: disable=protected-access
    namespace = _parse(word, parser, argv, own)
    missing = [f"--{name}" for name in REQUIRED if getattr(namespace, name) is None]
    if missing:
        raise UsageError(f"vlcurate {word}: {' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} "
                         f"required (vlcurate {word} --help)")


def check_beam(word: str, argv: list[str], own: list[str] = (), hint: str = "") -> None:
    """Refuse anything in ``argv`` but Beam's own flags (what `vlcurate run` passes to Beam); ``own``:
    the command's flags, for suggestions; ``hint``: where a pipeline command's flag goes instead."""
    parser = _parser(word)
    for options_class in _beam_classes():
        options_class._add_argparse_args(parser)  # pylint: disable=protected-access
    _parse(word, parser, argv, list(own), hint)


def print_help(word: str, module) -> None:
    parser = command_parser(word, module, for_help=True)
    parser.print_help()
    print("\nApache Beam's own flags pass through: --runner, --direct_num_workers, Dataflow's --project, "
          "--dry_run ... (docs/dataflow.md).")


def command_parser(word: str, module, for_help: bool = False) -> argparse.ArgumentParser:
    """The flags `vlcurate WORD` takes, grouped by options class; for --help, with its description,
    each flag in its dashed spelling only and the required ones marked."""
    from vlcurate.pipelines.options import DatasetOptions, QualityOptions

    parser = _parser(word, description=module.__doc__ if for_help else None, add_help=for_help)
    unused = getattr(module, "UNUSED_FLAGS", ())
    own_title = f"vlcurate {word}"
    groups = {}
    for options_class in (DatasetOptions, *module.OPTIONS, QualityOptions):
        title = _TITLES.get(options_class.__name__, own_title)
        group = groups.get(title) or groups.setdefault(title, parser.add_argument_group(title))
        options_class._add_argparse_args(_Taken(group, unused, for_help))  # pylint: disable=protected-access
    return parser


class _Taken:
    """Stands in for a parser while an options class adds its flags: passes on the flags the command
    takes (none that ``unused`` matches); for --help, only the dashed spelling, required ones marked."""

    def __init__(self, target, unused, for_help: bool):
        self._target, self._unused, self._for_help = target, unused, for_help

    def add_argument(self, *names, **kwargs):
        name = names[0].lstrip("-").replace("_", "-")
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self._unused):
            return None
        if self._for_help:
            names = [spelling for spelling in names if "_" not in spelling] or names
            if "metavar" not in kwargs and getattr(kwargs.get("type"), "metavar", None):
                kwargs["metavar"] = kwargs["type"].metavar
            if kwargs.get("dest") in REQUIRED:
                kwargs["help"] = f"required: {kwargs.get('help', '')}"
        return self._target.add_argument(*names, **kwargs)


def _parser(word: str, **kwargs) -> argparse.ArgumentParser:
    # Beam's options classes add some flags through its parser's add_value_provider_argument.
    from apache_beam.options.pipeline_options import _BeamArgumentParser

    class Parser(_BeamArgumentParser):
        def error(self, message):
            raise UsageError(f"vlcurate {word}: {message}")

    kwargs.setdefault("add_help", False)
    return Parser(prog=f"vlcurate {word}", usage=f"vlcurate {word} [flags]", formatter_class=HelpFormatter,
                  allow_abbrev=False, exit_on_error=False, **kwargs)


def _beam_classes() -> list[type]:
    """Beam's own options classes (standard, direct, Dataflow, workers, setup, portable ...); not
    every PipelineOptions subclass the process has loaded, which would take the pipelines' flags."""
    from apache_beam.options import pipeline_options

    return [cls for cls in vars(pipeline_options).values()
            if inspect.isclass(cls) and issubclass(cls, pipeline_options.PipelineOptions)
            and cls is not pipeline_options.PipelineOptions and cls.__module__ == pipeline_options.__name__]


def _parse(word: str, parser: argparse.ArgumentParser, argv: list[str], own: list[str],
           hint: str = "") -> argparse.Namespace:
    try:
        namespace, rest = parser.parse_known_args(argv)
    except argparse.ArgumentError as error:
        name = (error.argument_name or "").split("/")[0]
        said = f"{name} {error.message}" if error.message.startswith("must") else f"{name}: {error.message}"
        raise UsageError(f"vlcurate {word}: {said}") from None
    if rest:
        # Suggest the dashed spelling of the command's flags (the documented one), and Beam's flags.
        known = [spelling for spelling in own if "_" not in spelling]
        known += [spelling for spelling in _option_strings(parser) if spelling not in own]
        raise UsageError(f"vlcurate {word}: {_unknown(word, rest[0], known, hint)}")
    _given_once(word, parser, argv)
    return namespace


def _unknown(word: str, token: str, known: list[str], hint: str = "") -> str:
    if not token.startswith("-"):
        return f"unexpected {token!r}: a value follows its flag (--input {token})"
    flag = token.split("=", 1)[0]
    owners = _commands_taking(flag)
    if owners:
        where = f"it is a flag of vlcurate {', '.join(owners)}" + (f"; {hint}" if hint else "")
        return f"{flag} does nothing for vlcurate {word} ({where})"
    close = difflib.get_close_matches(flag, list(dict.fromkeys(known)), n=1, cutoff=0.75)
    suggestion = f"did you mean {close[0]}?" if close else f"vlcurate {word} --help lists the flags"
    return f"unknown flag {flag} ({suggestion})"


def _commands_taking(flag: str) -> list[str]:
    """The pipeline commands that take ``flag`` (loading their modules: only when one is refused)."""
    from vlcurate.pipelines.registry import COMMANDS

    words = []
    for command in COMMANDS:
        module = command.load() if command.pipeline else None
        if hasattr(module, "OPTIONS") and flag in _option_strings(command_parser(command.word, module)):
            words.append(command.word)
    return words


def _given_once(word: str, parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Refuse a single-valued flag given twice: argparse would keep the last without a word."""
    actions = {spelling: action for action in parser._actions for spelling in action.option_strings}
    seen: dict[str, int] = {}
    tokens = iter(argv)
    for token in tokens:
        action = actions.get(token.split("=", 1)[0])
        if action is None:
            continue
        if action.nargs is None and "=" not in token:
            next(tokens, None)  # its value
        # argparse's plain "store" action: the one that overwrites (append and switches do not)
        if type(action) is argparse._StoreAction:  # pylint: disable=protected-access
            seen[action.dest] = seen.get(action.dest, 0) + 1
            if seen[action.dest] == 2:
                raise UsageError(f"vlcurate {word}: {action.option_strings[0]} is given more than once; give it once")


def _option_strings(parser: argparse.ArgumentParser) -> list[str]:
    return [spelling for action in parser._actions for spelling in action.option_strings]
