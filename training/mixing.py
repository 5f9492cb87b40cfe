"""How batches are mixed: the modality warm-up schedule and the per-route weights.

Every batch is all language or all multimodal (DeepSeek-VL's modality-group batches). Which
one a step gets is a quota, not a coin flip: step s is a language step when the running sum of
the scheduled share crosses an integer there. The share seen over any window then stays within
one batch of the schedule, it depends on the step (and a seed-chosen phase) only, and every
rank agrees on it without talking. Within a multimodal batch each sample's route is drawn by
weight from a generator seeded with (seed, step, rank).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import random

import numpy as np

from vlcurate.training.sources import LANGUAGE
from vlcurate.transforms.data.mix import parse_weights


@dataclasses.dataclass(frozen=True)
class ModalitySchedule:
    """The language share: 1.0 at step 0, then ``target`` after ``warmup_steps`` (linear or cosine)."""

    target: float = 0.7
    warmup_steps: int = 0
    shape: str = "linear"

    def __post_init__(self):
        if not 0.0 <= self.target <= 1.0 or self.shape not in ("linear", "cosine") or self.warmup_steps < 0:
            raise ValueError(f"bad modality schedule {self}")

    def share(self, step: int) -> float:
        if step >= self.warmup_steps:
            return self.target
        t = step / self.warmup_steps
        if self.shape == "linear":
            return 1.0 + (self.target - 1.0) * t
        return self.target + (1.0 - self.target) * 0.5 * (1.0 + math.cos(math.pi * t))

    def cumulative(self, step: int) -> float:
        """Sum of the share over steps 0 .. step-1."""
        warm = _warm_sums(self)
        return float(warm[min(step, self.warmup_steps)]) + max(0, step - self.warmup_steps) * self.target


@functools.lru_cache(maxsize=8)
def _warm_sums(schedule: ModalitySchedule) -> np.ndarray:
    """Running sums of the share over the warm-up steps, computed once per schedule."""
    shares = [schedule.share(t) for t in range(schedule.warmup_steps)]
    return np.concatenate([[0.0], np.cumsum(shares)])


class Mixer:
    """Decides, per step, the modality and each sample's route; same answer on every run."""

    def __init__(self, schedule: ModalitySchedule, weights: dict[str, float], seed: int):
        self.schedule = schedule
        self.weights = {route: float(w) for route, w in weights.items() if w > 0}
        self.seed = seed
        self.phase = random.Random(f"modality:{seed}").random()

    def is_language(self, step: int) -> bool:
        before = self.schedule.cumulative(step) + self.phase
        return math.floor(before + self.schedule.share(step)) > math.floor(before)

    def routes(self, step: int, rank: int, count: int, available) -> list[str]:
        """Routes for the samples of a multimodal batch, drawn by weight among ``available``."""
        names = sorted(route for route in self.weights if route in available and route != LANGUAGE)
        if not names:
            return []
        p = np.array([self.weights[name] for name in names])
        rng = np.random.default_rng([self.seed, step, rank])
        return [names[i] for i in rng.choice(len(names), size=count, p=p / p.sum())]


def parse_mix(text: str | None) -> dict[str, float]:
    """'document_ocr=2,web_code=1,text_only=7' -> {route: weight} (the one weights syntax)."""
    return parse_weights(text, "--mix")


def language_target(weights: dict[str, float], explicit: float | None, default: float = 0.7) -> float:
    """The language share to warm up to: given, else text_only's share of the mix weights (so
    ``document_ocr: 2, web_code: 1, text_only: 7`` means 0.7), else the default."""
    if explicit is not None:
        return explicit
    if LANGUAGE in weights and sum(weights.values()) > 0:
        return weights[LANGUAGE] / sum(weights.values())
    return default
