"""`vlcurate run RECIPE`: every source of a recipe through its stages into one dataset, in one
Beam pipeline, with a report.

    vlcurate run RECIPE.yaml [--set key.path=value ...] [--mode new|extend|resume] [--overwrite]
                 [--progress-interval 10] [--allow-empty] [--no-report] [Beam flags]

Each source runs the same stages as its own command (`vlcurate pdf`, `web`, `ocr`, `charts`,
`notebooks`, `sft`, `text`), with the options the recipe gives it. Then, over all sources together:
a run of ``--mode extend`` drops the keys the dataset already has; language id and taxonomy labels
on the sources that ask for them; exact dedup, CLIP scoring and filtering (on the sources that ask
for it), near dedup; the sink. A run is recorded under runs/ (its plan before it starts, its
manifest when it ends); manifest.json is the merge of the finished runs, and report.html is
written beside it. Run N's shards are PREFIX-rN-NNNNNN.tar.

The modes (new, extend, resume, and --retry-rejects) are every command's: see pipelines/runs.py.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.options import number as bounded_number
from vlcurate.pipelines.recipe_file import KINDS, Recipe, RecipeError, Source, load_recipe
from vlcurate.pipelines.runs import MODES, Plan


def parse_args(argv):
    """(vlcurate run's own flags, Beam's flags); anything else is a UsageError."""
    from vlcurate.pipelines.flags import ToolParser, check_beam

    parser = ToolParser(prog="vlcurate run", description=__doc__,
                                     epilog="Apache Beam's own flags (--runner, --direct_num_workers, Dataflow's "
                                            "--project ...) pass through; a source's options go in the recipe.")
    parser.add_argument("recipe", help="the recipe YAML")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE",
                        help="override a recipe value (a YAML scalar), e.g. --set stages.clip.keep-fraction=0.5")
    parser.add_argument("--mode", choices=MODES, default="new",
                        help="new: a new dataset; extend: add a run to it; resume: finish an interrupted run")
    parser.add_argument("--overwrite", action="store_true", help="--mode new: replace a dataset already there")
    parser.add_argument("--retry-rejects", action="store_true",
                        help="--mode extend: judge again the inputs an earlier run rejected or filtered")
    parser.add_argument("--progress-interval", type=bounded_number(0), default=10.0,
                        help="seconds between progress lines when stderr is not a terminal (0: no progress)")
    parser.add_argument("--allow-empty", action="store_true",
                        help="exit 0 when the dataset ends with no samples (otherwise status 1)")
    parser.add_argument("--no-report", action="store_true", help="don't write report.html")
    args, beam_argv = parser.parse_known_args(argv)
    check_beam("run", beam_argv, [spelling for action in parser._actions for spelling in action.option_strings],
               hint="in a recipe, set it in a source's options")
    return args, beam_argv


def run(argv=None) -> int:
    args, beam_argv = parse_args(list(sys.argv[1:] if argv is None else argv))
    dry_run = any(flag.startswith("--dry_run") for flag in beam_argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides, check_paths=not dry_run)
    except RecipeError as error:  # a usage error, like a bad flag: each problem on its own line
        for problem in error.problems:
            print(f"vlcurate run: {problem}", file=sys.stderr)
        return 2
    beam_argv = _with_runner(beam_argv)
    digest = hashlib.sha256(json.dumps(recipe.document, sort_keys=True).encode("utf-8")).hexdigest()
    if dry_run:
        return execute(recipe, Plan(1, args.mode, f"{recipe.prefix}-r1", digest, recipe.document, beam_argv, ()),
                       beam_argv, report=False)
    from vlcurate.pipelines.runs import make_plan
    from vlcurate.transforms.io.lock import OutputLocked, locked

    try:
        with locked(recipe.output):
            plan = make_plan(recipe.output, args.mode, args.overwrite, lambda number: f"{recipe.prefix}-r{number}",
                             digest, recipe.document, beam_argv, what="the recipe (with its --set values)")
            return execute(recipe, plan, beam_argv, resuming=args.mode == "resume", report=not args.no_report,
                           retry_rejects=args.retry_rejects, progress_interval=args.progress_interval,
                           allow_empty=args.allow_empty)
    except OutputLocked as error:
        raise SystemExit(f"vlcurate run: {error}") from None


def _with_runner(beam_argv: list[str]) -> list[str]:
    if any(flag.startswith("--runner") for flag in beam_argv):
        return beam_argv
    # Plain DirectRunner first tries to download the Prism binary; FnApiRunner runs here.
    return ["--runner=FnApiRunner", *beam_argv]


# --- sources --------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Prepared:
    source: Source
    module: object
    config: object
    models: dict
    processes: int


def prepare_source(source: Source, recipe: Recipe, plan: Plan, beam_argv: list[str]) -> Prepared:
    """The source's stage config, from its options parsed as its own command's flags."""
    from vlcurate.pipelines.options import render_processes

    module = KINDS[source.kind].load()
    argv = [*beam_argv, "--input", source.input, "--output", recipe.output, "--shard-prefix", plan.prefix,
            *source.flags]
    options = PipelineOptions(argv)
    config, models = module.configure(options)
    if source.kind == "sft":  # labelling and language id run once, over all sources, after they meet
        config = dataclasses.replace(config, label=None)
    return Prepared(source, module, config, models, render_processes(options))


class _Source(beam.PTransform):
    """One source's stages under its own name, up to its staged records: its samples get language id
    and labels if it asks, CLIP scores if it asks,
    dedup's evidence, and are staged here (naming the source as ``provenance.recipe_source``), before
    the sources meet: a Flatten of the sources' samples would hold every one of their bytes at once
    on the local runner."""

    def __init__(self, prepared: Prepared, staging, label, quality):
        super().__init__()
        self._prepared = prepared
        self._staging = staging
        self._label = label  # a LabelConfig (labels or language id only), or None
        self._quality = quality

    def expand(self, pbegin):
        from vlcurate.pipelines.runs import loaded, staged

        prepared = self._prepared
        name = prepared.source.name
        staging = self._staging.naming(recipe_source=name)  # every sample carries its source's name
        outputs = prepared.module.build(pbegin.pipeline, prepared.source.input, prepared.config, prepared.processes,
                                        staging=staging)
        rejects = outputs["rejects"]
        samples = outputs["samples"]
        branches = samples if isinstance(samples, tuple) else (samples,)
        tagged, reviews = [], []
        for number, branch in enumerate(branches):
            if self._label is not None:
                from vlcurate.transforms.label.beam import Label

                branch = loaded(branch, staging, f"Load{number}")
                labelled = {"samples": branch, "rejects": rejects} | f"Label{number}" >> Label(self._label)
                branch, rejects = labelled["samples"], labelled["rejects"]
                reviews += [labelled["review"]] if "review" in labelled else []
            tagged.append(branch)
        records = staged(tuple(tagged), staging, self._quality,
                         self._quality is not None and self._quality.scores(name))
        counters = {key: pcoll for key, pcoll in outputs.items() if key not in ("samples", "rejects")}
        if reviews:
            counters["review"] = reviews[0] if len(reviews) == 1 else tuple(reviews) | "Reviews" >> beam.Flatten()
        return {**counters, "records": records,
                "rejects": rejects | "TagRejects" >> beam.Map(lambda record: record.with_source(name))}


# --- the pipeline ---------------------------------------------------------------------------------------


def execute(recipe: Recipe, plan: Plan, beam_argv: list[str], resuming: bool = False, report: bool = True,
            retry_rejects: bool = False, progress_interval: float = 10.0, allow_empty: bool = False) -> int:
    from vlcurate.pipelines.console_progress import Progress
    from vlcurate.pipelines.launch import config_dict, input_units, refuse_empty
    from vlcurate.pipelines.runs import carry_out, recorded_cut
    from vlcurate.transforms.io.runs import manifest_name
    from vlcurate.transforms.io.shards import ShardConfig
    from vlcurate.transforms.io.staging import Staging

    dry_run = any(flag.startswith("--dry_run") for flag in beam_argv)
    prepared = [prepare_source(source, recipe, plan, beam_argv) for source in recipe.sources]
    quality, quality_config, quality_models = _quality(recipe, beam_argv)
    if quality is not None and plan.previous_runs:
        quality = quality.extending(recorded_cut(recipe.output, plan))
    label, label_models = _label(recipe, dry_run)
    shards = ShardConfig(output=recipe.output, prefix=plan.prefix, manifest=manifest_name(plan.number),
                         resume=resuming, **_shard_sizes(recipe))
    run_info = {
        "pipeline": "recipe",
        "models": {**{p.source.name: p.models for p in prepared if p.models}, **quality_models, **label_models},
        "config": {
            "recipe": recipe.path,
            "run": plan.number,
            "mode": plan.mode,
            "sources": {p.source.name: {"kind": p.source.kind, "input": p.source.input, "clip": p.source.clip,
                                        "label": p.source.label, "language": p.source.language,
                                        "stage": config_dict(p.config)} for p in prepared},
            "shards": dataclasses.asdict(shards),
            "quality": quality_config,
            "label": dataclasses.asdict(label) if label else None,
            "target_mix": recipe.target_mix,
        },
    }
    staging = Staging.of(recipe.output, plan.prefix, "recipe")

    def build(pipeline):
        return _flatten([pipeline | f"Source[{p.source.name}]" >> _Source(p, staging, _label_of(p.source, label),
                                                                          quality) for p in prepared])

    shown = None
    if not dry_run:  # progress counts every source's inputs together
        counted = [input_units(p.module, p.source.input, KINDS[p.source.kind].extensions) for p in prepared]
        units = {unit for _, unit in counted}
        total = None if any(count is None for count, _ in counted) else sum(count for count, _ in counted)
        shown = Progress("vlcurate run", total, "item", units.pop() if len(units) == 1 else "input", progress_interval)
    manifest = carry_out(plan, recipe.output, PipelineOptions(beam_argv), build, shards, run_info, quality,
                         retry_rejects, shown)
    if manifest is None:  # a dry run
        return 0
    from vlcurate.pipelines.summary import summary

    print(summary(recipe.output, manifest))
    _print_mix(manifest, recipe.target_mix)
    if report:
        from vlcurate.transforms.report.build import write_report

        print(f"report    {write_report(recipe.output, recipe.target_mix or None)}")
    sys.stdout.flush()
    refuse_empty("vlcurate run", recipe.output, manifest, allow_empty)
    return 0


def _shard_sizes(recipe: Recipe) -> dict:
    names = {"max-samples-per-shard": "max_samples_per_shard", "max-shard-bytes": "max_shard_bytes"}
    return {names[key]: int(value) for key, value in recipe.shards.items()}


def _flatten(outputs: list[dict]) -> dict:
    names = sorted({name for output in outputs for name in output})
    return {
        name: tuple(output[name] for output in outputs if name in output) | f"All[{name}]" >> beam.Flatten()
        for name in names
    }


def _label_of(source: Source, label):
    """What the labelling stage does on ``source``: labels (and language id), language id only, or nothing."""
    from vlcurate.transforms.label.beam import LabelConfig

    if source.label:
        return label
    if source.language:
        return LabelConfig(lid_model=label.lid_model if label else None)
    return None


def _quality(recipe: Recipe, beam_argv):
    """The Quality transform (CLIP only on the sources that ask for it), its config, its models."""
    from vlcurate.pipelines.options import quality_stage

    flags = [*beam_argv, *recipe.flags("clip")]
    if recipe.dedup:
        flags += ["--dedup", ",".join(recipe.dedup)]
    return quality_stage(PipelineOptions(flags), frozenset(s.name for s in recipe.sources if s.clip))


def _label(recipe: Recipe, dry_run: bool):
    from vlcurate.pipelines.sft import label_models
    from vlcurate.transforms.label.beam import LabelConfig

    if not recipe.label:
        return None, ({} if dry_run else label_models(LabelConfig()))
    values = recipe.label
    config = LabelConfig(labeler=values.get("labeler"), taxonomy=values.get("taxonomy"),
                         min_confidence=float(values.get("min-confidence", 0.5)), top_k=int(values.get("top-k", 3)),
                         lid_model=values.get("lid-model"))
    return config, label_models(config, check=not dry_run)


def _print_mix(manifest: dict, target: dict) -> None:
    categories = manifest["categories"]
    total = sum(categories.values())
    if not total:
        return
    print(f"{'category':<16}{'samples':>8}{'share':>8}" + (f"{'target':>8}" if target else ""))
    for category in sorted(set(categories) | set(target)):
        share = categories.get(category, 0) / total
        line = f"{category:<16}{categories.get(category, 0):>8}{share:>8.1%}"
        print(line + (f"{target.get(category, 0):>8.1%}" if target else ""))


