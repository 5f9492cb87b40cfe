"""Category mix: how a dataset's labels spread over the main categories, against a target mix."""

from __future__ import annotations

from vlcurate.taxonomy.tree import Taxonomy
from vlcurate.transforms.data.mix import parse_weights, shares
from vlcurate.transforms.data.review import REVIEW_LABEL as REVIEW



def parse_target_mix(spec: str, taxonomy: Taxonomy) -> dict[str, float]:
    """``recognition=3,conversion=1`` or a YAML/JSON file mapping main-category ids to weights ->
    shares that add up to 1."""
    weights = parse_weights(spec, "target mix")
    mains = {node.id for node in taxonomy.mains()}
    for name in weights:
        if name not in mains:
            raise ValueError(f"target mix names {name!r}, not a main category of taxonomy "
                             f"{taxonomy.version} ({', '.join(sorted(mains))})")
    return shares(weights, "target mix")


def main_counts(labels: dict[str, int], taxonomy: Taxonomy) -> dict[str, int]:
    """Leaf counts (a manifest's ``labels``) summed per main category, in taxonomy order."""
    counts = {node.id: 0 for node in taxonomy.mains()}
    for label, count in labels.items():
        if label != REVIEW:
            counts[taxonomy.main_of(taxonomy.resolve(label) or label).id] += count
    return counts


def mix_report(labels: dict[str, int], taxonomy: Taxonomy, target: dict[str, float] | None = None) -> str:
    """A table of labelled samples per main category, their share, and the target share."""
    counts = main_counts(labels, taxonomy)
    labelled = sum(counts.values())
    header = f"{'category':<24}{'samples':>8}{'share':>8}" + (f"{'target':>8}{'diff':>8}" if target else "")
    lines = [header]
    for node in taxonomy.mains():
        share = counts[node.id] / labelled if labelled else 0.0
        line = f"{node.id:<24}{counts[node.id]:>8}{share:>8.1%}"
        if target:
            wanted = target.get(node.id, 0.0)
            line += f"{wanted:>8.1%}{(share - wanted) * 100:>+7.1f}p"
        lines.append(line)
    lines.append(f"{'labelled':<24}{labelled:>8}")
    lines.append(f"{'to review':<24}{labels.get(REVIEW, 0):>8}")
    return "\n".join(lines)
