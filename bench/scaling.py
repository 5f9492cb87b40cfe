"""Cost model: a Dataflow run of 100M PDF pages + 10M web screenshots + 10M OCR images, before and
after sample bytes moved off Beam's PCollections into a staging area; and the largest run the
local default (one 24 GB machine) holds.

    .venv/bin/python bench/scaling.py [--bench pdf_pages.json web.json ocr.json clip.json charts.json]
        [--rates rates.json] [--memory memory.json] [--memory-before memory-old.json] [--dataset DATASET ...]
        [--workload pdf=100M,web=10M,ocr=10M] [--vcpu-hour 0.056] [--gb-hour 0.003557]
        [--shuffle-gb 0.011] [--storage-gb-month 0.020] [--json out.json]

Nothing here runs a pipeline: it reads what the benchmarks measured and multiplies.

- Rates, in elements per vCPU-hour: the defaults (RATES) were measured on a 2-vCPU machine with
  the commands in docs/scaling.md; `--bench FILE...` takes them from the JSON of
  bench/pdf_pages.py, web.py, ocr.py, clip.py and charts.py (each recognised by its content: the
  CLI run (a) with its one-element run's fixed cost taken out, see steady(), or whole with
  --end-to-end; over the benchmark's vCPUs), `--rates FILE` from a JSON object
  {"pdf": pages, "web": screenshots, "ocr": images, "charts": pages, "clip": pairs} per vCPU-hour
  (--rates overrides --bench).
- Bytes per sample (the image, the text and the JSON, as a shard holds them): SAMPLE_KB by default
  (measured on the benchmarks' outputs), or the mean `sample_bytes` per category of the index of
  each --dataset folder (document_ocr -> pdf, web_code -> web, scene_ocr -> ocr), or --sample-kb.
- BEFORE: every sample's bytes cross each shuffle that carries samples (--shuffles: with
  `dedup: [exact, near]`, the exact join, the near join and the sink's GroupBuckets); the shards
  are written once. AFTER: a record of --record-kb per sample crosses those shuffles instead;
  the bytes are written once to staging (on Cloud Storage one object per sample, written through a
  temporary name and a rename, and a done record per 64 inputs: --staging-class-a object writes a
  sample) and read back once by the shard writer
  (--staging-class-b), then written once to the shards.
- Workers: machines of --worker-vcpus / --worker-memory-gb / --worker-disk-gb, as many as finish
  the work in --target-hours (at most --max-workers); every source priced as a job of its own,
  the total as one job (a recipe) of all of them.
- Local: the largest PDF run one machine of --local-memory-gb holds, from the peak RSS of the
  process tree growing linearly with the pages: before, --before-mb-per-page over --before-base-mb
  (or the JSON of bench/memory.py run on the old tree, --memory-before); after, the JSON of
  bench/memory.py (--memory), its smallest and largest --pages runs (and its recipe runs).
"""

from __future__ import annotations

import argparse
import glob
import json
import math
import sys
from pathlib import Path

# Elements per vCPU-hour of each command through the CLI (the benchmark's (a) run, steady: see steady()),
# measured on this project's 2-vCPU machine (docs/scaling.md has the commands and the raw figures).
RATES = {"pdf": 54_850, "web": 2_990, "ocr": 3_250, "charts": 8_310, "clip": 16_010}
# Bytes a sample holds in a shard (tar members: image, text, JSON, headers), in KB (1000 bytes).
SAMPLE_KB = {"pdf": 160.6, "web": 170.8, "ocr": 68.3, "charts": 215.2}
CATEGORY_SOURCE = {"document_ocr": "pdf", "web_code": "web", "scene_ocr": "ocr", "table_chart": "charts"}
SOURCE_NAMES = {"pdf": "PDF pages", "web": "web screenshots", "ocr": "OCR images", "charts": "chart pages"}
CLIP_SOURCES = ("pdf", "web", "ocr", "charts")  # image-text kinds: CLIP-scored by default in a recipe
HOURS_PER_MONTH = 730
BENCH_CORES = 2  # for benchmark JSONs written before clip.py and charts.py recorded their cores


# --------------------------------------------------------------------------- inputs


def count(text: str) -> float:
    """'100M' -> 1e8 (K, M, B suffixes)."""
    text = text.strip().upper()
    scale = {"K": 1e3, "M": 1e6, "B": 1e9}.get(text[-1:], 1)
    return float(text[:-1] if scale != 1 else text) * scale


def pairs(text: str, value=float) -> dict[str, float]:
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, number = part.partition("=")
        if not number:
            raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {part!r}")
        out[name.strip()] = value(number)
    return out


def steady(n: int, a: float, a0: float | None, raw: float | None) -> tuple[float, str]:
    """Elements/s once running: n / (a - a0), the one-element run's fixed cost taken out, but never
    above the raw loop's n / raw or the whole run's n / a, whichever is higher (on a small
    benchmark a0 is noisy); n / a if there is no a0."""
    if a0 is None or a <= a0:
        return n / a, f"{n} in {a:.1f}s end to end"
    rate, how = n / (a - a0), f"{n} in {a:.1f}s - {a0:.1f}s fixed cost"
    cap = max(n / raw, n / a) if raw else None
    if cap and rate > cap:
        return cap, f"{n} in {a:.1f}s; steady {rate:.1f}/s capped at {cap:.2f}/s (raw loop or end to end)"
    return rate, how


def rate_from_bench(path: Path, ocr_images: int, bench_cores: int, end_to_end: bool) -> tuple[str, float, str]:
    """(source, elements per vCPU-hour, how) from one benchmark's --json output: the CLI run (a),
    steady (its fixed cost out, see steady()) unless end_to_end, over the benchmark's vCPUs."""
    doc = json.loads(path.read_text())
    cores = doc.get("cores") or bench_cores
    results = doc.get("results", {})
    secs = {k: v["seconds"] for k, v in results.items()} if results else doc.get("seconds", {})
    if "(a) beam, default local" in results:  # bench/pdf_pages.py
        source, n, a, a0, raw = "pdf", doc["pages"], *(secs.get(k) for k in (
            "(a) beam, default local", "(a0) beam, 1-page corpus", "(b) multiprocessing.Pool"))
    elif "(a) vlcurate web CLI" in results:  # bench/web.py
        source, n, a, a0, raw = "web", results["(a) vlcurate web CLI"]["pages"], *(secs.get(k) for k in (
            "(a) vlcurate web CLI", "(a0) CLI, 1-URL input", "(b) 1 warm browser"))
    elif any(e in doc for e in ("ppocr", "tesseract")):  # bench/ocr.py
        engine = next(e for e in ("ppocr", "tesseract") if e in doc)
        secs = doc[engine]["seconds"]
        # Its image count; a JSON written before ocr.py recorded it: --ocr-images.
        source, n, a, a0, raw = "ocr", doc[engine].get("images", ocr_images), *(secs.get(k) for k in (
            "(a) beam, default local", "(a0) beam, 1 image", "(b) Pool(2), same engine"))
    elif "pairs" in doc and "model" in doc:  # bench/clip.py
        source, n, a, a0, raw = "clip", doc["pairs"], secs["a"], secs.get("a0"), secs.get("b")
    elif "(a) vlcurate charts" in secs:  # bench/charts.py: no fixed-cost run
        source, n, a, a0, raw = "charts", doc["pages"], secs["(a) vlcurate charts"], None, secs.get("(c) Pool(2), same extraction")
    else:
        raise ValueError(f"{path}: not the JSON of bench/pdf_pages.py, web.py, ocr.py, clip.py or charts.py")
    rate, how = (n / a, f"{n} in {a:.1f}s end to end") if end_to_end else steady(n, a, a0, raw)
    return source, rate * 3600 / cores, f"{how}, on {cores} vCPUs"


def sizes_from_dataset(folder: Path) -> dict[str, tuple[float, int]]:
    """source -> (mean KB a sample, samples) from a dataset's index parquet files."""
    import pyarrow.parquet as pq

    totals: dict[str, list[int]] = {}
    files = sorted(glob.glob(str(folder / "index" / "*.parquet")))
    if not files:
        raise ValueError(f"{folder}: no index/*.parquet (not a dataset folder)")
    for file in files:
        table = pq.read_table(file, columns=["category", "sample_bytes"]).to_pydict()
        for category, size in zip(table["category"], table["sample_bytes"]):
            source = CATEGORY_SOURCE.get(category)
            if source:
                totals.setdefault(source, [0, 0])
                totals[source][0] += size
                totals[source][1] += 1
    return {source: (b / n / 1000, n) for source, (b, n) in totals.items()}


# --------------------------------------------------------------------------- the model


def plan(vcpu_hours: float, args) -> tuple[int, float]:
    """(workers, wall hours) of a job of `vcpu_hours` at --target-hours, at most --max-workers."""
    if vcpu_hours <= 0:
        return 0, 0.0
    workers = min(args.max_workers, max(1, math.ceil(vcpu_hours / (args.worker_vcpus * args.target_hours))))
    return workers, vcpu_hours / (workers * args.worker_vcpus)


def price(row: dict, args, after: bool) -> dict:
    """Fill a row ({samples, vcpu_hours, sample_kb, clip_vcpu_hours}) with workers, volumes and costs."""
    samples, sample_gb = row["samples"], row["samples"] * row["sample_kb"] / 1e6
    workers, hours = plan(row["vcpu_hours"], args)
    crossing_gb = samples * args.record_kb / 1e6 if after else sample_gb
    shuffle_gb = crossing_gb * args.shuffles
    staging_gb = sample_gb if after else 0.0
    costs = {
        "vcpu": row["vcpu_hours"] * args.vcpu_hour,
        "memory": workers * args.worker_memory_gb * hours * args.gb_hour,
        "disk": workers * args.worker_disk_gb * hours * args.pd_gb_hour,
        "shuffle": shuffle_gb * args.shuffle_billing_factor * args.shuffle_gb,
        # the dataset kept for a month; the staged copy only while the job runs
        "storage": sample_gb * args.storage_gb_month + staging_gb * args.storage_gb_month * hours / HOURS_PER_MONTH,
        "operations": (samples * (args.staging_class_a * args.class_a + args.staging_class_b * args.class_b) / 1000
                       if after else 0.0),
    }
    return {**row, "workers": workers, "hours": hours, "shuffle_gb": shuffle_gb, "dataset_gb": sample_gb,
            "staging_gb": staging_gb, "costs": costs, "cost": sum(costs.values())}


def model(args, rates: dict, sample_kb: dict, workload: dict) -> dict:
    missing = [s for s in workload if s not in rates or rates[s] <= 0]
    if args.clip and not (rates.get("clip", 0) > 0):
        missing.append("clip")
    missing += [s for s in workload if not sample_kb.get(s, 0) > 0]
    if missing:
        raise SystemExit(f"no rate or sample size for: {', '.join(sorted(set(missing)))} "
                         "(give --bench, --rates, --dataset or --sample-kb)")
    rows = {}
    for source, samples in workload.items():
        clip_hours = samples / rates["clip"] if args.clip and source in CLIP_SOURCES else 0.0
        rows[source] = {"samples": samples, "sample_kb": sample_kb[source], "stage_vcpu_hours": samples / rates[source],
                        "clip_vcpu_hours": clip_hours, "vcpu_hours": samples / rates[source] + clip_hours}
    total_samples = sum(r["samples"] for r in rows.values())
    rows["total"] = {"samples": total_samples,
                     "sample_kb": sum(r["samples"] * r["sample_kb"] for r in rows.values()) / total_samples,
                     **{k: sum(r[k] for r in rows.values()) for k in ("stage_vcpu_hours", "clip_vcpu_hours", "vcpu_hours")}}
    return {phase: {name: price(row, args, phase == "after") for name, row in rows.items()} for phase in ("before", "after")}


def growth_from(path: Path, section: str, size_key: str) -> dict | None:
    """Peak-RSS growth per unit of size between the smallest and largest run of a bench/memory.py JSON."""
    runs = json.loads(path.read_text()).get(section) or []
    if len(runs) < 2:
        return None
    small, large = runs[0], runs[-1]
    per_unit = (large["peak_rss_mb"] - small["peak_rss_mb"]) / (large[size_key] - small[size_key])
    return {"mb_per_page": per_unit, "base_mb": small["peak_rss_mb"] - per_unit * small[size_key],
            "per_s": large[size_key] / large["seconds"],
            "measured": f"{path}: {small[size_key]} -> {large[size_key]}: "
                        f"{small['peak_rss_mb']:.0f} -> {large['peak_rss_mb']:.0f} MB"}


def local_limit(per_page_mb: float, base_mb: float, memory_gb: float, headroom: float) -> float | None:
    """Pages a run of peak base + per_page x pages fits in memory_gb x headroom; None: no limit."""
    usable = memory_gb * 1000 * headroom - base_mb
    if per_page_mb <= 0:
        return None
    return max(0.0, usable / per_page_mb)


# --------------------------------------------------------------------------- printing


def human(value: float, unit: str = "") -> str:
    for scale, suffix in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}{unit}"
    return f"{value:.0f}{unit}"


def tb(gb: float) -> str:
    return f"{gb / 1000:.1f} TB" if gb >= 100 else f"{gb:.1f} GB"


def print_table(title: str, rows: dict) -> None:
    print(f"\n{title}")
    print(f"{'':18s} {'samples':>8s} {'KB/sample':>9s} {'workers':>7s} {'hours':>6s} {'vCPU-h':>8s} "
          f"{'(CLIP)':>7s} {'shuffle':>9s} {'stored':>9s} {'cost $':>9s}")
    for name, row in rows.items():
        label = "total (one job)" if name == "total" else SOURCE_NAMES.get(name, name)
        storage = row["dataset_gb"] + row["staging_gb"]
        print(f"{label:18s} {human(row['samples']):>8s} {row['sample_kb']:9.1f} {row['workers']:7d} {row['hours']:6.1f} "
              f"{row['vcpu_hours']:8.0f} {row['clip_vcpu_hours']:7.0f} {tb(row['shuffle_gb']):>9s} {tb(storage):>9s} {row['cost']:9,.0f}")
    costs = rows["total"]["costs"]
    print("  ((CLIP): the vCPU-hours of CLIP scoring among them; stored: the dataset, plus the staged copy"
          " while the job runs)\n  total cost: " + ", ".join(f"{k} {v:,.0f}" for k, v in costs.items()))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workload", default="pdf=100M,web=10M,ocr=10M", help="SOURCE=COUNT,... (pdf, web, ocr, charts)")
    ap.add_argument("--bench", type=Path, nargs="+", default=[], help="benchmark --json outputs to take rates from")
    ap.add_argument("--rates", type=Path, help="JSON {source: elements per vCPU-hour}")
    ap.add_argument("--memory", type=Path, help="bench/memory.py --json of the tree after the change: its growth")
    ap.add_argument("--memory-before", type=Path, help="bench/memory.py --json of the tree before (else the "
                    "--before-* figures)")
    ap.add_argument("--dataset", type=Path, nargs="+", default=[], help="dataset folders to measure bytes a sample on")
    ap.add_argument("--sample-kb", type=lambda t: pairs(t), default={}, help="SOURCE=KB,... bytes a sample")
    ap.add_argument("--ocr-images", type=int, default=150, help="images a bench/ocr.py JSON ran, where it does not say (one written before it did)")
    ap.add_argument("--bench-cores", type=int, default=BENCH_CORES, help="vCPUs of benchmark JSONs that lack 'cores'")
    ap.add_argument("--end-to-end", action="store_true",
                    help="rates of the whole benchmark run (a), start-up included, not the steady rate")
    ap.add_argument("--no-clip", dest="clip", action="store_false", help="no CLIP scoring of the image-text sources")
    g = ap.add_argument_group("the pipeline")
    g.add_argument("--shuffles", type=int, default=3, help="shuffles that carry every sample (3: exact and near "
                   "dedup joins and the sink; 1: a plain `vlcurate pdf`)")
    g.add_argument("--record-kb", type=float, default=1.5, help="KB a sample's record takes across a shuffle (after)")
    g.add_argument("--staging-class-a", type=float, default=0.1, help="class A operations a sample to stage (after): "
                   "a batch of up to 64 samples is one object and its done lines another, each a temporary object "
                   "and a rename (a copy on GCS), once by the source stage and once by the sink after the quality "
                   "stages: 6/64, rounded up for the part batches at bundle ends (one object a sample was 2.03)")
    g.add_argument("--staging-class-b", type=float, default=2, help="object reads a sample (after): its blob read "
                   "back by the quality stages and when its shard is written")
    g = ap.add_argument_group("workers")
    g.add_argument("--worker-vcpus", type=int, default=4, help="vCPUs a worker (n2-standard-4)")
    g.add_argument("--worker-memory-gb", type=float, default=16)
    g.add_argument("--worker-disk-gb", type=float, default=25, help="boot disk a worker (Dataflow Shuffle's default)")
    g.add_argument("--target-hours", type=float, default=24, help="wall time the job is sized for")
    g.add_argument("--max-workers", type=int, default=1000)
    g = ap.add_argument_group("prices, USD (assumed on-demand list prices, us-central1: check them)")
    g.add_argument("--vcpu-hour", type=float, default=0.056, help="Dataflow batch vCPU-hour")
    g.add_argument("--gb-hour", type=float, default=0.003557, help="Dataflow batch memory GB-hour")
    g.add_argument("--pd-gb-hour", type=float, default=0.000054, help="standard persistent disk GB-hour")
    g.add_argument("--shuffle-gb", type=float, default=0.011, help="Dataflow Shuffle, GB processed (batch)")
    g.add_argument("--shuffle-billing-factor", type=float, default=1.0,
                   help="billed GB per GB crossing a shuffle (2 if both the write and the read are billed)")
    g.add_argument("--storage-gb-month", type=float, default=0.020, help="Cloud Storage Standard, GB-month")
    g.add_argument("--class-a", type=float, default=0.005, help="Cloud Storage class A operations, per 1000")
    g.add_argument("--class-b", type=float, default=0.0004, help="Cloud Storage class B operations, per 1000")
    g = ap.add_argument_group("the local default")
    g.add_argument("--local-memory-gb", type=float, default=24)
    g.add_argument("--local-headroom", type=float, default=0.9, help="share of the memory a run may take")
    g.add_argument("--before-mb-per-page", type=float, default=0.61, help="peak RSS growth a page, before "
                   "(measured: docs/scaling.md)")
    g.add_argument("--before-base-mb", type=float, default=370, help="peak RSS of a run at no pages, before")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args()

    rates, rate_from = dict(RATES), {k: "default (docs/scaling.md)" for k in RATES}
    sample_kb, size_from = dict(SAMPLE_KB), {k: "default (docs/scaling.md)" for k in SAMPLE_KB}
    for path in args.bench:
        try:
            source, rate, how = rate_from_bench(path, args.ocr_images, args.bench_cores, args.end_to_end)
        except (ValueError, KeyError, OSError) as error:
            raise SystemExit(f"--bench {path}: {error}")
        rates[source], rate_from[source] = rate, f"{path.name}: {how}"
    if args.rates:
        for source, rate in json.loads(args.rates.read_text()).items():
            rates[source], rate_from[source] = float(rate), f"{args.rates.name}"
    for folder in args.dataset:
        for source, (kb, n) in sizes_from_dataset(folder).items():
            sample_kb[source], size_from[source] = kb, f"{folder} ({n} samples)"
    for source, kb in args.sample_kb.items():
        sample_kb[source], size_from[source] = kb, "--sample-kb"
    workload = {source: count(n) for source, n in pairs(args.workload, str).items()}

    print("rates (elements per vCPU-hour) and bytes a sample:")
    for source in list(workload) + (["clip"] if args.clip else []):
        kb = f"   {sample_kb[source]:6.1f} KB a sample  <- {size_from[source]}" if source in sample_kb else ""
        print(f"  {source:7s} {rates.get(source, 0):10,.0f}  <- {rate_from.get(source, '?')}{kb}")
    print(f"workers: {args.worker_vcpus} vCPU, {args.worker_memory_gb:g} GB, {args.worker_disk_gb:g} GB disk, "
          f"sized for {args.target_hours:g} h (at most {args.max_workers}); shuffles carrying every sample: {args.shuffles}")
    print(f"prices: vCPU-h ${args.vcpu_hour}, GB-h ${args.gb_hour}, PD GB-h ${args.pd_gb_hour}, shuffle GB "
          f"${args.shuffle_gb} (x{args.shuffle_billing_factor:g}), storage GB-month ${args.storage_gb_month}, "
          f"class A/B per 1000 ${args.class_a}/${args.class_b}")

    result = model(args, rates, sample_kb, workload)
    print_table(f"BEFORE: every sample's bytes cross {args.shuffles} shuffle(s); the dataset stored a month", result["before"])
    print_table(f"AFTER: a {args.record_kb:g} KB record crosses them; bytes written to staging (kept while the job "
                f"runs) and to the shards;\n  {args.staging_class_a:g} class A operations and {args.staging_class_b:g} "
                "reads a sample", result["after"])
    before, after = result["before"]["total"], result["after"]["total"]
    print(f"\nshuffle: {tb(before['shuffle_gb'])} -> {tb(after['shuffle_gb'])} "
          f"({before['costs']['shuffle']:,.0f} -> {after['costs']['shuffle']:,.0f} $); staging adds "
          f"{after['costs']['operations']:,.0f} $ of object operations and "
          f"{after['costs']['storage'] - before['costs']['storage']:,.0f} $ of storage; total "
          f"{before['cost']:,.0f} -> {after['cost']:,.0f} $")
    saved = before["costs"]["shuffle"] - after["costs"]["shuffle"] - (after["costs"]["storage"] - before["costs"]["storage"])
    per_sample_ops = saved / (before["samples"] * args.class_a / 1000)
    print(f"break-even: staging saves money on Dataflow while it costs under {per_sample_ops:.2f} class A operations "
          f"a sample (now {args.staging_class_a:g}; one object a sample was 2.03)")

    # The local default: one machine, FnApiRunner in-process.
    local = {"memory_gb": args.local_memory_gb, "headroom": args.local_headroom}
    for phase, path in (("before", args.memory_before), ("after", args.memory)):
        local[phase] = (growth_from(path, "pdf", "pages") if path else
                        {"mb_per_page": args.before_mb_per_page, "base_mb": args.before_base_mb,
                         "measured": "assumed: --before-mb-per-page, --before-base-mb"} if phase == "before" else None)
        local[f"{phase}_recipe"] = growth_from(path, "recipe", "size") if path else None
    print(f"\nlocal default: one machine of {args.local_memory_gb:g} GB ({args.local_headroom:.0%} of it for the run), "
          "peak RSS = base + growth x size")
    for key in ("before", "after", "before_recipe", "after_recipe"):
        figures = local.get(key)
        unit = "size unit" if key.endswith("recipe") else "page"
        label = key.replace("_recipe", ", recipe")
        if not figures:
            if not key.endswith("recipe"):
                print(f"  {label:16s}: no measurement (give --memory with bench/memory.py's JSON)")
            continue
        limit = local_limit(figures["mb_per_page"], figures["base_mb"], args.local_memory_gb, args.local_headroom)
        figures["max_size"] = limit
        held = "no limit from memory (the peak does not grow)" if limit is None else f"at most {human(limit)} {unit}s"
        print(f"  {label:16s}: {figures['mb_per_page']:+.4f} MB a {unit} over {figures['base_mb']:.0f} MB -> {held}"
              f"\n  {'':16s}  [{figures['measured']}]")
        if "per_s" in figures and not key.endswith("recipe") and limit is not None:
            print(f"  {'':16s}  at its largest run's {figures['per_s']:.1f} pages/s, that run takes "
                  f"{limit / figures['per_s'] / 3600:.1f} h")
    if local.get("after_recipe"):
        print("  (a size unit of the recipe: 1 PDF page, 1 conversation (every other with a photo), 2 text documents)")

    if args.json:
        args.json.write_text(json.dumps({"rates": rates, "rate_from": rate_from, "sample_kb": sample_kb,
                                         "size_from": size_from, "workload": workload, "params": {
                                             k: v for k, v in vars(args).items() if isinstance(v, (int, float, bool))},
                                         **result, "local": local}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
