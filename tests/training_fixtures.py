"""Generated datasets for the trainer's tests, written by the project's own shard sink.

Small rendered-text images with their text (document_ocr, web_code, table_chart), plain text
(text_only) and SFT conversations (with and without images), and broken copies of real shards
for the bad-shard cases. A tiny model config keeps every run to seconds on two cores.
"""

from __future__ import annotations

import io
import json
import random
import tarfile

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from PIL import Image as PILImage
from PIL import ImageDraw

from vlcurate.transforms.sample import Sample, encode_image, make_key
from vlcurate.transforms.shards import ShardConfig, WriteDataset

WORDS = ("the page shows a table of results with totals per year and a chart of sales in each region "
         "open the door keep left train leaves at nine from platform three def main return value").split()
# Test-sized model and images: 32/64 px branches, 4x4 = 16 image tokens.
TINY_MODEL = "low_size=32,high_size=64,patch=8,high_patch=8,vision_dim=32,dim=64,layers=2,heads=2,max_len=384"
TINY_IMAGE_TOKENS = 16


def sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)) + "."


def text_picture(text: str, n: int, fmt: str = "png"):
    """A small image with the text drawn in it, of a size that varies with n."""
    width, height = 48 + (n * 7) % 40, 32 + (n * 5) % 24
    image = PILImage.new("RGB", (width, height), (255 - n % 50, 250, 240))
    ImageDraw.Draw(image).text((2, 2), text[:12], fill=(n % 90, 10, 10))
    return encode_image(image, fmt)


def pretraining_sample(category: str, n: int) -> Sample:
    rng = random.Random(f"{category}:{n}")
    text = sentence(rng, 6 + n % 7)
    source = {"document_ocr": "pdf", "web_code": "web", "table_chart": "chart"}[category]
    return Sample(key=make_key(source, category, n), source=source, category=category, uri=f"mem://{category}/{n}",
                  locator=str(n), images=(text_picture(text, n, "jpeg" if n % 3 == 0 else "png"),), text=text,
                  html="<p>" + text + "</p>" if category == "web_code" else None)


def text_sample(n: int) -> Sample:
    rng = random.Random(f"text:{n}")
    return Sample(key=make_key("text", n), source="text", category="text_only", uri=f"mem://text/{n}",
                  locator=str(n), text=sentence(rng, 8 + n % 9))


def sft_sample(n: int, with_image: bool) -> Sample:
    rng = random.Random(f"sft:{n}")
    answer = sentence(rng, 4 + n % 4)
    question = "<image_placeholder>What does it say?" if with_image else "Say something about " + rng.choice(WORDS)
    conversation = [{"role": "User", "content": question, **({"images": [0]} if with_image else {})},
                    {"role": "Assistant", "content": answer}]
    return Sample(key=make_key("sft", n, with_image), source="sft", category="caption" if with_image else "text_only",
                  uri=f"mem://sft/{n}", locator=str(n), images=(text_picture(answer, n),) if with_image else (),
                  conversation=conversation)


def mixed_samples(docs=120, web=60, charts=30, texts=200, sft_images=60, sft_texts=20) -> list[Sample]:
    return ([pretraining_sample("document_ocr", n) for n in range(docs)]
            + [pretraining_sample("web_code", n) for n in range(web)]
            + [pretraining_sample("table_chart", n) for n in range(charts)]
            + [text_sample(n) for n in range(texts)]
            + [sft_sample(n, True) for n in range(sft_images)]
            + [sft_sample(n, False) for n in range(sft_texts)])


def write_dataset(output: str, samples: list[Sample], prefix: str = "t", per_shard: int = 25) -> dict:
    """Write samples with WriteDataset (FnApiRunner, in process); returns the manifest."""
    with beam.Pipeline(options=PipelineOptions(["--runner=FnApiRunner"])) as pipeline:
        created = pipeline | "Samples" >> beam.Create(samples)
        _ = {"samples": created, "rejects": pipeline | "Rejects" >> beam.Create([]), "inputs": created} | WriteDataset(
            ShardConfig(output=output, prefix=prefix, max_samples_per_shard=per_shard),
            run={"pipeline": "test", "config": {}})
    with open(f"{output}/manifest.json", encoding="utf-8") as handle:
        return json.load(handle)


# --- broken shards -------------------------------------------------------------------------------


def tar_members(path: str) -> list[tuple[str, bytes]]:
    with tarfile.open(path) as tar:
        return [(info.name, tar.extractfile(info).read()) for info in tar.getmembers()]


def write_members(path: str, members) -> None:
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def keys_in(members) -> list[str]:
    return sorted({name.partition(".")[0] for name, _ in members})
