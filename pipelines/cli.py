"""The `vlcurate` command: one subcommand per pipeline; flags after it go to that pipeline."""

from __future__ import annotations

import logging
import os
import sys

from vlcurate import __version__
from vlcurate.pipelines import flags
from vlcurate.pipelines.registry import BY_WORD, COMMANDS

_USAGE = "usage: vlcurate COMMAND [flags]   (vlcurate COMMAND --help for its flags; vlcurate --version)\n\ncommands:\n" + "\n".join(
    f"  {command.word:<12} {command.about}" for command in COMMANDS
)


def console() -> None:
    """The `vlcurate` command: ``main()``, then the process ends at once with its status.

    By then the dataset, its manifest and the summary are written and closed. What a normal exit
    would still do is tear down the interpreter: Beam's, gRPC's and Arrow's native state took about
    half a second of every command (measured: a one-page `vlcurate pdf` in 2.7 s instead of 3.2 s).
    So logging is flushed, the isolated children are killed as their finalizers would kill them,
    stdout and stderr are flushed, and the process leaves with os._exit.
    """
    try:
        status = main()
    except SystemExit as exit_:  # what the interpreter would make of it: a message is status 1
        status = exit_.code if isinstance(exit_.code, int) else 0 if exit_.code is None else 1
        if not isinstance(exit_.code, (int, type(None))):
            print(exit_.code, file=sys.stderr)
    from vlcurate.transforms.runtime.isolation import stop_all

    logging.shutdown()
    stop_all()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a reader that went away; main() has said so
            pass
    os._exit(status)


def main(argv=None) -> int:
    try:
        try:
            return _main(sys.argv[1:] if argv is None else list(argv))
        finally:
            sys.stdout.flush()  # a reader that went away (`| head`) shows here, where it is handled
    except BrokenPipeError:
        # The reader has what it wanted: stop without a traceback, with status 1 (the output was cut
        # short). stdout goes to devnull so that Python's own flush at exit finds no broken pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


# Flags after which a command's run may not use its default pool of children in this process: the
# work runs elsewhere (another runner or running mode), nowhere (a dry run, help), or in a pool of
# another shape. Their values do not matter: with any of them, no children start early.
_OTHER_POOL = ("--runner", "--direct_running_mode", "--direct_num_workers", "--render-processes", "--dry_run",
               "--help", "-h")


def prestart(command, argv: list[str]) -> None:
    """Start the command's isolated children now, before its module loads Beam (1.2 s of one core),
    where its run will use the default pool in this process: one child per core with one native
    thread each (transforms/runtime/isolation.py ``prestart``). A guess from the flags' names: if
    it is wrong, the pool starts its own children and the spares only cost their start-up."""
    if not command.children or any(arg.split("=", 1)[0] in _OTHER_POOL for arg in argv):
        return
    from vlcurate.transforms.runtime.isolation import prestart as start_children

    start_children(os.cpu_count() or 1, 1, command.children)


def _main(argv: list[str]) -> int:
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
    prestart(BY_WORD[command], rest)
    module = BY_WORD[command].load()
    try:
        if hasattr(module, "OPTIONS"):  # a pipeline: its flags are checked before Beam sees them
            if "-h" in rest or "--help" in rest:
                flags.print_help(command, module)
                return 0
            flags.check(command, module, rest)
        result = module.run(rest)  # pipelines return their manifest; tools return an exit status
    except flags.UsageError as error:
        print(error, file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    console()
