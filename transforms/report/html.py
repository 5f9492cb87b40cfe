"""The dataset report's sections as HTML: one function per section, every dataset string escaped.

Each section function takes plain values (the manifest, lists of numbers, samples) and returns an
HTML fragment; ``document`` wraps them in a page with no scripts and no external URLs. Categories
and reasons link to their samples and examples inside the page (``Link``: a fragment, never a URL).
"""

from __future__ import annotations

import dataclasses
import json

from vlcurate.transforms.report import plots as plots
from vlcurate.transforms.data.rejects import REJECTED, reject_kind
from vlcurate.transforms.data.review import REVIEW_LABEL as REVIEW
from vlcurate.transforms.report.build import TOP_LEAVES, escape, excerpt, median, svg_uri, thumbnail
from vlcurate.transforms.runtime.funnel import annotation

NOT_RECORDED = "not recorded"
# No scripts, no fetches: images only from data: URIs, styles only from the page itself.
_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: .8em 0; } figure img { max-width: 100%; height: auto; }
figcaption { font-size: .85em; color: #555; }
.missing { color: #777; font-style: italic; }
.bad { color: #b00; font-weight: bold; } .good { color: #070; }
.sheet { display: grid; grid-template-columns: repeat(auto-fill, minmax(260px, 1fr)); gap: .8em; }
.card { border: 1px solid #ddd; border-radius: 4px; padding: .5em; font-size: .8em; overflow-wrap: anywhere; }
.card img { display: block; max-width: 256px; max-height: 256px; margin-bottom: .4em; }
.card .key { font-family: monospace; } .card .text { white-space: pre-wrap; margin-top: .3em; }
pre { background: #f6f6f6; padding: .6em; overflow: auto; font-size: .8em; max-height: 30em; }
"""


def document(title: str, sections: list[str]) -> str:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        f"<meta http-equiv=\"Content-Security-Policy\" content=\"{_POLICY}\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(title)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(sections) + "\n</body>\n</html>\n"
    )


def section(anchor: str, title: str, *parts: str) -> str:
    return f"<section id=\"{anchor}\">\n<h2>{escape(title)}</h2>\n" + "\n".join(parts) + "\n</section>"


def missing(what: str) -> str:
    return f"<p class=\"missing\">{escape(what)}: {NOT_RECORDED}.</p>"


@dataclasses.dataclass(frozen=True)
class Link:
    """A table cell that links to an anchor of this page."""

    text: str
    anchor: str

    def html(self) -> str:
        return f"<a href=\"#{escape(self.anchor)}\">{escape(self.text)}</a>"


def anchor_of(prefix: str, name) -> str:
    """The page anchor of a category's samples or a reason's examples: ``samples-document_ocr``."""
    return prefix + "-" + "".join(c if c.isalnum() or c in "-_" else "-" for c in str(name))


def _cell(value) -> str:
    return value.html() if isinstance(value, Link) else escape(value)


def table(headers: list[str], rows: list[list], numeric: set[int] = frozenset(), anchor: str = "") -> str:
    """A table; columns whose index is in ``numeric`` align right. Cells are escaped (a ``Link`` too)."""
    head = "".join(f"<th{' class=n' if i in numeric else ''}>{escape(h)}</th>" for i, h in enumerate(headers))
    body = "".join(
        "<tr>" + "".join(f"<td{' class=n' if i in numeric else ''}>{_cell(c)}</td>" for i, c in enumerate(row)) + "</tr>"
        for row in rows
    )
    ident = f" id=\"{anchor}\"" if anchor else ""
    thead = f"<thead><tr>{head}</tr></thead>" if any(headers) else ""
    return f"<table{ident}>{thead}<tbody>{body}</tbody></table>"


def figure(anchor: str, svg: bytes, caption: str) -> str:
    return (f"<figure id=\"{anchor}\"><img alt=\"{escape(caption)}\" src=\"{svg_uri(svg)}\">"
            f"<figcaption>{escape(caption)}</figcaption></figure>")


def share(part: float, whole: float) -> str:
    return f"{part / whole:.1%}" if whole else "-"


# --- sections ----------------------------------------------------------------------------------


def summary(dataset: str, manifest: dict) -> str:
    totals = manifest.get("totals") or {}
    inputs, samples = totals.get("inputs"), totals.get("samples")
    rejected, filtered = totals.get("rejected"), totals.get("filtered")
    balanced = totals.get("balanced")
    verdict = ("<span class=\"good\">balanced</span>" if balanced
               else "<span class=\"bad\">NOT balanced</span>" if balanced is not None else NOT_RECORDED)
    shards = manifest.get("shards") or []
    facts = [
        ["pipeline", manifest.get("pipeline") or NOT_RECORDED],
        ["created", manifest.get("created") or NOT_RECORDED],
        ["schema", manifest.get("schema") or NOT_RECORDED],
        ["shards", f"{len(shards)} ({sum(s.get('bytes', 0) for s in shards):,} bytes)"],
        ["text sources", ", ".join(f"{k or '(none)'}: {v}" for k, v in (manifest.get("text_sources") or {}).items())
         or NOT_RECORDED],
    ]
    equation = (f"<p id=\"balance\">inputs = samples + rejected + filtered: {inputs} = {samples} + {rejected} + "
                f"{filtered} &mdash; {verdict}</p>")
    details = (
        "<details><summary>config, models and versions</summary><pre>"
        + escape(json.dumps({k: manifest.get(k) for k in ("config", "models", "versions", "counts")},
                            indent=2, sort_keys=True, default=str))
        + "</pre></details>"
    )
    return (f"<header id=\"summary\"><h1>Dataset report: {escape(dataset)}</h1>\n"
            + table(["", ""], facts) + "\n"
            + table(["inputs", "samples", "rejected", "filtered"], [[inputs, samples, rejected, filtered]],
                    {0, 1, 2, 3}, anchor="totals")
            + "\n" + equation + "\n" + details + "\n</header>")


def funnel(manifest: dict) -> str:
    totals = manifest.get("totals") or {}
    inputs = totals.get("inputs") or 0
    by_stage = (manifest.get("rejects") or {}).get("by_stage") or {}
    rows = [[stage, Link(reason, anchor_of("examples", reason)), reject_kind(reason), count, share(count, inputs)]
            for stage, reasons in by_stage.items() for reason, count in sorted(reasons.items())]
    parts = [table(["stage", "reason", "kind", "count", "of inputs"], rows, {3, 4}, anchor="funnel-reasons")
             if rows else "<p>No input was rejected or filtered.</p>"]
    labels = ["inputs"] + [f"{r[0]}: {r[1].text}" for r in rows] + ["samples"]
    values = [inputs] + [r[3] for r in rows] + [totals.get("samples") or 0]
    colours = ([plots.COLOURS[0]] + [plots.COLOURS[3] if r[2] == REJECTED else plots.COLOURS[1] for r in rows]
               + [plots.COLOURS[2]])
    parts.append(figure("fig-funnel", plots.bar_chart(labels, values, "inputs, drops by stage and reason, samples",
                                                      "count", colours),
                        "Inputs, what each stage dropped and why (red: rejected, orange: filtered), samples"))
    recorded = manifest.get("funnel")
    steps = [step for step in recorded if isinstance(step, dict)] if isinstance(recorded, list) else []
    if steps:
        # In the order the stages ran. A stage's out may exceed its in (a file becomes many
        # records): in - out is not always a drop; an annotating stage (labels) drops nothing.
        parts.append(table(["stage", "in", "out", "in - out"], [_step(s, manifest) for s in steps],
                           {1, 2, 3}, anchor="funnel-stages"))
        names = [str(s.get("stage")) for s in steps]
        parts.append(figure("fig-funnel-stages",
                            plots.paired_bars(names, [s.get("in") or 0 for s in steps], [s.get("out") or 0 for s in steps],
                                              ("in", "out"), "elements in and out per stage", "elements"),
                            "Elements in and out of each stage"))
    else:
        parts.append(missing("Per-stage in/out counts"))
    return section("funnel", "Funnel", *parts)


def _minus(a, b):
    return a - b if isinstance(a, int) and isinstance(b, int) else "-"


def _step(step: dict, manifest: dict) -> list:
    annotated = annotation(str(step.get("stage")), manifest)
    if annotated:
        return [step.get("stage"), step.get("in"), f"{step.get('in')} {annotated}", "-"]
    return [step.get("stage"), step.get("in"), step.get("out"), _minus(step.get("in"), step.get("out"))]


def clip(kept: list, rejected: list, lines: list) -> str:
    if not kept and not rejected:
        return section("clip", "CLIP scores", missing("CLIP scores"))
    stats = table(["", "samples", "median", "min", "max"],
                  [[name, len(vs), median(vs), f"{min(vs):.4g}" if vs else "-", f"{max(vs):.4g}" if vs else "-"]
                   for name, vs in (("kept", kept), ("rejected", rejected))], {1, 2, 3, 4})
    thresholds = ", ".join(name for _, name in lines) or f"threshold {NOT_RECORDED}"
    svg = plots.histogram({"kept": kept, "rejected": rejected}, "CLIP image-text score", "score", lines=lines)
    return section("clip", "CLIP scores", stats, f"<p>{escape(thresholds)}</p>",
                   figure("fig-clip", svg, "CLIP scores of kept and rejected samples, with the threshold"))


def mix(manifest: dict, target: dict | None) -> str:
    from vlcurate.transforms.data.sample import CATEGORIES

    categories = manifest.get("categories") or {}
    parts = [_mix_table(categories, target if target and set(target) <= CATEGORIES else None, "mix-categories")]
    if target and set(target) <= CATEGORIES:
        parts.append(_mix_figure(categories, target, "fig-mix", "Category shares against the target"))
    elif target:
        mains = main_counts(manifest.get("labels") or {})
        parts.append("<p>The target mix is over taxonomy main categories (labelled samples only):</p>")
        parts.append(_mix_table(mains, target, "mix-target"))
        parts.append(_mix_figure(mains, target, "fig-mix", "Taxonomy main-category shares against the target"))
    else:
        parts.append(missing("Target mix"))
    if categories:
        names = sorted(categories)
        parts.append(figure("fig-categories", plots.bar_chart(names, [categories[n] for n in names],
                                                              "samples per category", "samples"),
                            "Samples per category"))
    return section("mix", "Category mix", *parts)


def _mix_table(counts: dict, target: dict | None, anchor: str) -> str:
    total = sum(counts.values())
    names = sorted(set(counts) | set(target or {}))
    rows = []
    for name in names:
        row = [Link(name, anchor_of("samples", name)) if counts.get(name) else name, counts.get(name, 0),
               share(counts.get(name, 0), total)]
        if target:
            wanted = float(target.get(name, 0.0))
            actual = counts.get(name, 0) / total if total else 0.0
            row += [f"{wanted:.1%}", f"{(actual - wanted) * 100:+.1f} points"]
        rows.append(row)
    headers = ["category", "samples", "share"] + (["target", "difference"] if target else [])
    return table(headers, rows, {1, 2, 3, 4}, anchor=anchor)


def _mix_figure(counts: dict, target: dict, anchor: str, caption: str) -> str:
    total = sum(counts.values())
    names = sorted(set(counts) | set(target))
    actual = [counts.get(n, 0) / total if total else 0.0 for n in names]
    wanted = [float(target.get(n, 0.0)) for n in names]
    return figure(anchor, plots.paired_bars(names, actual, wanted, ("dataset", "target"), caption, "share"), caption)


def main_counts(labels: dict) -> dict:
    """Leaf counts summed per main category: the first segment of the leaf id."""
    mains: dict[str, int] = {}
    for leaf, count in labels.items():
        if leaf != REVIEW:
            main = str(leaf).split("/", 1)[0]
            mains[main] = mains.get(main, 0) + count
    return dict(sorted(mains.items()))


def labels(manifest: dict) -> str:
    leaves = manifest.get("labels") or {}
    if not leaves:
        return section("labels", "Taxonomy labels", missing("Taxonomy labels"))
    mains = main_counts(leaves)
    review = leaves.get(REVIEW, 0)
    labelled = sum(mains.values())
    main_rows = [[name, count, share(count, labelled)] for name, count in mains.items()]
    main_rows.append([REVIEW, review, share(review, labelled + review)])
    top = sorted(((count, leaf) for leaf, count in leaves.items() if leaf != REVIEW), key=lambda x: (-x[0], x[1]))
    leaf_rows = [[leaf, count] for count, leaf in top[:TOP_LEAVES]]
    names = list(mains) + [REVIEW]
    svg = plots.bar_chart(names, [mains.get(n, review if n == REVIEW else 0) for n in names],
                          "labelled samples per main category", "samples")
    return section("labels", "Taxonomy labels",
                   f"<p>{labelled} labelled, {review} for review (below the labeler's confidence).</p>",
                   table(["main category", "samples", "share"], main_rows, {1, 2}, anchor="labels-main"),
                   figure("fig-labels", svg, "Labelled samples per taxonomy main category"),
                   f"<h3>Top {min(TOP_LEAVES, len(leaf_rows))} leaves</h3>",
                   table(["leaf", "samples"], leaf_rows, {1}, anchor="labels-leaves"))


def ocr(confidences: list) -> str:
    if not confidences:
        return section("ocr", "OCR confidence", missing("OCR confidences"))
    low = sum(1 for c in confidences if c < 0.5)
    stats = table(["samples", "median", "min", "below 0.5"],
                  [[len(confidences), median(confidences), f"{min(confidences):.4g}", low]], {0, 1, 2, 3})
    svg = plots.histogram({"samples": confidences}, "OCR confidence (scores.ocr_confidence)", "confidence")
    return section("ocr", "OCR confidence", stats, figure("fig-ocr", svg, "OCR confidence per sample"))


def sizes(facts) -> str:
    if not facts.widths:
        return section("sizes", "Page and image sizes", missing("Image sizes (no sample has an image)"))
    stats = table(["samples with images", "median width", "median height", "median bytes"],
                  [[len(facts.widths), median(facts.widths), median(facts.heights), median(facts.image_bytes)]],
                  {0, 1, 2, 3})
    svg = plots.size_plots(facts.widths, facts.heights, facts.image_bytes or [0])
    return section("sizes", "Page and image sizes", stats,
                   figure("fig-sizes", svg, "Image width x height and image bytes per sample"))


def sources(facts, reject_rows: list[list]) -> str:
    """Samples per source (the index's ``source``), and reject rows per source (the rejects'
    ``source``: a recipe source's name, or the command's pipeline)."""
    total = sum(facts.sources.values())
    parts = [table(["source", "samples", "share"], [[name or "(none)", count, share(count, total)]
                                                    for name, count in sorted(facts.sources.items(), key=str)],
                   {1, 2}, anchor="sources-samples") if facts.sources else missing("Samples per source")]
    if reject_rows:
        parts.append("<p>Rejected and filtered rows per source (a recipe's sources by name):</p>")
        parts.append(table(["source", "rejected", "filtered"], reject_rows, {1, 2}, anchor="sources-rejects"))
    return section("sources", "Sources", *parts)


def languages(facts) -> str:
    """Samples per language (the index's ``language``; null: language id did not run)."""
    counts = {name: count for name, count in facts.languages.items() if name is not None}
    if not counts:
        return section("languages", "Languages", missing("Languages (language id did not run)"))
    total = sum(facts.languages.values())
    rows = [[name, count, share(count, total)] for name, count in sorted(counts.items(), key=lambda x: (-x[1], x[0]))]
    if facts.languages.get(None):
        rows.append(["(not identified)", facts.languages[None], share(facts.languages[None], total)])
    return section("languages", "Languages", table(["language", "samples", "share"], rows, {1, 2},
                                                   anchor="languages-table"))


def throughput(manifest: dict) -> str:
    recorded = manifest.get("throughput")
    if not isinstance(recorded, dict) or not recorded:
        return section("throughput", "Throughput", missing("Throughput"))
    ran = [step.get("stage") for step in manifest.get("funnel") or [] if isinstance(step, dict)]
    order = [stage for stage in ran if stage in recorded] + sorted(set(recorded) - set(ran))  # as they ran
    rows = []
    for stage in order:
        entry = recorded[stage]
        entry = entry if isinstance(entry, dict) else {}
        elements, seconds = entry.get("elements"), entry.get("seconds")
        rate = entry.get("per_second")
        if not isinstance(rate, (int, float)) and isinstance(elements, (int, float)) and seconds:
            rate = elements / seconds
        mean = entry.get("mean_element_s")
        rows.append([stage, elements if elements is not None else "-",
                     f"{seconds:,.4g}" if isinstance(seconds, (int, float)) else "-",
                     f"{rate:,.2f}" if isinstance(rate, (int, float)) else "-",
                     f"{mean:.4g}" if isinstance(mean, (int, float)) else "-"])
    return section("throughput", "Throughput",
                   "<p>Seconds run from a stage's first element to its last, all workers together.</p>",
                   table(["stage", "elements", "seconds", "elements/s", "mean s/element"], rows, {1, 2, 3, 4},
                         anchor="throughput-table"))


def contact_sheet(sheet: dict, per_category: int) -> str:
    if not sheet:
        return section("samples", "Samples", missing("Samples"))
    parts = [f"<p>Up to {per_category} samples per category: a seeded random sample, the same every time.</p>"]
    for category, samples in sheet.items():
        cards = "\n".join(_card(sample) for sample in samples)
        parts.append(f"<h3 id=\"{escape(anchor_of('samples', category))}\">{escape(category)} ({len(samples)})</h3>\n"
                     f"<div class=\"sheet\" data-category=\"{escape(category)}\">\n{cards}\n</div>")
    return section("samples", "Samples", *parts)


def _card(sample) -> str:
    picture = ""
    if sample.images:
        first = sample.images[0]
        uri = thumbnail(first.data)
        more = f" (+{len(sample.images) - 1} more)" if len(sample.images) > 1 else ""
        facts = f"{first.width}x{first.height} {first.format}{more}"
        picture = (f"<img class=\"thumb\" alt=\"{escape(sample.key)}\" src=\"{uri}\">" if uri
                   else "<p class=\"bad\">image does not decode</p>") + f"<div>{escape(facts)}</div>"
    where = sample.uri + (f" #{sample.locator}" if sample.locator else "")
    return (f"<div class=\"card\">{picture}<div class=\"key\">{escape(sample.key)}</div>"
            f"<div class=\"uri\">{escape(where)}</div><div class=\"text\">{escape(excerpt(sample))}</div></div>")
