"""A child process for native-code calls: a crash or a hang costs one input, not the run.

PyMuPDF (MuPDF, C) can crash or spin forever on hostile files, and a thread cannot be stopped.
``IsolatedWorker`` keeps one long-lived child, sends it calls over a pipe, and waits with a
deadline: on a timeout the child is killed, on a crash it is gone; either way the call becomes a
``Reject`` and a fresh child starts for the next call. ``IsolatedPool`` runs N such children
concurrently for the threads of one process (one pool per process, shared by every stage in it),
so rendering uses the cores through processes, as PyMuPDF's lack of thread safety asks.

The child is ``python -m vlcurate.transforms.runtime.isolation``, not a multiprocessing child: spawn and
forkserver re-import the parent's ``__main__`` (a user's script, pytest, a Beam worker), and fork
would copy the SDK harness's gRPC threads. Messages are pickled (functions by name, arguments,
results): both ends are our own code; the untrusted PDF bytes are never unpickled.
"""

from __future__ import annotations

import concurrent.futures
import importlib
import logging
import os
import pickle
import queue
import signal
import subprocess
import sys
import threading
import weakref
from multiprocessing.connection import Connection

from vlcurate.transforms.runtime import native_threads
from vlcurate.transforms.data.rejects import Reject

_LOG = logging.getLogger(__name__)


class IsolatedError(RuntimeError):
    """An unexpected exception inside the child, carried back as its type name and message."""


# A child is replaced after this many calls: native libraries' caches and heap fragments may grow
# with the work, and a run's memory must not grow with its size. (PDF children grew about 3.5 KB a
# page over 8,000 pages each, bench/memory.py; that was PyMuPDF leaking every text block, which
# transforms/sources/pdf/blocks.py undoes: they now hold flat, 190 MB after 800 pages and after
# 4,000.) A new child costs about a second of CPU (interpreter, libraries, its documents
# reopened): after 4,000 calls a 4,800-page PDF run replaces none.
RECYCLE_AFTER = 4000
# How long an adopted spare may take to finish its imports and set its memory limit (``adopt``).
ADOPT_TIMEOUT_S = 60.0


class IsolatedWorker:
    """One child process that runs module-level functions with a time limit per call."""

    def __init__(self, memory_limit_mb: int | None = None, threads: int | None = None,
                 recycle_after: int = RECYCLE_AFTER, preload: tuple[str, ...] = ()):
        self.memory_limit_mb = memory_limit_mb
        self.threads = threads  # native threads the child's libraries may use (native_threads.py)
        # Modules the child imports as it starts, before its first call: a child started ahead
        # of the work (``shared_pool``) is then ready when the work comes.
        self.preload = preload
        self.recycle_after = recycle_after
        self._calls = 0
        self._process = None
        self._to_child = self._from_child = None
        self._limit_pending = False  # a spare adopted by a pool with a memory limit (``adopt``)

    def call(self, timeout_s: float, function, *args):
        """``function(*args)`` in the child; ``Reject`` for a timeout, a crash or a Reject inside.

        ``function`` is a module-level function, or its name as "module:function", which only
        the child imports (so the parent need not load, say, PyMuPDF).
        """
        name = _name(function, args)
        self.start()
        if self._limit_pending:  # before the first call: the limit a fresh child is started with
            self._limit_pending = False
            # Waits for the child's imports too, which are not the first call's time.
            self.call(max(timeout_s, ADOPT_TIMEOUT_S), set_memory_limit, self.memory_limit_mb)
        try:
            self._to_child.send((function, args))
            if not self._from_child.poll(timeout_s):
                self._stop(kill=True)
                raise Reject("timeout", f"{name} took over {timeout_s:g}s")
            outcome = self._from_child.recv()
        except (EOFError, OSError):
            try:
                exit_code = self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                exit_code = None
            self._stop(kill=True)
            raise Reject("worker_crashed", f"{name}: child exited with {exit_code}") from None
        self._calls += 1
        if self._calls >= self.recycle_after:  # a fresh child for the next call
            self._calls = 0
            self._stop(kill=False)
        if outcome[0] == "ok":
            return outcome[1]
        if outcome[0] == "reject":
            raise Reject(outcome[1], outcome[2])
        raise IsolatedError(outcome[1])

    def close(self) -> None:
        self._stop(kill=False)

    def adopt(self, memory_limit_mb: int | None) -> "IsolatedWorker":
        """This spare (started without a memory limit) for a pool with ``memory_limit_mb``: the
        child gets the limit before its first call, and a replacement is started with it."""
        self.memory_limit_mb = memory_limit_mb
        self._limit_pending = bool(memory_limit_mb)
        return self

    def start(self) -> None:
        """Start the child unless it runs; ``call`` does this itself when needed."""
        if self._process is not None and self._process.poll() is None:
            return
        self._stop(kill=True)
        command = [sys.executable, "-m", __name__, str(self.memory_limit_mb or 0), *self.preload]
        # A session of its own, so that killing it takes whatever it started too (a browser).
        env = dict(os.environ)
        # glibc gives a freed buffer of a few megabytes (a page's pixmap, its PNG, its staged blob)
        # back to the kernel at once, and the next page faults it all in again: 2.4 ms of kernel
        # time a PDF page, a tenth of its render. A child keeps up to 32 MB of freed memory
        # instead (a user's own MALLOC_* settings win).
        env.setdefault("MALLOC_MMAP_THRESHOLD_", str(32 << 20))
        env.setdefault("MALLOC_TRIM_THRESHOLD_", str(32 << 20))
        if self.threads:
            env[native_threads.ENV] = str(self.threads)
        self._process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True, start_new_session=True, env=env
        )
        _RUNNING.add(self)
        self._to_child = Connection(os.dup(self._process.stdin.fileno()), readable=False)
        self._from_child = Connection(os.dup(self._process.stdout.fileno()), writable=False)
        self._process.stdin.close()
        self._process.stdout.close()

    def _stop(self, kill: bool) -> None:
        process, to_child, from_child = self._process, self._to_child, self._from_child
        self._process = self._to_child = self._from_child = None
        if to_child is not None:
            if not kill:
                try:
                    to_child.send(None)
                except OSError:
                    pass
            to_child.close()
        if from_child is not None:
            from_child.close()
        if process is not None:
            if kill:
                _kill_group(process)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                _LOG.warning("isolated worker %s did not exit; killing it", process.pid)
                _kill_group(process)
                process.wait()

    def kill(self) -> None:
        """Stop the child now, and whatever it started (a browser)."""
        if self._process is not None:
            self._stop(kill=True)

    def __del__(self):
        if self._process is not None:
            try:
                self._stop(kill=True)
            except Exception:  # at interpreter exit os and subprocess may be half torn down
                pass


# Every worker whose child may be running: the children a process leaves are killed by
# ``stop_all`` when it ends without running its objects' finalizers (pipelines/cli.py).
_RUNNING: "weakref.WeakSet[IsolatedWorker]" = weakref.WeakSet()


def stop_all() -> None:
    """Kill every isolated child of this process (and what each started), as their workers'
    finalizers do at a normal interpreter exit."""
    for worker in list(_RUNNING):
        worker.kill()


def _name(function, args) -> str:
    """What a call is named in its reject row: the function, or the one a wrapper calls."""
    name = function if isinstance(function, str) else function.__name__
    if name.endswith("staged_call") and len(args) > 1:  # io/staging.py: (staging, function, *args)
        return _name(args[1], args[2:])
    return name


def _kill_group(process: subprocess.Popen) -> None:
    """SIGKILL the child and every process it started (its session's process group)."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()


class IsolatedPool:
    """N isolated workers shared by the threads of one process; ``submit`` returns a Future.

    Threads block only on pipes while the children compute, so one Beam thread can keep every
    core busy, and several Beam threads (Dataflow runs many per process) share the same children
    instead of starting one each.
    """

    def __init__(self, size: int, memory_limit_mb: int | None, threads: int | None = None,
                 preload: tuple[str, ...] = ()):
        self.size = size
        self._idle: queue.SimpleQueue[IsolatedWorker] = queue.SimpleQueue()
        spares = _take_spares(threads, preload, size)
        for number in range(size):
            if number < len(spares):
                worker = spares[number].adopt(memory_limit_mb)
            else:
                worker = IsolatedWorker(memory_limit_mb, threads, preload=preload)
                # Start every child now: they import their libraries side by side, not one by one.
                worker.start()
            self._idle.put(worker)
        self._threads = concurrent.futures.ThreadPoolExecutor(size, thread_name_prefix="vlcurate-isolated")

    def submit(self, timeout_s: float, function, *args) -> concurrent.futures.Future:
        return self._threads.submit(self._call, timeout_s, function, args)

    def close(self) -> None:
        """Stop the threads and the children (a pool from ``shared_pool`` lives as long as its process)."""
        self._threads.shutdown(wait=True)
        for _ in range(self.size):
            self._idle.get().close()

    def _call(self, timeout_s, function, args):
        worker = self._idle.get()
        try:
            return worker.call(timeout_s, function, *args)
        finally:
            self._idle.put(worker)


_POOLS: dict[tuple[int, int | None, int | None], IsolatedPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(size: int, memory_limit_mb: int | None, threads: int | None = None,
                preload: tuple[str, ...] = ()) -> IsolatedPool:
    """This process's pool of that size, memory limit and native thread count, made on first use
    and kept; its children end when this process does (their pipe closes). ``preload``: modules
    its children import as they start (only the call that makes the pool says which).
    """
    with _POOLS_LOCK:
        key = (size, memory_limit_mb, threads)
        if key not in _POOLS:
            _POOLS[key] = IsolatedPool(size, memory_limit_mb, threads, preload)
        return _POOLS[key]


# Children started before their pool, by (threads, preload): see ``prestart``.
_SPARES: dict[tuple[int | None, tuple[str, ...]], list[IsolatedWorker]] = {}


def prestart(size: int, threads: int | None, preload: tuple[str, ...]) -> None:
    """Start ``size`` children that import ``preload`` now, for the pool this process will make
    with that many children, native threads and preload: `vlcurate` calls it before it imports
    Beam (1.2 s of one core), so the children's own start-up (a PDF child: 0.25 s, PyMuPDF)
    runs on the idle cores instead of after the pipeline is built. The pool adopts them and sets
    its memory limit in them; a pool of another shape starts its own, and ``stop_all`` ends any
    spare left over."""
    with _POOLS_LOCK:
        if any(key[0] == size and key[2] == threads for key in _POOLS):
            return  # this process has that pool already (a long-lived one: tests, a notebook)
        spares = _SPARES.setdefault((threads, tuple(preload)), [])
        while len(spares) < size:
            worker = IsolatedWorker(None, threads, preload=tuple(preload))
            worker.start()
            spares.append(worker)


def _take_spares(threads: int | None, preload: tuple[str, ...], size: int) -> list[IsolatedWorker]:
    """Up to ``size`` prestarted children of this shape, no longer spare (call holding the lock)."""
    spares = _SPARES.get((threads, tuple(preload)), [])
    taken, spares[:] = spares[:size], spares[size:]
    return taken


def set_memory_limit(memory_limit_mb: int) -> None:
    """Runs in a child: cap its address space, as a child started with the limit has it."""
    import resource

    limit = memory_limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _serve(memory_limit_mb: int, preload: list[str]) -> None:
    """The child's loop: run each (function, args) it is sent and send back the outcome."""
    native_threads.from_environment()
    if memory_limit_mb:
        set_memory_limit(memory_limit_mb)
    for module in preload:
        try:
            importlib.import_module(module)
        except Exception:  # a call that needs it reports the error as its own
            _LOG.exception("isolated worker: cannot preload %s", module)
    # The pipe to the parent is a private copy of stdout; stdout itself now goes to stderr, so
    # a library that prints cannot corrupt the messages.
    requests = Connection(os.dup(0), writable=False)
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)
    while True:
        try:
            raw = requests.recv_bytes()
        except EOFError:
            return
        try:
            message = pickle.loads(raw)  # our parent's message: a function by name and its args
        except Exception as error:
            replies.send(("error", f"cannot read the call: {type(error).__name__}: {error}"))
            continue
        if message is None:
            return
        function, args = message
        try:
            if isinstance(function, str):
                module, _, attribute = function.partition(":")
                function = getattr(importlib.import_module(module), attribute)
            outcome = ("ok", function(*args))
        except Reject as reject:
            outcome = ("reject", reject.reason, reject.detail)
        except MemoryError:
            outcome = ("reject", "worker_crashed", "out of memory in the isolated worker")
        except Exception as error:  # carried to the parent, which turns it into a reject row
            outcome = ("error", f"{type(error).__name__}: {error}")
        try:
            replies.send(outcome)
        except Exception as error:  # a result that cannot be pickled is a bug, not a bad input
            replies.send(("error", f"cannot send the result: {type(error).__name__}: {error}"))


if __name__ == "__main__":
    _serve(int(sys.argv[1]), sys.argv[2:])
