"""The CLIP stage's settings and weights, importable without torch or Beam's ML package.

``resolve`` turns a model name and a checkpoint or pretrained tag into a local weights file with
its sha256, before a run starts (transforms/filters/clip.py scores with it). Importing Beam's RunInference
costs over a second, which every command would pay at start-up if this lived there.
"""

from __future__ import annotations

import dataclasses
import json
import os

from vlcurate.transforms.io.files import file_sha256

FETCH_HINT = ("pass --clip-checkpoint PATH (an open_clip state dict or checkpoint file); on a machine "
              "with network, `vlcurate models fetch clip --model MODEL --pretrained TAG --output PATH` "
              "writes one and prints its sha256")


@dataclasses.dataclass(frozen=True)
class ClipConfig:
    """Which CLIP model scores the pairs, and how the scores filter them."""

    model: str = ""  # an open_clip architecture name ("" = no scoring)
    checkpoint: str = ""  # a local weights file
    pretrained: str = ""  # an open_clip pretrained tag, resolved to a local file at launch
    model_config: str = ""  # a JSON file that registers a custom architecture with open_clip
    checkpoint_sha256: str = ""
    min_batch: int = 8
    max_batch: int = 64
    max_image_pixels: int = 40_000_000
    min_score: float | None = None  # LAION style
    keep_fraction: float | None = None  # DataComp style: keep the top F of the run
    per_category: bool = False  # the keep fraction per category
    threads: int = 1  # torch intra-op threads per worker process

    def __post_init__(self):
        if self.keep_fraction is not None and not 0 < self.keep_fraction <= 1:
            raise ValueError("--clip-keep-fraction must be in (0, 1]")
        if not 1 <= self.min_batch <= self.max_batch:
            raise ValueError("CLIP batch sizes must satisfy 1 <= min <= max")
        if (self.min_score is not None or self.keep_fraction is not None) and not self.model:
            raise ValueError("--clip-min-score and --clip-keep-fraction need --clip-model")

    @property
    def enabled(self) -> bool:
        return bool(self.model)

    def provenance(self) -> dict[str, str]:
        return {"model": self.model, "pretrained": self.pretrained, "checkpoint_sha256": self.checkpoint_sha256}


def register_config(path: str) -> str:
    """Register a custom architecture (an open_clip model config JSON) under its file name."""
    import open_clip

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no CLIP model config at {path}")
    with open(path, encoding="utf-8") as handle:
        json.load(handle)  # a clear error for a file that is not JSON
    open_clip.add_model_config(path)
    return os.path.splitext(os.path.basename(path))[0]


def resolve(config: ClipConfig) -> ClipConfig:
    """The config with its weights as a local file and their sha256, or ValueError saying how to
    provide them. A pretrained tag is looked up (and downloaded, where there is network) here,
    before the run, never by the workers."""
    if not config.enabled:
        return config
    import open_clip

    if config.model_config:
        register_config(config.model_config)
    if config.model not in open_clip.list_models():
        raise ValueError(f"unknown CLIP model {config.model!r}; give an open_clip architecture name "
                         "(or a model config with --clip-model-config)")
    path = config.checkpoint
    if not path and config.pretrained:
        try:
            pretrained = open_clip.get_pretrained_cfg(config.model, config.pretrained)
            path = open_clip.download_pretrained(pretrained) if pretrained else ""
        except Exception as error:  # no network, no cache, unknown tag
            raise ValueError(f"cannot get CLIP weights {config.model}/{config.pretrained} ({error}); "
                             f"{FETCH_HINT}") from None
        if not path:
            raise ValueError(f"open_clip has no pretrained tag {config.pretrained!r} for {config.model}; {FETCH_HINT}")
    if not path:
        raise ValueError(f"CLIP model {config.model} has no weights; {FETCH_HINT}")
    if not os.path.isfile(path):
        raise ValueError(f"no CLIP checkpoint at {path}; {FETCH_HINT}")
    return dataclasses.replace(config, checkpoint=path, checkpoint_sha256=file_sha256(path))
