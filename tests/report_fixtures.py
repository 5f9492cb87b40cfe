"""Small datasets for the report and inspect tests, written by the real sink (WriteDataset on
FnApiRunner) or the real sft pipeline."""

from __future__ import annotations

import io
import json
import pathlib

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from PIL import Image as PILImage

from vlcurate.transforms.rejects import RejectRecord
from vlcurate.transforms.sample import Sample, encode_image, make_key
from vlcurate.transforms.shards import ShardConfig, WriteDataset

HOSTILE = "<script>alert(1)</script>\"><img src=x onerror=alert(2)> & <b>bold</b>"
TARGET = {"document_ocr": 0.5, "scene_ocr": 0.3, "text_only": 0.2}
LEAF = "recognition/ocr-and-transcription/printed-text-transcription"
CLIP_THRESHOLD = -0.3
EXAMPLES = pathlib.Path(__file__).parents[1] / "examples"
PER_CATEGORY = {"document_ocr": 8, "scene_ocr": 3, "text_only": 2}


def _picture(n: int, size: tuple[int, int], image_format: str):
    image = PILImage.new("RGB", size, ((n * 53) % 256, (n * 97) % 256, 160))
    for x in range(0, size[0], 7):
        image.putpixel((x, n % size[1]), (255, 255, 255))
    return encode_image(image, image_format)


def rich_samples() -> list[Sample]:
    """Documents (png, clip + ocr scores, hostile text), scene text (jpeg, labelled), text only."""
    samples = []
    for n in range(PER_CATEGORY["document_ocr"]):
        samples.append(Sample(
            key=make_key("pdf", "doc", n), source="pdf", category="document_ocr",
            uri=f"file:///in/doc{n}.pdf", locator=f"page={n + 1}",
            images=(_picture(n, (60 + 10 * n, 80), "png"),),
            text=f"{HOSTILE} page {n} " + "words " * 80, text_source="pdf-text-layer",
            scores={"clip": -0.25 + n / 50, "ocr_confidence": 0.5 + n / 20},
        ))
    for n in range(PER_CATEGORY["scene_ocr"]):
        samples.append(Sample(
            key=make_key("ocr", "sign", n), source="ocr", category="scene_ocr",
            uri=f"file:///in/sign{n}.jpg", locator="",
            images=(_picture(10 + n, (90, 40 + n), "jpeg"),),
            text=f"SIGN {n}", text_source="ocr:ppocr", scores={"ocr_confidence": 0.9 - n / 10},
            taxonomy={"id": LEAF if n else None, "confidence": 0.8 if n else 0.2, "version": "1"},
        ))
    for n in range(PER_CATEGORY["text_only"]):
        samples.append(Sample(key=make_key("text", "t", n), source="text", category="text_only",
                              uri=f"file:///in/t{n}.txt", locator="", text=f"plain text {n}"))
    return samples


def rich_rejects() -> list[RejectRecord]:
    return [
        RejectRecord(stage="clip", reason="clip_below_threshold", uri="file:///in/low0.pdf", locator="page=1",
                     detail=f"clip=-0.400000 below {CLIP_THRESHOLD:.6f}, the run's top 0.8"),
        RejectRecord(stage="clip", reason="clip_below_threshold", uri="file:///in/low1.pdf", locator="page=1",
                     detail=f"clip=-0.350000 below {CLIP_THRESHOLD:.6f}, the run's top 0.8"),
        RejectRecord(stage="pdf_document", reason="pdf_corrupt", uri="file:///in/bad.pdf", locator="",
                     detail="not a PDF"),
    ]


def write_rich_dataset(output: str, extras: bool = True) -> str:
    """The rich dataset in shards of 4 samples; ``extras`` adds what a recipe run records
    (throughput, funnel, quality.clip_threshold) to its manifest."""
    samples, rejects = rich_samples(), rich_rejects()
    inputs = [s.key for s in samples] + [r.uri for r in rejects]
    with BeamTestPipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as p:
        _ = {
            "samples": p | "Samples" >> beam.Create(samples),
            "rejects": p | "Rejects" >> beam.Create(rejects),
            "inputs": p | "Inputs" >> beam.Create(inputs),
        } | WriteDataset(ShardConfig(output=output, prefix="t", max_samples_per_shard=4),
                         run={"pipeline": "test", "config": {"target_mix": TARGET}})
    if extras:
        path = f"{output}/manifest.json"
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        total = len(samples) + len(rejects)
        manifest["throughput"] = {"render": {"elements": 300, "seconds": 1.5}, "clip": {"elements": 15, "seconds": 0.0}}
        manifest["funnel"] = [{"stage": "render", "in": total, "out": total - 1},
                              {"stage": "clip", "in": total - 1, "out": len(samples)}]
        manifest["quality"] = {"clip_threshold": CLIP_THRESHOLD}
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2, sort_keys=True)
    return output


def write_sft_dataset(output: str) -> str:
    """The real sft pipeline over examples/: no scores, no labels, conversations, one text-only."""
    from vlcurate.pipelines import sft

    sft.run(["--input", str(EXAMPLES / "sft" / "conversations"), "--output", output, "--image-root", str(EXAMPLES),
             "--runner=FnApiRunner"])
    return output


def png_size(data: bytes) -> tuple[int, int]:
    return PILImage.open(io.BytesIO(data)).size
