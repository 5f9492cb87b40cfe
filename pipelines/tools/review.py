"""`vlcurate review`: the editors' review desk for a dataset's taxonomy queue, and its round trips.

    vlcurate review DATASET [--host 127.0.0.1] [--port 8765] [--taxonomy FILE] [--editor NAME]
                            [--target-mix recognition=3,...] [--lease-minutes 10]
        serve the desk: one item at a time (items under review first, lowest confidence first;
        any sample by filter), keys 1-9 / Enter / s / u / ?; every decision is saved at once
        in DATASET/review/decisions.jsonl
    vlcurate review apply DATASET [--taxonomy FILE]
        write the decisions into the shards, index and manifest (only the shards that change)
    vlcurate review export DATASET --format label-studio --output tasks.json
                           [--files-root URL] [--all]
        the review queue as Label Studio tasks (images as data URIs, or URLs under --files-root)
    vlcurate review import DATASET annotations.json [--editor NAME] [--taxonomy FILE]
        Label Studio's JSON export back as decisions

Exit status: 0 done; 1 the dataset, its queue or a file cannot be used (one line says why);
2 wrong usage.
"""

from __future__ import annotations

import contextlib
import sys

from vlcurate.pipelines.flags import HelpFormatter, ToolParser

SUBCOMMANDS = ("apply", "export", "import")
_TAXONOMY_HELP = "the taxonomy YAML the editors label with (default: the bundled one)"


def _parser(word: str) -> ToolParser:
    parser = ToolParser(prog=f"vlcurate review{' ' + word if word else ''}", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("dataset", metavar="DATASET", help="a dataset folder (local)")
    parser.add_argument("--taxonomy", default=None, metavar="FILE", help=_TAXONOMY_HELP)
    if word == "":
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on; another than 127.0.0.1 "
                                                                 "lets other machines label (and warns)")
        parser.add_argument("--port", type=int, default=8765, help="port to listen on")
        parser.add_argument("--editor", default="", help="the editor's name on every decision (else typed in the page)")
        parser.add_argument("--target-mix", default="", metavar="MAIN=WEIGHT,...",
                            help="the mix panel's target (default: the dataset's recipe target_mix, where its "
                                 "names are main categories)")
        parser.add_argument("--lease-minutes", type=float, default=10.0,
                            help="how long an item stays with the editor who opened it")
    elif word == "export":
        parser.add_argument("--format", required=True, choices=("label-studio",), help="the task format")
        parser.add_argument("--output", required=True, metavar="tasks.json", help="the tasks file to write")
        parser.add_argument("--files-root", default=None, metavar="URL",
                            help="images as URL/SHARD/MEMBER (a local files root you serve) instead of data URIs")
        parser.add_argument("--all", action="store_true", help="every sample, not only those under review")
    elif word == "import":
        parser.add_argument("annotations", metavar="annotations.json", help="a Label Studio JSON export")
        parser.add_argument("--editor", default=None,
                            help="the editor on the decisions (default: label-studio:COMPLETED_BY)")
    return parser


def run(argv: list[str]) -> int:
    word = argv[0] if argv and argv[0] in SUBCOMMANDS else ""
    args = _parser(word).parse_args(argv[1:] if word else argv)  # a usage error: UsageError, exit 2
    from vlcurate.taxonomy.desk.desk import DeskError, read_dataset_manifest
    from vlcurate.transforms.io.lock import OutputLocked, locked
    from vlcurate.transforms.io.shard_reader import ShardError

    try:
        if "://" in args.dataset:
            raise DeskError(f"{args.dataset}: the desk works on a local dataset (copy it here, then back)")
        read_dataset_manifest(args.dataset)  # before the lock, which would make a missing folder
        # The desk, apply and import hold the dataset's lock: a pipeline run, a second desk (its
        # leases live in its process) or an apply under a serving desk would each undo the other.
        with locked(args.dataset) if word != "export" else contextlib.nullcontext():
            return {"": _serve, "apply": _apply, "export": _export, "import": _import}[word](args)
    except (DeskError, OutputLocked, ShardError) as error:  # ShardError: a damaged shard, named
        print(f"vlcurate review{' ' + word if word else ''}: {error}", file=sys.stderr)
        return 1


def _serve(args) -> int:
    from vlcurate.taxonomy.desk.desk import Desk, DeskError, check_editor

    if args.editor:
        check_editor(args.editor)
    if not 0 <= args.port <= 65535 or args.lease_minutes <= 0:
        raise DeskError("--port must be 0..65535 and --lease-minutes above 0")
    desk = Desk(args.dataset, args.taxonomy, args.lease_minutes * 60)
    if args.target_mix:
        from vlcurate.taxonomy.mix import parse_target_mix

        try:
            desk.target = parse_target_mix(args.target_mix, desk.taxonomy)
        except ValueError as error:
            raise DeskError(f"--target-mix: {error}") from None
    import uvicorn

    from vlcurate.taxonomy.desk.app import build_app

    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"vlcurate review: warning: listening on {args.host}: anyone who reaches this address can read the "
              "dataset and label it", file=sys.stderr)
    app = build_app(desk, args.editor, ("127.0.0.1", "localhost", args.host))  # Host headers it answers
    queued = sum(item.row is not None for item in desk.queue.items)
    print(f"review desk for {desk.dataset}: {queued} items under review, {len(desk.log)} decided; "
          f"http://{args.host}:{args.port}/  (Ctrl-C stops; decisions are saved as they are made)", flush=True)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


def _apply(args) -> int:
    from vlcurate.taxonomy.desk.apply import apply_decisions

    result = apply_decisions(args.dataset, args.taxonomy)
    print(f"{args.dataset}: {result.decisions} decisions, {result.changed} samples changed, "
          f"{len(result.shards)} shards written again" + (f" ({', '.join(result.shards)})" if result.shards else
                                                          " (nothing to change)"))
    if result.unknown:
        print(f"vlcurate review apply: {len(result.unknown)} decided keys are not in the dataset, e.g. "
              f"{result.unknown[0]}", file=sys.stderr)
    for problem in result.damaged:
        print(f"vlcurate review apply: not applied: damaged {problem}", file=sys.stderr)
    return 1 if result.damaged else 0


def _export(args) -> int:
    from vlcurate.taxonomy.desk.label_studio import export_tasks

    count = export_tasks(args.dataset, args.output, args.taxonomy, args.files_root, args.all)
    print(f"{args.output}: {count} Label Studio tasks; the labelling config beside it: "
          f"{args.output.rsplit('.', 1)[0]}.label-config.xml")
    return 0


def _import(args) -> int:
    from vlcurate.taxonomy.desk.label_studio import import_annotations

    result = import_annotations(args.dataset, args.annotations, args.taxonomy, args.editor)
    for problem in result.problems:
        print(f"vlcurate review import: {problem}", file=sys.stderr)
    print(f"{args.annotations}: {result.tasks} tasks, {result.stored} decisions stored, {result.unchanged} unchanged, "
          f"{len(result.problems)} refused")
    return 1 if result.problems else 0
