"""Weights by name, in one syntax everywhere: a report's target mix, the labeler's target mix over
main categories, and the trainer's route weights.

``NAME=WEIGHT,NAME=WEIGHT`` (spaces allowed around either), or the path of a YAML file mapping
names to weights. Weights are non-negative numbers; names appear once.
"""

from __future__ import annotations

import os

import yaml


def parse_weights(spec: str | None, what: str = "mix") -> dict[str, float]:
    """``spec`` -> {name: weight}, in the order given; ``what`` names the flag in errors."""
    if spec and os.path.isfile(spec):
        try:
            with open(spec, encoding="utf-8") as handle:
                raw = yaml.safe_load(handle)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:  # a usage mistake like any other
            mark = getattr(error, "problem_mark", None)
            why = f"YAML syntax at line {mark.line + 1}: {error.problem}" if mark else str(error).splitlines()[0]
            raise ValueError(f"{what}: cannot read {spec}: {why}") from None
        if not isinstance(raw, dict):
            raise ValueError(f"{what}: {spec} must map names to weights")
        items = list(raw.items())
    else:
        items = []
        for part in filter(None, (item.strip() for item in (spec or "").split(","))):
            name, equals, value = part.partition("=")
            if not equals or not name.strip():
                raise ValueError(f"{what}: {part!r} is not NAME=WEIGHT (e.g. document_ocr=2,text_only=7)")
            items.append((name.strip(), value.strip()))
    weights: dict[str, float] = {}
    for name, value in items:
        name = str(name)
        if name in weights:
            raise ValueError(f"{what}: {name!r} is given twice")
        try:
            weight = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what}: the weight of {name!r} is not a number: {value!r}") from None
        if not weight >= 0:  # also refuses NaN
            raise ValueError(f"{what}: the weight of {name!r} is negative")
        weights[name] = weight
    return weights


def shares(weights: dict[str, float], what: str = "mix") -> dict[str, float]:
    """Weights scaled to add up to 1."""
    total = sum(weights.values())
    if total <= 0:
        raise ValueError(f"{what}: needs a positive weight")
    return {name: weight / total for name, weight in weights.items()}
