"""The flags every pipeline shares (dataset, OCR, quality) and the stage settings built from them.

Beam parses every PipelineOptions subclass into one parser, so a flag two pipelines share must be
defined once, here; each pipeline module adds its own in its own PipelineOptions subclass.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os

from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.transforms.filters.clip_config import ClipConfig, resolve
from vlcurate.transforms.filters.quality import DEDUP_KINDS, Quality
from vlcurate.transforms.io.shards import ShardConfig
from vlcurate.transforms.io.blobs import TAR_BLOCK
from vlcurate.transforms.ocr.config import ENGINES, MODES, OcrConfig, engine_models


def add_flag(parser, name: str, **kwargs) -> None:
    """A flag spelled both ways: ``--max-pages`` (as documented) and ``--max_pages`` (Beam style)."""
    dashed = f"--{name}"
    underscored = f"--{name.replace('-', '_')}"
    flags = [dashed] if dashed == underscored else [dashed, underscored]
    parser.add_argument(*flags, dest=name.replace("-", "_"), **kwargs)


# Value types for counts, sizes and seconds: a bad value stops the command before anything runs
# (pipelines/flags.py turns the message into one line), and a recipe source's option gets the same
# check. Each range is the one the stage's config enforces.
def whole_number(low: int, high: int | None = None):
    """An argparse type: a whole number from ``low`` (up to ``high``)."""
    wanted = f"a whole number from {low} to {high}" if high is not None else f"a whole number >= {low}"

    def convert(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    convert.metavar = "N"  # what --help shows for its value
    return convert


def number(low: float, high: float | None = None, above: bool = False):
    """An argparse type: a finite number >= ``low`` (> ``low`` when ``above``), up to ``high``."""
    wanted = f"a number {'>' if above else '>='} {low}" + (f" and <= {high}" if high is not None else "")

    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        fits = math.isfinite(value) and (value > low if above else value >= low) and (high is None or value <= high)
        if not fits:
            raise argparse.ArgumentTypeError(f"must be {wanted}, not {text}")
        return value

    convert.metavar = "X"
    return convert


def dedup_kinds(text: str) -> str:
    """An argparse type: a comma list of deduplication kinds (kept as the text)."""
    if any(kind.strip() not in DEDUP_KINDS for kind in text.split(",") if kind.strip()):
        raise argparse.ArgumentTypeError(f"must be a comma list of {', '.join(DEDUP_KINDS)}, not {text}")
    return text


def shard_prefix(text: str) -> str:
    """An argparse type: a shard file prefix, as ShardConfig takes it."""
    if not text or not all(c.isalnum() or c in "-_" for c in text):
        raise argparse.ArgumentTypeError(f"must be letters, digits, - or _, not {text!r}")
    return text


class DatasetOptions(PipelineOptions):
    """The flags every pipeline has: input, output, shard caps, and the per-item budget and
    processes of its isolated stage. Beam parses every PipelineOptions subclass into one parser,
    so a flag two pipelines share must be defined once, here."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "input", action="append", default=None, metavar="PATH",
                 help="what to read; each command's --help says which forms it takes; repeat for several "
                      "(where the command takes several)")
        add_flag(parser, "page-timeout", type=number(0, above=True), default=None,
                 help="seconds one page (or image) may take (default: pdf 60, web 30, ocr 60, captions 20 a download)")
        add_flag(parser, "render-processes", type=whole_number(0), default=0,
                 help="isolated child processes (PyMuPDF, browsers, OCR engines) per worker process; "
                      "0: cores / local workers, 1 on other runners")
        add_flag(parser, "output", metavar="DATASET", help="dataset folder (local path or gs://...)")
        add_flag(parser, "shard-prefix", type=shard_prefix, default=None,
                 help="shard file prefix (default: the pipeline's source)")
        add_flag(parser, "max-samples-per-shard", type=whole_number(1), default=1000,
                 help="a shard holds at most this many samples")
        add_flag(parser, "max-shard-bytes", type=whole_number(4 * TAR_BLOCK), default=512 * 1024 * 1024,
                 help="a shard holds at most this many bytes (a larger sample gets a shard of its own)")
        add_flag(parser, "overwrite", action="store_true", help="--mode new: replace a dataset already in --output")
        add_flag(parser, "mode", choices=("new", "extend", "resume"), default="new",
                 help="new: a new dataset; extend: add a run to the dataset in --output (inputs it has seen add "
                      "nothing); resume: finish an interrupted run, replaying what it had done")
        add_flag(parser, "retry-rejects", action="store_true",
                 help="--mode extend: judge again the inputs an earlier run rejected or filtered")
        add_flag(parser, "max-file-bytes", type=whole_number(1), default=None,
                 help="larger input files are rejected unread (default: pdf 256 MiB, ocr and notebooks 64 MiB, captions "
                      "16 MiB a download)")
        add_flag(parser, "max-image-pixels", type=whole_number(1), default=None,
                 help="ocr, notebooks, captions: larger images are rejected before decoding (default 40,000,000)")
        add_flag(parser, "worker-memory-mb", type=whole_number(0), default=None,
                 help="address-space cap of each isolated child process (0: none; default 4096)")
        add_flag(parser, "allow-empty", action="store_true",
                 help="exit 0 when the dataset ends with no samples (otherwise status 1)")
        add_flag(parser, "progress-interval", type=number(0), default=10.0,
                 help="seconds between progress lines when stderr is not a terminal (0: no progress)")


class NetworkOptions(PipelineOptions):
    """What the commands that reach the network (web, captions) may reach: public addresses, and
    the --allow-host pairs; --offline: those pairs only."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "allow-host", action="append", default=None,
                 help="HOST:PORT that may be reached although private or loopback (tests); repeatable")
        add_flag(parser, "offline", action="store_true",
                 help="reach only --allow-host (and web's input folder), and look no name up (local sites, "
                      "WebSight-style folders, tests)")


class UrlListOptions(PipelineOptions):
    """The URL column of a URL list (web, captions)."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "url-column", default="url",
                 help="the URL's column in a .csv or .tsv list (its field in .jsonl or .parquet); the other "
                      "columns are kept in each sample's json under input")


_OCR_DEFAULTS = OcrConfig()


class OcrOptions(PipelineOptions):
    """The OCR flags of every pipeline that can read text from its images."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "ocr", choices=MODES, default=_OCR_DEFAULTS.mode,
                 help="pdf and web: OCR pages without text of their own (auto), every page, or none")
        add_flag(parser, "ocr-engine", choices=ENGINES, default=_OCR_DEFAULTS.engine,
                 help="ppocr: PaddleOCR's PP-OCR models (rapidocr, ONNX); tesseract: Tesseract (tesserocr)")
        add_flag(parser, "ocr-dpi", type=whole_number(36, 600), default=_OCR_DEFAULTS.dpi,
                 help="resolution PDF pages are rendered at for OCR")
        add_flag(parser, "ocr-lang", default=_OCR_DEFAULTS.tesseract_lang,
                 help="Tesseract's languages, e.g. eng or eng+deu (Debian's tesseract-ocr-LANG data)")
        add_flag(parser, "tessdata", default="",
                 help="Tesseract's data folder (default: $TESSDATA_PREFIX, else Debian's)")


class QualityOptions(PipelineOptions):
    """CLIP scoring and filtering, and deduplication: the last stages of every pipeline."""

    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "clip-model", default="", help="an open_clip architecture (e.g. ViT-B-32): score every pair")
        add_flag(parser, "clip-checkpoint", default="", help="its weights: a local state dict or open_clip checkpoint")
        add_flag(parser, "clip-pretrained", default="", help="or an open_clip pretrained tag (needs network once)")
        add_flag(parser, "clip-model-config", default="", help="a JSON model config registering a custom architecture")
        add_flag(parser, "clip-min-score", type=number(-1, 1), default=None,
                 help="drop pairs scoring less (LAION: 0.28 for ViT-B/32)")
        add_flag(parser, "clip-keep-fraction", type=number(0, 1, above=True), default=None,
                 help="keep the top fraction of the run (DataComp)")
        add_flag(parser, "clip-per-category", action="store_true", help="the keep fraction per category")
        add_flag(parser, "clip-max-batch", type=whole_number(1), default=64, help="pairs per CLIP batch (at most)")
        add_flag(parser, "dedup", type=dedup_kinds, default="",
                 help=f"comma list of {', '.join(DEDUP_KINDS)}: drop exact and near copies")


def quality_stage(options: PipelineOptions, clip_sources: frozenset[str] | None = None
                  ) -> tuple[Quality | None, dict, dict]:
    """(the Quality transform or None, its manifest config, its model pins) from the flags; a run
    whose CLIP weights cannot be had stops here, before anything runs, with how to provide them.
    ``clip_sources``: a recipe's sources that CLIP scores (None: every sample)."""
    flags = options.view_as(QualityOptions)
    dedup = tuple(kind.strip() for kind in flags.dedup.split(",") if kind.strip())
    try:
        clip = resolve(clip_config(options))
        stage = Quality(clip, dedup, clip.max_image_pixels, clip_sources) if clip.enabled or dedup else None
    except (ValueError, FileNotFoundError) as error:
        raise SystemExit(f"vlcurate: {error}") from error
    config = {"clip": dataclasses.asdict(clip), "dedup": list(dedup)} if stage else {}
    if stage and clip_sources is not None:
        config["clip_sources"] = sorted(clip_sources)
    models = {"clip": clip.provenance()} if clip.enabled else {}
    return stage, config, models


def clip_config(options: PipelineOptions) -> ClipConfig:
    """The --clip-* flags as a ClipConfig, its values checked (ValueError) but no file read yet:
    also how a recipe's stages.clip is checked."""
    flags = options.view_as(QualityOptions)
    return ClipConfig(
        model=flags.clip_model, checkpoint=flags.clip_checkpoint, pretrained=flags.clip_pretrained,
        model_config=flags.clip_model_config, min_score=flags.clip_min_score,
        keep_fraction=flags.clip_keep_fraction, per_category=flags.clip_per_category,
        min_batch=min(8, flags.clip_max_batch), max_batch=flags.clip_max_batch,
        max_image_pixels=image_pixels(options, 40_000_000), threads=local_processes(options),
    )


def ocr_config(options: PipelineOptions, processes: int, **settings) -> OcrConfig:
    """The OCR settings from the flags, then ``settings``. Each of the ``processes`` children of a
    worker process gets an equal share of its cores as native threads (onnxruntime, OpenCV, OpenMP)."""
    flags = options.view_as(OcrOptions)
    from_flags = {
        "engine": flags.ocr_engine,
        "mode": flags.ocr,
        "dpi": flags.ocr_dpi,
        "tesseract_lang": flags.ocr_lang,
        "tessdata": flags.tessdata,
        "threads": max(1, local_processes(options) // processes),
    }
    try:
        return OcrConfig(**{**from_flags, **settings})
    except ValueError as error:
        raise SystemExit(f"vlcurate: {error}") from error


def ocr_models(config: OcrConfig) -> dict:
    """The manifest's ``models`` entry for OCR (empty when OCR is off); refuses to start without them."""
    if config.mode == "never":
        return {}
    try:
        return {"ocr": {"engine": config.engine, "files": engine_models(config)}}
    except (FileNotFoundError, RuntimeError) as error:
        raise SystemExit(f"vlcurate: {error}") from error


def image_pixels(options: PipelineOptions, default: int) -> int:
    value = options.view_as(DatasetOptions).max_image_pixels
    return default if value is None else value


def isolation_caps(options: PipelineOptions, default_file_bytes: int, default_memory_mb: int | None) -> dict:
    """max_file_bytes and worker_memory_mb from the shared flags, with the pipeline's defaults."""
    dataset = options.view_as(DatasetOptions)
    memory = default_memory_mb if dataset.worker_memory_mb is None else dataset.worker_memory_mb
    return {
        "max_file_bytes": default_file_bytes if dataset.max_file_bytes is None else dataset.max_file_bytes,
        "worker_memory_mb": memory or None,
    }


def input_path(options: PipelineOptions, single: str = "") -> str | tuple[str, ...]:
    """--input: one path as a str (so the settings a dataset records keep their form), several (the
    flag repeated) as a tuple, each once. ``single`` names a command that reads one input only."""
    given = options.view_as(DatasetOptions).input or []
    paths = list(dict.fromkeys([given] if isinstance(given, str) else given))
    if not paths:
        raise SystemExit("--input is required")
    if len(paths) == 1:
        return paths[0]
    if single:
        from vlcurate.pipelines.flags import UsageError

        raise UsageError(f"vlcurate {single}: --input is given {len(paths)} times, but vlcurate {single} reads "
                         "one input: run it once per input (--mode extend adds a run to the dataset)")
    return tuple(paths)


def page_timeout(options: PipelineOptions, default: float) -> float:
    value = options.view_as(DatasetOptions).page_timeout
    return default if value is None else value


def render_processes(options: PipelineOptions) -> int:
    return options.view_as(DatasetOptions).render_processes or local_processes(options)


def shard_config(options: PipelineOptions, default_prefix: str) -> ShardConfig:
    dataset = options.view_as(DatasetOptions)
    if not dataset.output:
        raise SystemExit("--output is required")
    return ShardConfig(
        output=dataset.output.rstrip("/"),
        prefix=dataset.shard_prefix or default_prefix,
        max_samples_per_shard=dataset.max_samples_per_shard,
        max_shard_bytes=dataset.max_shard_bytes,
    )


def local_processes(options: PipelineOptions) -> int:
    """Child processes per worker process for native work when the user did not say: on the local
    FnApiRunner, the cores shared among its worker processes; elsewhere (Dataflow starts an SDK
    process per core) one."""
    every = options.get_all_options()
    if every.get("runner") not in ("FnApiRunner", "DirectRunner", None):
        return 1
    workers = every.get("direct_num_workers") or 1
    if every.get("direct_running_mode") != "multi_processing":
        workers = 1
    return max(1, (os.cpu_count() or 1) // workers)


def run_options(options: PipelineOptions) -> dict:
    """The Beam options worth recording in a manifest (the ones that were set)."""
    wanted = ("runner", "direct_running_mode", "direct_num_workers", "project", "region", "job_name")
    every = options.get_all_options(drop_default=True)
    return {name: every[name] for name in wanted if every.get(name) is not None}
