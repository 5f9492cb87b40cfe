"""The `vlcurate` command: one subcommand per pipeline; flags after it go to that pipeline."""

from __future__ import annotations

import logging
import sys

from vlcurate import __version__
from vlcurate.pipelines.registry import BY_WORD, COMMANDS

_USAGE = "usage: vlcurate COMMAND [flags]   (vlcurate COMMAND --help for its flags; vlcurate --version)\n\ncommands:\n" + "\n".join(
    f"  {command.word:<12} {command.about}" for command in COMMANDS
)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_USAGE)
        return 0
    if argv[0] == "--version":
        print(f"vlcurate {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command not in BY_WORD:
        print(f"vlcurate: unknown command {command!r}\n\n{_USAGE}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    module = BY_WORD[command].load()
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
    from vlcurate.pipelines.options import DatasetOptions, QualityOptions

    return [*module.OPTIONS, DatasetOptions, QualityOptions]


if __name__ == "__main__":
    sys.exit(main())
