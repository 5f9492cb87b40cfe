"""Running a pipeline command: checks before anything starts, the run, its timings and its summary."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions

from vlcurate.pipelines.inputs import as_paths, has_extension, input_pattern
from vlcurate.pipelines.console_progress import ITEM_UNITS, Progress
from vlcurate.pipelines.summary import empty_reason, summary
from vlcurate.pipelines.options import DatasetOptions, quality_stage, render_processes, run_options
from vlcurate.transforms.io.manifest import read_manifest, write_manifest
from vlcurate.transforms.io.shards import ShardConfig


# Files a dataset holds (runs/ and report.html from `vlcurate run`); an existing output holding any
# of them is refused unless --overwrite, which deletes them all.
_OUTPUT_PARTS = ("shards/*", "index/*", "rejects/*", "review/*", "runs/*", "manifest.json", "report.html")


def is_dry_run(options: PipelineOptions) -> bool:
    return bool(options.get_all_options().get("dry_run"))


def prepare(options: PipelineOptions, source: str | tuple[str, ...], extensions: str | tuple[str, ...]) -> int:
    """Checks made before launching a real run (a dry run touches no files); the input files
    matched (0 for a dry run)."""
    standard = options.view_as(StandardOptions)
    if standard.runner is None:
        # Plain DirectRunner first tries to download the Prism binary; FnApiRunner runs here.
        standard.runner = "FnApiRunner"
    if is_dry_run(options):
        return 0
    matched = 0
    for path in as_paths(source):  # each input must match something: a typo'd one is not just skipped
        files = input_files(path, extensions)
        if not files:
            pattern, by_extension = input_pattern(path)
            wanted = ", ".join(f"*.{e}" for e in ((extensions,) if isinstance(extensions, str) else extensions))
            raise SystemExit(f"no input files match {pattern}" + (f" ({wanted})" if by_extension else ""))
        matched += len(files)
    return matched


def input_files(source: str | tuple[str, ...], extensions) -> list:
    """The metadata of the files a run of ``source`` reads (a folder: those with ``extensions``);
    a file that two inputs match is listed once."""
    files = {}
    for path in as_paths(source):
        pattern, by_extension = input_pattern(path)
        matched = FileSystems.match([pattern])[0].metadata_list
        files.update((meta.path, meta) for meta in matched if not by_extension or has_extension(meta.path, extensions))
    return list(files.values())


def input_units(module, source: str | tuple[str, ...], extensions) -> tuple[int | None, str]:
    """(how many, what) input units progress counts for a run of ``module`` over ``source``: the
    module's own count where it has one (``input_units``: a URL list's URLs), else the files."""
    if hasattr(module, "input_units"):
        return module.input_units(source)
    try:
        return len(input_files(source, extensions)), "file"
    except Exception:  # nothing to count here (checked again when the run reads it)
        return None, "file"


def dataset_files(output: str) -> list[str]:
    """The files of a dataset already in ``output`` (none for an empty or missing folder)."""
    return [meta.path for part in _OUTPUT_PARTS for meta in _match(f"{output}/{part}")]


def _match(pattern: str):
    try:
        return FileSystems.match([pattern])[0].metadata_list
    except Exception:  # a missing folder matches nothing
        return []


def launch(options: PipelineOptions, name: str, source: str, extensions, stage: str, config,
           shards: ShardConfig, build, models: dict | None = None, units=None):
    """Run ``build(pipeline, source, config, processes, staging) -> outputs`` as pipeline ``name``,
    then the quality stages the flags ask for (CLIP, dedup) and the sink, as a run of the dataset in
    ``--mode`` (pipelines/runs.py), holding the output's lock, with its progress on the console;
    print the dataset's summary and return its manifest (None for a dry run, which writes nothing).
    A dataset without samples ends the command with status 1 unless --allow-empty.

    ``extensions`` is what a folder input is filtered by; ``stage`` names the stage config in the
    manifest's ``config`` (e.g. "pdf"); ``models`` the model files the run uses, by sha256;
    ``units(source) -> (count, unit)`` the input units progress counts, where they are not the
    files matched (a URL list's URLs).
    """
    from vlcurate.pipelines.runs import carry_out, make_plan, recorded_cut
    from vlcurate.transforms.io.lock import OutputLocked, locked
    from vlcurate.transforms.io.runs import manifest_name
    from vlcurate.transforms.io.staging import Staging

    quality, quality_config, quality_models = quality_stage(options)
    files = prepare(options, source, extensions)
    processes = render_processes(options)
    flags = options.view_as(DatasetOptions)
    settings = {
        "input": source,
        stage: config_dict(config),
        "shards": dataclasses.asdict(shards),
        **({"quality": quality_config} if quality_config else {}),
    }
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode("utf-8")).hexdigest()

    shown = None  # the run's progress: none for a dry run

    def prefix_of(number: int) -> str:  # a command's first run keeps the plain prefix
        return shards.prefix if number == 1 else f"{shards.prefix}-r{number}"

    def run(plan):
        run_shards = dataclasses.replace(shards, prefix=plan.prefix, manifest=manifest_name(plan.number),
                                         resume=flags.mode == "resume")
        staging = Staging.of(shards.output, plan.prefix, name)
        info = {"models": {**(models or {}), **quality_models}, "pipeline": name,
                "config": {**settings, "shards": dataclasses.asdict(run_shards), "beam": run_options(options),
                           "render_processes": processes, "run": plan.number, "mode": plan.mode}}
        judged = quality.extending(recorded_cut(shards.output, plan)) if quality and plan.previous_runs else quality
        return carry_out(plan, shards.output, options,
                         lambda pipeline: build(pipeline, source, config, processes, staging=staging),
                         run_shards, info, judged, flags.retry_rejects, shown)

    word = command_word(name)
    if is_dry_run(options):
        from vlcurate.pipelines.runs import Plan

        return run(Plan(1, flags.mode, prefix_of(1), digest, settings, [], ()))
    count, unit = units(source) if units else (files, "file")
    shown = Progress(f"vlcurate {word}", count, ITEM_UNITS.get(name, "item"), unit, flags.progress_interval)
    try:
        with locked(shards.output):
            plan = make_plan(shards.output, flags.mode, flags.overwrite, prefix_of, digest, settings, [])
            manifest = run(plan)
    except OutputLocked as error:
        raise SystemExit(f"vlcurate: {error}") from None
    print(summary(shards.output, manifest), flush=True)
    refuse_empty(f"vlcurate {word}", shards.output, manifest, flags.allow_empty)
    return manifest


def command_word(pipeline: str) -> str:
    """What a user typed for pipeline ``pipeline`` (pdf_pages -> pdf)."""
    from vlcurate.pipelines.registry import COMMANDS

    return next((command.word for command in COMMANDS if command.pipeline == pipeline), pipeline)


def refuse_empty(command: str, output: str, manifest: dict, allow_empty: bool) -> None:
    """A dataset without samples ends the command with status 1 and one line (unless ``allow_empty``):
    an empty dataset is almost always a mistake (the wrong inputs, a filter too strict)."""
    if allow_empty or (manifest.get("totals") or {}).get("samples"):
        return
    raise SystemExit(f"{command}: {empty_reason(output, manifest)} (pass --allow-empty to accept an empty dataset)")


def config_dict(config) -> dict:
    """A stage's settings as the manifest records them (a frozen dataclass, or already a dict)."""
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)


def run_to_end(pipeline: beam.Pipeline):
    """Run and wait; the result (None for a Dataflow dry run, which submits nothing)."""
    result = pipeline.run()
    if result is not None:
        result.wait_until_finish()
    return result


def add_timing(output: str, result, name: str = "manifest.json") -> dict:
    """The dataset's manifest with ``throughput`` and ``funnel`` (per stage: elements, seconds,
    elements/s; elements in and outputs out) from the run's metrics, written back in place."""
    from vlcurate.transforms.runtime.funnel import timing

    manifest = read_manifest(output, name)
    try:
        throughput, funnel = timing(result.metrics().query())
    except Exception as error:  # a runner without metrics: the dataset stands without timings
        logging.getLogger(__name__).warning("no stage timings: %s", error)
        return manifest
    manifest.update(throughput=throughput, funnel=funnel)
    write_manifest(output, manifest, name)
    return manifest
