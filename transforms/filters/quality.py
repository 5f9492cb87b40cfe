"""The quality stages every pipeline can end with: CLIP scoring and filtering, then deduplication.

``Quality`` takes a pipeline's outputs ({"samples", "rejects", "inputs", ...}) and gives them back
with the samples deduplicated exactly, scored and filtered, then deduplicated by near copies; the
dropped ones join the rejects as filtered rows (duplicate_exact, clip_below_threshold,
duplicate_near), so the totals still balance.
"""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.filters.clip_config import ClipConfig

DEDUP_KINDS = ("exact", "near")


class Quality(beam.PTransform):
    def __init__(self, clip: ClipConfig, dedup: tuple[str, ...] = (), max_image_pixels: int = 40_000_000,
                 clip_sources: frozenset[str] | None = None):
        """``clip_sources``: only samples of these recipe sources (provenance ``recipe_source``)
        are scored; None scores every sample."""
        super().__init__()
        unknown = sorted(set(dedup) - set(DEDUP_KINDS))
        if unknown:
            raise ValueError(f"--dedup takes {', '.join(DEDUP_KINDS)}, not {', '.join(unknown)}")
        self._clip = clip
        self._dedup = tuple(kind for kind in DEDUP_KINDS if kind in dedup)
        self._max_image_pixels = max_image_pixels
        self._clip_sources = clip_sources

    def expand(self, outputs):
        # Exact copies go first: each costs a CLIP pass otherwise.
        samples, rejects = outputs["samples"], [outputs["rejects"]]
        if "exact" in self._dedup:
            from vlcurate.transforms.filters.dedup import ExactDuplicates

            exact = samples | "ExactDuplicates" >> ExactDuplicates()
            samples = exact["samples"]
            rejects.append(exact["rejects"])
        if self._clip.enabled:
            from vlcurate.transforms.filters.clip import FilterClip, ScoreClip  # Beam's RunInference: slow to import

            unscored = None
            if self._clip_sources is not None:
                chosen = self._clip_sources
                samples, unscored = samples | "ClipOrNot" >> beam.Partition(
                    lambda sample, _: 0 if sample.provenance.get("recipe_source") in chosen else 1, 2)
            kept = samples | "ScoreClip" >> ScoreClip(self._clip) | "FilterClip" >> FilterClip(self._clip)
            pairs = kept["samples"]
            rejects.append(kept["rejects"])
            if unscored is not None:
                pairs = (pairs, unscored | "NotScored" >> beam.Map(lambda sample: (sample, None))) | "WithUnscored" >> beam.Flatten()
        else:
            pairs = samples | "NoEmbeddings" >> beam.Map(lambda sample: (sample, None))
        if "near" in self._dedup:
            from vlcurate.transforms.filters.dedup import NearDuplicates

            near = pairs | "NearDuplicates" >> NearDuplicates(max_pixels=self._max_image_pixels)
            samples = near["samples"]
            rejects.append(near["rejects"])
        else:
            samples = pairs | "Unpair" >> beam.Map(lambda pair: pair[0])
        return {**outputs, "samples": samples, "rejects": tuple(rejects) | "QualityRejects" >> beam.Flatten()}
