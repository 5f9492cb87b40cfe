"""Throughput benchmark: web pages -> 1024x1024 screenshots (+ rendered HTML).

    .venv/bin/python bench/web.py [--pages 200] [--repeat 1] [--json out.json]

Serves N generated content pages (/pages/i.html of tests/web_site.py) from a local site on
127.0.0.1 and measures screenshots per second for:

  (a) the vlcurate web pipeline end to end via its CLI in a subprocess, as a user runs it
      (a URL list in a .txt file, --allow-host for the local site); it is also timed on a 1-URL
      list, its fixed cost (interpreter, Beam, browser start, manifest), and the steady-state ratio
      pages / (time(a) - fixed cost) against (b) is printed,
  (b) a plain Playwright loop on ONE warm Chromium, launched once before the clock starts (its
      launch time is printed apart): per page a fresh context, goto (until "load"), screenshot,
      page.content(), close the context; the raw limit of one browser driven one page at a time,
  (c) the naive loop: a new Chromium per page (launch, goto, screenshot, content, close), timed
      on a sample of pages (--naive-sample, 20 by default) and scaled to a per-page rate; the
      Playwright driver itself is started once, outside the clock,
and the throughput ratios a/b (target >= 0.7) and a/c (target >= 5). Numbers depend on the machine.

The browsers that (b) and (c) launch are confined like the pipeline's: every request except the
local site's goes to a proxy that is the site's canary listener, and no host name is resolved,
so nothing leaves 127.0.0.1; the canary count printed at the end shows whether Chromium tried
(it does: Chromium 156 still calls update.googleapis.com and accounts.google.com despite
--disable-background-networking and --disable-component-update). Where `unshare -n` works (root,
Linux) the whole benchmark re-runs itself in a network namespace that has only loopback, so no
browser, (a)'s included, can reach the network whatever its flags; --no-netns turns that off.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

from timing import add_run_flags, best_time, finish, work_folder  # bench/timing.py: this script's folder is on sys.path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))
from fixtures.web_site import WebSite  # noqa: E402  (the tests' local site; stdlib only)

from playwright.sync_api import Browser, Playwright, sync_playwright  # noqa: E402

VIEWPORT = {"width": 1024, "height": 1024}
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic"]
A, A0 = "(a) vlcurate web CLI", "(a0) CLI, 1-URL input"
B, B0 = "(b) 1 warm browser", "(b0) browser launch, once"
C = "(c) browser per page"


def confinement_args(site: WebSite) -> list[str]:
    """Only the site goes direct; the rest (localhost and link-local included) to the canary."""
    return [f"--proxy-server=http://127.0.0.1:{site.canary_port}",
            f"--proxy-bypass-list=<-loopback>;127.0.0.1:{site.port}",  # <-loopback>: drop the implicit bypass
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]


# --------------------------------------------------------------------------- (a) the pipeline


def pipeline_cmd(urls_txt: Path, out: Path, site: WebSite, extra: list[str]) -> list[str]:
    return [sys.executable, "-m", "vlcurate.pipelines.cli", "web", "--offline", "--input", str(urls_txt),
            "--output", str(out), "--allow-host", f"127.0.0.1:{site.port}", *extra]


def count_samples(out: Path) -> int:
    """Samples (distinct keys with an image) in the run's shards."""
    keys = set()
    for shard in sorted(out.glob("shards/*.tar")):
        with tarfile.open(shard) as tar:
            keys.update(m.name.split(".")[0] for m in tar.getmembers() if m.name.endswith((".png", ".jpg")))
    return len(keys)


def run_pipeline(urls_txt: Path, out: Path, site: WebSite, extra: list[str], expected: int) -> None:
    try:
        proc = subprocess.run(pipeline_cmd(urls_txt, out, site, extra), cwd=REPO_ROOT, capture_output=True,
                              text=True, timeout=120 + 10 * expected)
    except subprocess.TimeoutExpired as exc:
        raise RuntimeError(f"pipeline CLI still running after {exc.timeout:.0f}s; killed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-15:])
        hint = " (the CLI has no 'web' command yet)" if "unknown command 'web'" in proc.stderr else ""
        raise RuntimeError(f"pipeline CLI exited with {proc.returncode}{hint}:\n{tail}")
    samples = count_samples(out)
    if samples != expected:  # a run that rejects the pages is not a throughput figure
        raise RuntimeError(f"pipeline CLI wrote {samples} samples for {expected} URLs (see {out}/rejects)")


# --------------------------------------------------------------------------- (b) and (c) raw loops


def add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 0
    tar.addfile(info, io.BytesIO(data))


def shoot(browser: Browser, url: str, tar: tarfile.TarFile, key: str, wait_until: str) -> None:
    """One screenshot in a fresh context: what a pipeline must do at least, per page."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        response = page.goto(url, wait_until=wait_until, timeout=30_000)
        if response is None or response.status != 200:
            raise RuntimeError(f"{url}: status {response and response.status}")
        add_member(tar, f"{key}.png", page.screenshot(type="png"))
        add_member(tar, f"{key}.html", page.content().encode())
    finally:
        context.close()


def launch(pw: Playwright, site: WebSite) -> Browser:
    return pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS + confinement_args(site))


def run_warm(browser: Browser, urls: list[str], out: Path, wait_until: str) -> None:
    with tarfile.open(out / "shots.tar", "w") as tar:
        for i, url in enumerate(urls):
            shoot(browser, url, tar, f"page-{i:05d}", wait_until)


def run_naive(pw: Playwright, site: WebSite, urls: list[str], out: Path, wait_until: str) -> None:
    with tarfile.open(out / "shots.tar", "w") as tar:
        for i, url in enumerate(urls):
            browser = launch(pw, site)
            try:
                shoot(browser, url, tar, f"page-{i:05d}", wait_until)
            finally:
                browser.close()


# --------------------------------------------------------------------------- driver

NETNS_ENV = "VLCURATE_BENCH_NETNS"  # set inside the namespace, so the re-run does not recurse
LOOPBACK_ONLY = ["unshare", "--net", "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]


def loopback_only_works() -> bool:
    if not (shutil.which("unshare") and shutil.which("ip")):
        return False
    try:
        return subprocess.run(LOOPBACK_ONLY + ["true"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description="Web screenshot throughput benchmark.")
    ap.add_argument("--pages", type=int, default=200, help="pages to screenshot (at most 1000)")
    ap.add_argument("--naive-sample", type=int, default=20, help="pages timed for (c), scaled to a rate")
    add_run_flags(ap, seed=False)
    ap.add_argument("--wait-until", default="load", choices=["load", "domcontentloaded", "networkidle"],
                    help="when (b) and (c) take the screenshot")
    ap.add_argument("--pipeline-arg", action="append", default=[], metavar="FLAG",
                    help="extra flag for the CLI in (a), repeatable (e.g. --pipeline-arg=--direct_num_workers=2)")
    ap.add_argument("--skip-pipeline", action="store_true", help="only run the baselines (b) and (c)")
    ap.add_argument("--no-netns", action="store_true", help="do not re-run in a loopback-only network namespace")
    args = ap.parse_args()
    if not args.no_netns and not os.environ.get(NETNS_ENV):
        if loopback_only_works():
            inner = LOOPBACK_ONLY + [sys.executable, *sys.argv]
            return subprocess.run(inner, env={**os.environ, NETNS_ENV: "1"}).returncode
        print("note: no loopback-only network namespace here (unshare -n failed); running without one")
    pages = max(1, min(args.pages, 1000))
    sample = max(1, min(args.naive_sample, pages))

    work, tmp = work_folder(args, "vlcurate-bench-web-")
    work.mkdir(parents=True, exist_ok=True)
    results, errors, counts = {}, {}, {A0: 1, B0: 1, C: sample}

    def measure(name: str, fn) -> None:
        try:
            results[name] = best_time(fn, work / f"out_{len(results) + len(errors)}", args.repeat)
        except Exception as exc:  # report and carry on, so the baselines still get measured
            errors[name] = str(exc)

    with WebSite() as site, sync_playwright() as pw:
        urls = [site.url(f"/pages/{i}.html") for i in range(pages)]
        netns = "loopback-only netns" if os.environ.get(NETNS_ENV) else "host network"
        print(f"{netns}  cores: {os.cpu_count()}  viewport {VIEWPORT['width']}x{VIEWPORT['height']}  "
              f"pages: {pages}  site: {site.url('/')}  wait until: {args.wait_until}")
        if not args.skip_pipeline:
            (work / "urls.txt").write_text("\n".join(urls) + "\n", encoding="utf-8")
            (work / "one-url.txt").write_text(urls[0] + "\n", encoding="utf-8")
            measure(A0, lambda out: run_pipeline(work / "one-url.txt", out, site, args.pipeline_arg, 1))
            measure(A, lambda out: run_pipeline(work / "urls.txt", out, site, args.pipeline_arg, pages))
        t0 = time.perf_counter()
        browser = launch(pw, site)  # (b)'s one browser: launched after (a), before (b)'s clock starts
        results[B0] = time.perf_counter() - t0
        version = browser.version
        measure(B, lambda out: run_warm(browser, urls, out, args.wait_until))
        browser.close()
        measure(C, lambda out: run_naive(pw, site, urls[:sample], out, args.wait_until))
        stray = site.canary_connections

    print(f"\nchromium {version}\n{'measurement':28s} {'pages':>6s} {'seconds':>9s} {'shots/s':>9s}")
    for name in [A0, A, B0, B, C]:
        n = counts.get(name, pages)
        if name in (A0, B0) and name in results:
            print(f"{name:28s} {n:6d} {results[name]:9.2f} {'':>9s}  (fixed cost)")
        elif name in results:
            note = f"  (a sample of {n}, scaled to a rate)" if name == C else ""
            print(f"{name:28s} {n:6d} {results[name]:9.2f} {n / results[name]:9.2f}{note}")
        elif name in errors:
            print(f"{name:28s} {n:6d} {'FAILED':>9s}")
            print(textwrap.indent(errors[name], "    "))

    # Throughput ratios (screenshots/s); (c) is a rate from its sample.
    rate = {k: counts.get(k, pages) / t for k, t in results.items()}
    ratios = {k: rate[n] / rate[d] for k, (n, d) in {"a/b": (A, B), "a/c": (A, C), "b/c": (B, C)}.items()
              if n in rate and d in rate}
    if A in results and A0 in results and B in results and results[A] > results[A0]:
        ratios["a/b steady"] = (pages / (results[A] - results[A0])) / rate[B]  # (a) without its fixed cost
    if ratios:
        print("\nthroughput ratios: " + "   ".join(f"{k} = {v:.2f}" for k, v in ratios.items()))
    targets = {"a/b": 0.7, "a/c": 5.0}
    for k, target in targets.items():
        if k in ratios:
            print(f"target {k} >= {target}: {'MET' if ratios[k] >= target else 'NOT MET'}")
    print(f"canary: {stray} requests from the browsers of (b) and (c) that tried to leave the site "
          "(Chromium's own background calls, held on 127.0.0.1)")

    finish(args, tmp, {
        "cores": os.cpu_count(), "chromium": version, "netns": bool(os.environ.get(NETNS_ENV)),
        "pages": pages, "naive_sample": sample, "repeat": args.repeat, "viewport": VIEWPORT,
        "wait_until": args.wait_until,
        "results": {k: {"pages": counts.get(k, pages), "seconds": t, "shots_per_s": rate[k]}
                    for k, t in results.items()},
        "errors": errors, "ratios": ratios, "canary_connections": stray,
        "targets_met": {k: ratios.get(k, 0) >= t for k, t in targets.items()},
    })
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
