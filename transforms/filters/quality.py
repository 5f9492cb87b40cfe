"""The quality stages every pipeline can end with: CLIP scoring and filtering, and deduplication.

They come in two halves around the staging of samples (io/staging.py). ``annotate`` runs while a
sample's pixels are at hand: CLIP scores it (and keeps its image embedding), and dedup computes
what it compares (image hashes, pHash of picture crops). The sample is then staged, and ``judge``
decides on the small records alone: exact copies first, then CLIP's threshold or keep fraction,
then near copies. The dropped ones join the rejects as filtered rows (duplicate_exact,
clip_below_threshold, duplicate_near), so the totals still balance.
"""

from __future__ import annotations

import apache_beam as beam

from vlcurate.transforms.filters.clip_config import ClipConfig

DEDUP_KINDS = ("exact", "near")


class Quality:
    def __init__(self, clip: ClipConfig, dedup: tuple[str, ...] = (), max_image_pixels: int = 40_000_000,
                 clip_sources: frozenset[str] | None = None, clip_cut: dict[str, float] | None = None):
        """``clip_sources``: the recipe sources whose samples are scored (None: every sample; see
        ``scores``). ``clip_cut``: the keep fraction's cut an earlier run of the dataset recorded
        (per group): an extending run judges by it, never lowering the bar."""
        unknown = sorted(set(dedup) - set(DEDUP_KINDS))
        if unknown:
            raise ValueError(f"--dedup takes {', '.join(DEDUP_KINDS)}, not {', '.join(unknown)}")
        self.clip = clip
        self.dedup = tuple(kind for kind in DEDUP_KINDS if kind in dedup)
        self._max_image_pixels = max_image_pixels
        self._clip_sources = clip_sources
        self._clip_cut = clip_cut

    def scores(self, source: str | None) -> bool:
        """Whether CLIP scores the samples of recipe source ``source``."""
        return self.clip.enabled and (self._clip_sources is None or source in self._clip_sources)

    def extending(self, clip_cut: dict[str, float] | None) -> "Quality":
        """This quality, judging CLIP by the cut an earlier run of the dataset recorded (if any)."""
        self._clip_cut = clip_cut
        return self

    def annotate(self, clip: bool = True) -> beam.PTransform:
        """samples -> (sample, extras) pairs: CLIP scores in the samples (where ``clip``: a recipe
        scores only the sources that ask), dedup's evidence in extras."""
        return _Annotate(self, clip)

    def judge(self) -> beam.PTransform:
        """outputs with staged records -> the kept records, the dropped ones as rejects (and the
        CLIP cut a keep fraction set, as the fact ``clip_cut``)."""
        return _Judge(self)

    def near(self):
        from vlcurate.transforms.filters.dedup import NearDuplicates

        return NearDuplicates(max_pixels=self._max_image_pixels)


class _Annotate(beam.PTransform):
    def __init__(self, quality: Quality, clip: bool):
        super().__init__()
        self._quality = quality
        self._clip = clip

    def expand(self, samples):
        quality = self._quality
        if quality.clip.enabled and self._clip:
            from vlcurate.transforms.filters.clip import ScoreClip  # Beam's RunInference: slow to import

            pairs = samples | "ScoreClip" >> ScoreClip(quality.clip)
        else:
            pairs = samples | "NoEmbeddings" >> beam.Map(lambda sample: (sample, None))
        if not quality.dedup:
            return pairs | "NoEvidence" >> beam.Map(lambda pair: (pair[0], {}))
        from vlcurate.transforms.filters.dedup import evidence

        near = quality.near() if "near" in quality.dedup else None
        return pairs | "DedupEvidence" >> beam.Map(lambda pair: (pair[0], evidence(pair[0], pair[1], near)))


class _Judge(beam.PTransform):
    def __init__(self, quality: Quality):
        super().__init__()
        self._quality = quality

    def expand(self, outputs):
        quality = self._quality
        records, rejects = outputs["records"], [outputs["rejects"]]
        facts = {}
        if "exact" in quality.dedup:
            from vlcurate.transforms.filters.dedup import ExactDuplicates

            exact = records | "ExactDuplicates" >> ExactDuplicates()
            records = exact["samples"]
            rejects.append(exact["rejects"])
        if quality.clip.enabled:
            from vlcurate.transforms.filters.clip import FilterClip

            kept = records | "FilterClip" >> FilterClip(quality.clip, quality._clip_cut)
            records = kept["samples"]
            rejects.append(kept["rejects"])
            if "clip_cut" in kept:
                facts["clip_cut"] = kept["clip_cut"]
        if "near" in quality.dedup:
            near = records | "NearDuplicates" >> quality.near()
            records = near["samples"]
            rejects.append(near["rejects"])
        return {**outputs, **facts, "records": records,
                "rejects": tuple(rejects) | "QualityRejects" >> beam.Flatten()}
