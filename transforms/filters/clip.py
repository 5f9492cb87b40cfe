"""CLIP scores of image-text pairs with open_clip, and the LAION- and DataComp-style filters.

``OpenClipHandler`` is a Beam RunInference ``ModelHandler``: RunInference loads one model per
worker process (Beam's ``Shared``), batches samples with ``BatchElements`` (min/max from the
config), and the handler scores each batch: the image through the model's own preprocessing,
the sample's text through its tokenizer (truncated to the context length), cosine similarity of
the normalised features in ``scores.clip``. Weights come from a local checkpoint (a state dict
or an open_clip checkpoint, loaded with ``weights_only=True``) or an open_clip pretrained tag,
resolved to a local file before the run starts (transforms/filters/clip_config.py); nothing is
downloaded by the workers.

torch and open_clip are imported inside the functions that need them, so the pipelines that do
not score pay nothing for them.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, RunInference

from vlcurate.transforms.filters.clip_config import ClipConfig, register_config
from vlcurate.transforms.data.rejects import RejectRecord, sample_reject
from vlcurate.transforms.data.sample import Sample

# Keep-fraction thresholds come from this many quantiles: exact order statistics up to 1000
# samples per group, Beam's approximate quantiles (0.1% resolution) above.
_QUANTILES = 1001

@dataclasses.dataclass
class LoadedClip:
    """A model with its preprocessing and tokenizer (a class, not a tuple: Beam's ``Shared``
    keeps a weak reference to what it shares)."""

    model: Any
    preprocess: Any
    tokenizer: Any


def load_model(config: ClipConfig) -> LoadedClip:
    """The model on the CPU, weights from the resolved checkpoint."""
    import open_clip
    import torch

    if config.model_config:
        register_config(config.model_config)
    with _without_random_init_warning():  # the checkpoint's weights are loaded next
        model, _, preprocess = open_clip.create_model_and_transforms(config.model, pretrained=None)
    state = torch.load(config.checkpoint, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    state = {name.removeprefix("module."): value for name, value in state.items()}
    model.load_state_dict(state)
    model.eval()
    return LoadedClip(model, preprocess, open_clip.get_tokenizer(config.model))


class _RandomInitWarning(logging.Filter):
    """Drops open_clip's "No pretrained weights loaded ... Model initialized randomly." warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "initialized randomly" not in record.getMessage()


@contextlib.contextmanager
def _without_random_init_warning():
    """While the model is made: open_clip warns on the root logger that a model made without a
    pretrained tag is random, which ours is only until ``load_model`` loads the checkpoint (the
    demo printed it once per worker, for a model that was not random)."""
    drop = _RandomInitWarning()
    logging.getLogger().addFilter(drop)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(drop)


def pair_text(sample: Sample) -> str:
    """The text a sample's image is scored against: its caption or txt."""
    return (sample.text or "").strip()


class OpenClipHandler(ModelHandler):
    """Samples in, (sample with ``scores.clip``, image embedding) out; unscorable samples (no
    image, no text, an image that cannot be decoded) pass with no score and no embedding."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self._config = config

    def load_model(self):
        import torch

        torch.set_num_threads(self._config.threads)
        return load_model(self._config)

    def batch_elements_kwargs(self) -> dict[str, Any]:
        return {"min_batch_size": self._config.min_batch, "max_batch_size": self._config.max_batch}

    def run_inference(self, batch, model, inference_args=None):
        import torch

        net, preprocess, tokenizer = model.model, model.preprocess, model.tokenizer
        images, texts, scorable = [], [], []
        for index, sample in enumerate(batch):
            image = _decoded(sample, self._config.max_image_pixels)
            if image is not None and pair_text(sample):
                images.append(preprocess(image))
                texts.append(pair_text(sample))
                scorable.append(index)
        scores: dict[int, tuple[float, list[float]]] = {}
        if scorable:
            with torch.no_grad():
                image_features = torch.nn.functional.normalize(net.encode_image(torch.stack(images)), dim=-1)
                text_features = torch.nn.functional.normalize(net.encode_text(tokenizer(texts)), dim=-1)
            similarity = (image_features * text_features).sum(dim=-1)
            for row, index in enumerate(scorable):
                scores[index] = (float(similarity[row]), image_features[row].tolist())
        provenance = self._config.provenance()
        out = []
        for index, sample in enumerate(batch):
            if index not in scores:
                out.append((sample, None))
                continue
            score, embedding = scores[index]
            scored = dataclasses.replace(
                sample,
                scores={**sample.scores, "clip": round(score, 6)},
                provenance={**sample.provenance, "clip": provenance},
            )
            out.append((scored, embedding))
        return out

    def get_metrics_namespace(self) -> str:
        return "clip"


def _decoded(sample: Sample, max_pixels: int):
    from vlcurate.transforms.data.images import open_image
    from vlcurate.transforms.data.rejects import Reject

    if not sample.images:
        return None
    try:
        return open_image(sample.images[0].data, max_pixels)[0]
    except Reject:
        return None


class ScoreClip(beam.PTransform):
    """PCollection[Sample] -> PCollection[(Sample with scores.clip, embedding or None)]."""

    def __init__(self, config: ClipConfig):
        super().__init__()
        self._config = config

    def expand(self, samples):
        return samples | "RunInference" >> RunInference(OpenClipHandler(self._config))


class FilterClip(beam.PTransform):
    """Scored samples (staged records, or (sample, embedding) pairs) -> {"samples": those kept,
    "rejects": clip_below_threshold rows, and with a keep fraction "clip_cut": {group: cut}}.

    ``min_score`` drops samples under a fixed score; ``keep_fraction`` keeps the top fraction of
    the run (per category when asked), from quantiles computed over the run, unless ``cut`` gives
    the cut an earlier run of the dataset set: an extending run is judged by the same bar. Unscored
    samples (no text or no image) pass: there is nothing to judge them by.
    """

    def __init__(self, config: ClipConfig, cut: dict[str, float] | None = None):
        super().__init__()
        self._config = config
        self._cut = cut

    def expand(self, items):
        config = self._config
        result = {}
        if config.keep_fraction is None:
            cut = items.pipeline | "NoThresholds" >> beam.Create([{}])
        elif self._cut is not None:
            cut = items.pipeline | "RecordedCut" >> beam.Create([dict(self._cut)])
            result["clip_cut"] = cut
        else:
            group = _group_of(config.per_category)
            scored = items | "Scores" >> beam.FlatMap(
                lambda item: [(group(_sample(item)), _sample(item).scores["clip"])]
                if "clip" in _sample(item).scores else [])
            quantiles = scored | "Quantiles" >> beam.ApproximateQuantiles.PerKey(_QUANTILES)
            cut = (quantiles
                   | "Threshold" >> beam.Map(lambda kv: (kv[0], _threshold(kv[1], config.keep_fraction)))
                   | "Cut" >> beam.combiners.ToDict())
            result["clip_cut"] = cut
        judged = items | "Judge" >> beam.ParDo(_Judge(config), beam.pvalue.AsSingleton(cut)).with_outputs(
            "rejects", main="samples")
        return {**result, "samples": judged.samples, "rejects": judged.rejects}


def _sample(item):
    """The sample (or staged record) of a ``(sample, embedding)`` pair, or the item itself."""
    return item[0] if isinstance(item, tuple) else item


def _group_of(per_category: bool):
    return (lambda sample: sample.category) if per_category else (lambda sample: "")


def _threshold(quantiles: list[float], keep_fraction: float) -> float:
    """The least score kept: Beam's quantile q is the sample of rank ceil(q * n), so the one just
    above 1 - F leaves the top F (exactly, up to 1000 samples)."""
    index = min(len(quantiles) - 1, round((1 - keep_fraction) * (len(quantiles) - 1)) + 1)
    return quantiles[index] if keep_fraction < 1 else quantiles[0]


class _Judge(beam.DoFn):
    def __init__(self, config: ClipConfig):
        self._config = config
        self._group = _group_of(config.per_category)

    def process(self, item, thresholds):
        sample = _sample(item)
        score = sample.scores.get("clip")
        if score is not None:
            floor = self._config.min_score
            cut = thresholds.get(self._group(sample))
            if floor is not None and score < floor:
                detail = f"clip={score:.6f} below --clip-min-score {floor}"
                yield beam.pvalue.TaggedOutput("rejects", _reject(sample, detail, score, floor))
                return
            if cut is not None and score < cut:
                detail = f"clip={score:.6f} below {cut:.6f}, the run's top {self._config.keep_fraction:g}"
                yield beam.pvalue.TaggedOutput("rejects", _reject(sample, detail, score, cut))
                return
        yield item


def _reject(sample: Sample, detail: str, score: float, threshold: float) -> RejectRecord:
    """The row of a pair under the threshold: the score and the threshold it missed, as numbers."""
    return sample_reject(sample, "clip", "clip_below_threshold", detail, score, threshold)
