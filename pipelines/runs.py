"""A dataset's runs, the same for every command and for recipes: what a mode plans (new, extend,
resume) and one run carried out (the lock, staging, quality, the sink, the merged manifest).

- ``--mode new`` (default): the output must hold no dataset (or ``--overwrite`` replaces it).
- ``--mode extend``: adds a run to a dataset. Samples whose keys the dataset already holds, and
  (unless ``--retry-rejects``) keys an earlier run rejected or filtered, become
  ``already_in_dataset`` rows; a CLIP keep fraction judges new samples by the cut the dataset's
  first run recorded. So extending over inputs the dataset has seen adds nothing.
- ``--mode resume``: carries out an interrupted run again with its plan: inputs it had finished are
  replayed from its staging area instead of being rendered again, and finished shards stay as they
  are (a finished shard with other bytes stops the run).

Every run writes ``runs/run-NNNN.plan.json`` before it starts and ``runs/run-NNNN.json`` (its
manifest) when it ends; ``manifest.json`` merges the finished runs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys

import apache_beam as beam

MODES = ("new", "extend", "resume")


@dataclasses.dataclass(frozen=True)
class Plan:
    """What a run will do: written to runs/run-NNNN.plan.json before it starts."""

    number: int
    mode: str
    prefix: str
    digest: str  # sha256 of what defines the run: a resumed run must be the same run
    document: dict  # the recipe, or the command's settings
    beam: list[str]
    previous_runs: tuple[int, ...]  # the finished runs whose keys an extending run skips

    def describe(self) -> dict:
        return dataclasses.asdict(self)


def make_plan(output: str, mode: str, overwrite: bool, prefix_of, digest: str, document: dict, beam_argv: list[str],
              what: str = "the command's settings") -> Plan:
    """The plan of a run into ``output`` (call it holding the output's lock). ``prefix_of(number)``
    names the run's shard prefix; ``digest`` what a resumed run must match. A mode that cannot be
    carried out ends here with one line saying what to do."""
    from vlcurate.pipelines.launch import dataset_files
    from vlcurate.transforms.io.runs import plan_name, read_json, run_state
    from vlcurate.transforms.io.staging import STAGING

    state = run_state(output)
    if mode == "new":
        existing = dataset_files(output)
        if existing and not overwrite:
            raise SystemExit(f"{output} already holds a dataset ({len(existing)} files): pass --overwrite to "
                             "replace it, --mode extend to add to it, or --mode resume to finish an interrupted run")
        from apache_beam.io.filesystems import FileSystems
        from vlcurate.transforms.io.written import split_written

        written, others = split_written(output, existing)
        if others:
            root = output.rstrip("/") + "/"
            named = ", ".join(path.removeprefix(root) for path in others[:3])
            more = f" and {len(others) - 3} more" if len(others) > 3 else ""
            refuse(f"{output} holds files its dataset did not write ({named}{more}): move them elsewhere, or choose "
                   "another --output; --overwrite deleted nothing")
        if written:
            FileSystems.delete(written)
        with contextlib.suppress(Exception):  # what an interrupted run staged: nothing to keep
            FileSystems.delete([f"{output}/{STAGING}"])
        return Plan(1, "new", prefix_of(1), digest, document, beam_argv, ())
    if mode == "extend":
        if state.interrupted is not None:
            raise SystemExit(f"run {state.interrupted} of {output} was interrupted: --mode resume first")
        if not state.finished:
            raise SystemExit(f"{output} has no finished run to extend (use --mode new)")
        number = state.next
        return Plan(number, "extend", prefix_of(number), digest, document, beam_argv, state.finished)
    if state.interrupted is None:
        raise SystemExit(f"{output} has no interrupted run to resume")
    old = read_json(f"{output}/{plan_name(state.interrupted)}") or {}
    if old.get("digest") != digest:
        raise SystemExit(f"{what} differ from those run {state.interrupted} started with; "
                         "resume needs the same ones (or start again with --mode new --overwrite)")
    return Plan(old["number"], old["mode"], old["prefix"], digest, document, beam_argv, tuple(old["previous_runs"]))


def refuse(message: str):
    """A run refused for its command line: one line on stderr and exit status 2 (a SystemExit
    with a message exits 1)."""
    print(f"vlcurate: {message}", file=sys.stderr)
    raise SystemExit(2)


def recorded_cut(output: str, plan: Plan) -> dict | None:
    """The CLIP cut the dataset's earliest run recorded, for an extending run to judge by."""
    from vlcurate.transforms.io.runs import run_manifests

    for manifest in run_manifests(output, plan.previous_runs):
        cut = (manifest or {}).get("facts", {}).get("clip_cut")
        if cut is not None:
            return cut
    return None


def loaded(pcoll, staging, label: str = "Load"):
    """Samples, where a source stage staged them and sent their records: for a stage that needs
    their content (labels, CLIP), read back from the staging area (io/shards.LoadSamples)."""
    from vlcurate.transforms.io.shards import LoadSamples

    return pcoll | label >> beam.ParDo(LoadSamples(staging))


def staged(samples, staging, quality=None, clip: bool = True):
    """Samples -> their staged records, after quality's annotations (CLIP scores where ``clip``,
    dedup's evidence), which need the pixels. ``samples`` may be a tuple of branches (pages and
    figures): each is staged on its own and only the records are flattened, because a Flatten of
    samples would hold all their bytes at once on the local runner."""
    from vlcurate.transforms.io.shards import StageSamples

    branches = samples if isinstance(samples, tuple) else (samples,)
    records = []
    for number, branch in enumerate(branches):
        name = "" if len(branches) == 1 else str(number)
        if quality is not None:
            branch = loaded(branch, staging, f"Load{name}") | f"Annotate{name}" >> quality.annotate(clip)
        records.append(branch | f"Stage{name}" >> beam.ParDo(StageSamples(staging)))
    return records[0] if len(records) == 1 else tuple(records) | "Staged" >> beam.Flatten()


def curate(outputs: dict, output: str, plan: Plan, shards, run: dict, quality=None, retry_rejects: bool = False):
    """The stages after the sources, on ``outputs`` ({"samples", "rejects", counters}, or already
    {"records", ...}): quality's annotations while the pixels are at hand and staging, then on
    records only: skipping what the dataset has (extend), quality's judgement, and the sink."""
    from vlcurate.transforms.io.shards import WriteDataset
    from vlcurate.transforms.io.staging import Staging

    if "records" not in outputs:
        records = staged(outputs["samples"], Staging.of(output, shards.prefix, run["pipeline"]), quality)
        outputs = {**{name: pcoll for name, pcoll in outputs.items() if name != "samples"}, "records": records}
    if plan.previous_runs:
        outputs = _skip_existing(outputs, output, plan.previous_runs, retry_rejects)
    if quality is not None:
        outputs = outputs | "Quality" >> quality.judge()
    outputs = {("samples" if name == "records" else name): pcoll for name, pcoll in outputs.items()}
    return outputs | "WriteDataset" >> WriteDataset(shards, run)


def _skip_existing(outputs: dict, output: str, runs, retry_rejects: bool) -> dict:
    from vlcurate.transforms.io.runs import SkipExisting, run_manifests

    manifests = run_manifests(output, runs)
    index_files = [f"{output}/{shard['index']['name']}" for manifest in manifests for shard in manifest["shards"]]
    rejects_files = [] if retry_rejects else [
        f"{output}/{entry['name']}" for manifest in manifests for entry in manifest["rejects"]["files"]]
    skipped = outputs["records"] | "SkipExisting" >> SkipExisting(index_files, rejects_files)
    rejects = (outputs["rejects"], skipped["rejects"]) | "WithExisting" >> beam.Flatten()
    return {**outputs, "records": skipped["samples"], "rejects": rejects}


def carry_out(plan: Plan, output: str, options, build, shards, run: dict, quality=None,
              retry_rejects: bool = False, shown=None) -> dict | None:
    """Write the plan, build the pipeline (``build(pipeline) -> outputs`` gives the sources'
    outputs), run it, showing its progress (``shown``: a console_progress.Progress), and merge its
    manifest into the dataset's; the merged manifest (None for a dry run, which writes nothing and
    prints the job instead)."""
    from vlcurate.pipelines.launch import add_timing, is_dry_run, run_to_end
    from vlcurate.transforms.io.runs import manifest_name, run_state, write_merged, write_plan

    dry_run = is_dry_run(options)
    if not dry_run:
        write_plan(output, plan.number, plan.describe())
    pipeline = beam.Pipeline(options=options)
    curate(build(pipeline), output, plan, shards, run, quality, retry_rejects)
    try:
        with shown.showing() if shown is not None and not dry_run else contextlib.nullcontext():
            result = run_to_end(pipeline)
    except Exception as error:
        # Beam wraps a worker's OSError in its own exception: the words are what survive.
        if "No space left on device" in str(error) or "ENOSPC" in str(error):
            raise SystemExit(f"vlcurate: the disk under {output} is full; the shards finished so far are intact. "
                             "Free some space and finish the run with --mode resume") from None
        raise
    if dry_run:
        from vlcurate.pipelines.dry_run import describe

        print(describe(result, options))
        return None
    add_timing(output, result, manifest_name(plan.number))
    return write_merged(output, run_state(output).finished)
