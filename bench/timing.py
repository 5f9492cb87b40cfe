"""What the benchmarks share: the best wall time of a few runs, each into a fresh folder."""

from __future__ import annotations

import resource
import shutil
import socket
import tempfile
import time
from pathlib import Path


def best_time(fn, out: Path, repeat: int) -> float:
    """Best wall time of `repeat` runs of fn(out), each into a fresh, empty output directory."""
    times = []
    for _ in range(repeat):
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        fn(out)
        times.append(time.perf_counter() - t0)
    return min(times)


def tree_cpu_seconds() -> float:
    """CPU-seconds (user + system) of this process and of every descendant it has waited for: a
    CLI run in a subprocess counts with its render children and Beam's worker processes, which it
    reaps, and a multiprocessing.Pool with its workers once the pool is joined."""
    return sum(usage.ru_utime + usage.ru_stime
               for usage in (resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)))


def best_times(runs: dict, work: Path, repeat: int, cpu: dict | None = None) -> tuple[dict, dict]:
    """({name: best wall time}, {name: error}) of every ``runs[name](out)``, taken in rounds: each
    round runs every measurement once, in turn. This machine's speed drifts by 15% over minutes
    (the same run took 32 and 37 CPU-seconds ten minutes apart), so runs of the things compared
    are interleaved rather than done one block after the other. A run that fails is reported and
    not run again; the others go on. With ``cpu``, ``cpu[name]`` is the CPU-seconds of the whole
    process tree (``tree_cpu_seconds``) in the run with the best wall time."""
    times: dict = {}
    errors: dict = {}
    for _ in range(repeat):
        for i, (name, fn) in enumerate(runs.items()):
            if name in errors:
                continue
            before = tree_cpu_seconds()
            try:
                seconds = best_time(fn, work / f"out_{i}", 1)
            except Exception as exc:  # report and carry on, so the baselines still get measured
                errors[name] = str(exc)
                continue
            if cpu is not None and seconds < times.get(name, float("inf")):
                cpu[name] = tree_cpu_seconds() - before
            times[name] = min(seconds, times.get(name, seconds))
    return times, errors


def free_port() -> int:
    """A port on 127.0.0.1 that nothing listens on, for a server the benchmark starts."""
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return probe.getsockname()[1]


def add_run_flags(parser, seed: bool = True) -> None:
    """The flags every benchmark takes: --seed, --repeat, --workdir, --json."""
    if seed:
        parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=1, help="runs per measurement; the best is reported")
    parser.add_argument("--workdir", type=Path, help="keep inputs and outputs here instead of a temp dir")
    parser.add_argument("--json", type=Path, help="write the figures to this JSON file")


def work_folder(args, prefix: str):
    """(folder, temporary directory or None): --workdir, or a temporary folder to clean up."""
    if args.workdir:
        return args.workdir, None
    tmp = tempfile.TemporaryDirectory(prefix=prefix)
    return Path(tmp.name), tmp


def finish(args, tmp, figures: dict) -> int:
    """The end of a benchmark: the figures to --json if asked, the temporary folder removed."""
    import json

    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    if tmp:
        tmp.cleanup()
    return 0


def run_main(main) -> None:
    """Run a benchmark's main(), print how long the whole benchmark took, exit with its code."""
    import sys

    start = time.perf_counter()
    code = main()
    print(f"\n(benchmark took {time.perf_counter() - start:.0f}s)")
    sys.exit(code)
