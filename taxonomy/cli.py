"""`vlcurate taxonomy`: validate, show, diff and migrate the use-case taxonomy, check and count
labels, and train and run its labeler (train, predict: taxonomy/labeler_cli.py).

Exit status: 0 done; 1 a taxonomy has problems (listed as FILE:LINE: NODE: message), a labels
line could not be migrated, or a labels file holds labels that are not leaves (check-labels,
stats --labels: listed as FILE:LINE: message); 2 wrong usage or an unreadable labels file.

To add a subcommand: in build_parser, ``sub.add_parser(NAME, help=...)``, its
arguments, and ``set_defaults(func=FUNCTION)`` where FUNCTION(args) returns the exit status.
"""

from __future__ import annotations

import argparse
import collections
import json
import pathlib
import sys

from vlcurate.taxonomy import changes, labels as label_files
from vlcurate.taxonomy.tree import DEFAULT_TAXONOMY, TaxonomyError, as_json_tree, load_taxonomy, render_tree, validate
from vlcurate.pipelines.flags import ToolParser, UsageError

_FILE_HELP = f"a taxonomy YAML file (default: the bundled {DEFAULT_TAXONOMY.name})"


def build_parser() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """The parser and its subparsers; each subcommand sets ``func(args) -> exit status``."""

    parser = ToolParser(prog="vlcurate taxonomy", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                parser_class=ToolParser)

    command = sub.add_parser("validate", help="check taxonomy files; list every problem with file, line and node")
    command.add_argument("files", nargs="*", metavar="FILE", help=_FILE_HELP + "; several may be given")
    command.set_defaults(func=_validate)

    command = sub.add_parser("show", help="print the tree (like `tree`) or nested {id, name, children} JSON")
    command.add_argument("file", nargs="?", metavar="FILE", help=_FILE_HELP)
    command.add_argument("--format", choices=("tree", "json"), default="tree",
                         help="an indented tree, or nested JSON")
    command.add_argument("--depth", type=_positive, default=None, help="levels to show: 1 = main categories")
    command.add_argument("--no-ids", dest="ids", action="store_false", help="tree: names only")
    command.set_defaults(func=_show)

    command = sub.add_parser("diff", help="added, removed, renamed, moved and merged categories between versions, "
                                          "and edited descriptions, examples and keywords")
    command.add_argument("old", metavar="OLD", help="the earlier taxonomy YAML file")
    command.add_argument("new", metavar="NEW", help="the later taxonomy YAML file")
    command.add_argument("--format", choices=("text", "json"), default="text", help="a line per change, or JSON")
    command.set_defaults(func=_diff)

    command = sub.add_parser("migrate", help="rewrite a JSONL labels file from one taxonomy version to another")
    command.add_argument("--from", dest="old", required=True, metavar="OLD", help="the taxonomy the labels use")
    command.add_argument("--to", dest="new", required=True, metavar="NEW", help="the taxonomy to migrate to")
    command.add_argument("--input", required=True, metavar="LABELS.jsonl", help="the labels to migrate")
    command.add_argument("--output", required=True, metavar="OUT.jsonl", help="where the migrated labels go")
    command.add_argument("--rejects", metavar="REJECTS.jsonl", help="lines not migrated (default: OUT.rejects.jsonl)")
    command.add_argument("--field", default="label", help="the label's field; dotted for nested, e.g. taxonomy.id")
    command.set_defaults(func=_migrate)

    command = sub.add_parser("check-labels", help="check that every label in JSONL files (labelled examples, "
                                                  "review-queue files) is a leaf; each problem as FILE:LINE")
    command.add_argument("files", nargs="+", metavar="FILE", help="JSONL files with a label on each line")
    command.add_argument("--taxonomy", default=None, metavar="TAXONOMY", help=_FILE_HELP)
    command.add_argument("--field", default="label", help="the label's field; dotted for nested, e.g. taxonomy.id")
    command.set_defaults(func=_check_labels)

    command = sub.add_parser("stats", help="categories per level and per main category; label counts")
    command.add_argument("file", nargs="?", metavar="FILE", help=_FILE_HELP)
    command.add_argument("--labels", metavar="LABELS.jsonl", help="count these labels per main category and leaf")
    command.add_argument("--field", default="label", help="the label's field; dotted for nested, e.g. taxonomy.id")
    command.set_defaults(func=_stats)

    from vlcurate.taxonomy.labeler_cli import add_commands

    add_commands(sub)  # train, predict
    return parser, sub


def run(argv: list[str]) -> int:
    parser, _ = build_parser()
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except SystemExit as exit_:  # argparse's --help (0): a status, not an exit
        return exit_.code if isinstance(exit_.code, int) else 2
    except UsageError as error:  # one line, as `vlcurate` prints it
        print(error, file=sys.stderr)
        return 2
    except TaxonomyError as error:
        print(error, file=sys.stderr)
        return 1


def _positive(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def _validate(args) -> int:
    status = 0
    for file in args.files or [None]:
        problems = validate(file)
        if problems:
            print("\n".join(str(problem) for problem in problems), file=sys.stderr)
            print(f"{file or DEFAULT_TAXONOMY}: {len(problems)} problem(s)", file=sys.stderr)
            status = 1
        else:
            taxonomy = load_taxonomy(file)
            levels = collections.Counter(node.level for node in taxonomy)
            print(f"{taxonomy.path}: ok, version {taxonomy.version}: {levels['main']} main, "
                  f"{levels['secondary']} secondary, {levels['leaf']} tertiary categories, "
                  f"{len(taxonomy.leaves())} labelling leaves")
    return status


def _show(args) -> int:
    taxonomy = load_taxonomy(args.file)
    if args.format == "json":
        print(json.dumps(as_json_tree(taxonomy, args.depth), indent=2, ensure_ascii=False))
    else:
        print(render_tree(taxonomy, args.depth, args.ids))
    return 0


def _diff(args) -> int:
    old, new = load_taxonomy(args.old), load_taxonomy(args.new)
    found, edited = changes.diff(old, new), changes.edits(old, new)
    if args.format == "json":
        grouped = {kind: [change.as_dict() for change in found if change.kind == kind]
                   for kind in ("added", "removed", "renamed", "moved", "merged")}
        print(json.dumps({"old_version": old.version, "new_version": new.version, **grouped,
                          "edited": [edit.as_dict() for edit in edited]}, indent=2, ensure_ascii=False))
    else:
        print(f"taxonomy diff: version {old.version} -> {new.version}")
        for change in [*found, *edited]:
            print(change)
        counts = collections.Counter(change.kind for change in found)
        print(", ".join(f"{counts[kind]} {kind}" for kind in ("added", "removed", "renamed", "moved", "merged"))
              + f", {len(edited)} edited")
    if (found or edited) and old.version == new.version:
        print(f"warning: the taxonomies differ but both are version {old.version}: bump version", file=sys.stderr)
    return 0


def _migrate(args) -> int:
    old, new = load_taxonomy(args.old), load_taxonomy(args.new)
    rejects = args.rejects or str(pathlib.Path(args.output).with_suffix("")) + ".rejects.jsonl"
    try:
        report = changes.migrate_file(args.input, args.output, rejects, old, new, args.field)
    except (OSError, ValueError) as error:
        print(f"vlcurate taxonomy migrate: {error}", file=sys.stderr)
        return 2
    print(f"{args.input}: {report.lines_in} lines, {report.unchanged} unchanged, {report.migrated} migrated, "
          f"{report.rejected_total} rejected, {report.blank} blank (version {old.version} -> {new.version})")
    for reason, count in sorted(report.rejected.items()):
        print(f"  rejected {reason}: {count} ({changes.REJECT_REASONS[reason]}); see {rejects}")
    return 1 if report.rejected_total else 0


def _check_labels(args) -> int:
    taxonomy = load_taxonomy(args.taxonomy)
    status = 0
    for path in args.files:
        findings = _read_labels("check-labels", path, args.field, taxonomy)
        if findings is None:
            return 2
        problems = [finding for finding in findings if finding.problem]
        for problem in problems:
            print(problem, file=sys.stderr)
        kinds = collections.Counter(finding.kind for finding in findings)
        print(f"{path}: {len(findings)} lines, {kinds[label_files.LEAF]} labelled with a leaf of taxonomy "
              f"{taxonomy.version}, {kinds[label_files.UNLABELLED]} unlabelled (null), {len(problems)} problems",
              file=sys.stderr if problems else sys.stdout)
        status = 1 if problems else status
    return status


def _read_labels(command, path, field, taxonomy):
    """The findings of a labels file, or None after saying why it cannot be read."""
    try:
        return label_files.check_file(path, taxonomy, field)
    except (OSError, UnicodeDecodeError) as error:
        print(f"vlcurate taxonomy {command}: cannot read {path}: {getattr(error, 'strerror', None) or error}",
              file=sys.stderr)
        return None


def _stats(args) -> int:
    taxonomy = load_taxonomy(args.file)
    levels = collections.Counter(node.level for node in taxonomy)
    print(f"{taxonomy.name} version {taxonomy.version}: {levels['main']} main, {levels['secondary']} secondary, "
          f"{levels['leaf']} tertiary, {len(taxonomy.leaves())} labelling leaves")
    findings = _read_labels("stats", args.labels, args.field, taxonomy) if args.labels else None
    if findings is None and args.labels:
        return 2
    labels = _count_labels(findings, taxonomy) if args.labels else None
    print(f"\n{'main category':<24} {'secondary':>9} {'tertiary':>8} {'leaves':>6}" + (f" {'labels':>8}" if labels else ""))
    for main in taxonomy.mains():
        below = [node for node in taxonomy if node.id.startswith(main.id + "/")]
        row = (f"{main.name:<24} {sum(n.level == 'secondary' for n in below):>9} "
               f"{sum(n.level == 'leaf' for n in below):>8} {sum(n.is_leaf for n in below) or 1:>6}")
        print(row + (f" {labels['per_main'][main.id]:>8}" if labels else ""))
    if not labels:
        return 0
    print(f"\nlabels in {args.labels}: {labels['total']}")
    for leaf in taxonomy.leaves():
        print(f"{labels['per_leaf'][leaf.id]:>8}  {leaf.id}")
    for kind in _LABEL_KINDS:
        for label, count in sorted(labels[kind].items()):
            print(f"{count:>8}  {label}  ({_LABEL_KINDS[kind]})")
    problems = [finding for finding in findings if finding.problem]
    for problem in problems:  # the same lines as check-labels: what to fix, where
        print(problem, file=sys.stderr)
    return 1 if problems else 0


_LABEL_KINDS = {"unlabelled": "null: awaiting an editor", "not_leaf": "not a labelling leaf",
                "stale": "an old id: run migrate", "unknown": "unknown id", "missing": "no label field / not JSON"}


def _count_labels(findings, taxonomy):
    """Label counts per main category and per leaf, and the labels that aren't current leaves."""
    counts = {"total": len(findings), "per_main": collections.Counter(), "per_leaf": collections.Counter(),
              **{kind: collections.Counter() for kind in _LABEL_KINDS}}
    for finding in findings:
        if finding.kind == label_files.LEAF:
            counts["per_main"][taxonomy.main_of(finding.label).id] += 1
            counts["per_leaf"][finding.label] += 1
        elif finding.kind == "not_leaf":
            counts["per_main"][taxonomy.main_of(finding.label).id] += 1
            counts["not_leaf"][finding.label] += 1
        elif finding.kind in ("stale", "unknown"):
            counts[finding.kind][finding.label] += 1
        else:
            counts[finding.kind]["(null)" if finding.kind == "unlabelled" else "(missing)"] += 1
    return counts
