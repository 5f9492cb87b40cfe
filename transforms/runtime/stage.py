"""The DoFns every stage wrapper builds on: results on the main output, reject rows on a tagged one."""

from __future__ import annotations

import collections
import concurrent.futures
import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from vlcurate.transforms.runtime import head_start, progress
from vlcurate.transforms.runtime.isolation import shared_pool
from vlcurate.transforms.data.rejects import Reject, RejectRecord, sample_reject
from vlcurate.transforms.data.sample import Sample
from vlcurate.transforms.io.blobs import StagedSample
from vlcurate.transforms.io.packs import RemotePack
from vlcurate.transforms.io.staging import Staging, staged_call

REJECTS = "rejects"
# Settled inputs recorded as done per file (and at most this many seconds after they settled).
DONE_BATCH = 64
DONE_BATCH_SECONDS = 2.0
# On an object store a batch is two objects (its samples, its done lines), each two class A
# operations: a slow stage (a browser's screenshot a second) flushing every 2 s would pay about an
# operation a sample. A kill there loses at most this much of a worker's work.
REMOTE_BATCH_SECONDS = 30.0
_LOG = logging.getLogger(__name__)


class StageDoFn(beam.DoFn):
    """Subclasses set ``stage``, write ``run(element)`` and ``ref(element) -> (uri, locator)``.

    ``run`` raises ``Reject`` for expected bad input; any other exception is a bug, but it still
    costs only this element: it becomes an ``internal_error`` row naming the exception. An element
    gives either all of its outputs or one reject. Counters: ``<stage>/outputs``, ``<stage>/<reason>``.

    A stage that makes samples from an input (a page, an image, a record) can be given the run's
    ``Staging`` (``with_staging``): its samples are then staged (by the isolated child that made
    them, for an isolated stage) and leave as their records, each settled element records what it
    became, and an element already settled by an interrupted attempt of the run is replayed from
    the staging area instead of being computed again (``<stage>/replayed``). On an object store
    the samples of a batch of inputs are staged as one object (``RemotePack``), and the batch's
    outputs leave once that object is written.
    """

    stage = "stage"
    staging: Staging | None = None
    _finished = None  # the staging's done index, read on first use (``replay``)
    _done: list | tuple = ()  # settled inputs whose done lines are not written yet (a list once there are)
    _done_since = 0.0  # when the oldest of them settled
    _pack: RemotePack | None = None  # on an object store: this batch's blobs, and the outputs held for them
    # What its elements count as in the live progress (transforms/runtime/progress.py): the run's
    # inputs ("input"), the items of its main work ("item"), and whether its outputs are samples.
    counts: frozenset = frozenset()

    def with_staging(self, staging: Staging | None) -> "StageDoFn":
        self.staging = staging
        return self

    def run(self, element):
        raise NotImplementedError

    def ref(self, element) -> tuple[str, str]:
        raise NotImplementedError

    def process(self, element):
        replayed = self.replay(element)
        if replayed is not None:
            yield from replayed
            return
        yield from self.settle(element, lambda: self.run(element))

    def replay(self, element) -> list | None:
        """What an interrupted attempt of this run made of ``element``, or None: compute it. The
        samples come back as their staged records (a blob lost since is a staging_lost row when
        its shard is written)."""
        if self.staging is None:
            return None
        started = time.time()
        if self._finished is None:  # read once, when the stage first runs here
            self._finished = self.staging.finished(self.stage)
        done = self._finished.get(self.ref(element))
        if done is None:
            return None
        samples, rejects = done
        Metrics.counter(self.stage, "replayed").inc()
        Metrics.counter(self.stage, "outputs").inc(len(samples))
        for reject in rejects:
            Metrics.counter(self.stage, reject.reason).inc()
        progress.record(self.stage, started, len(samples), rejects[0].reason if rejects else None, self.counts)
        return [*samples, *(beam.pvalue.TaggedOutput(REJECTS, reject) for reject in rejects)]

    def start_bundle(self):
        # Nothing of a bundle that failed carries over: its outputs were never committed.
        self._done, self._pack = (), None

    def finish_bundle(self):
        yield from map(in_global_window, self._record_done(force=True))
        progress.flush()

    def settle(self, element, compute, started: float | None = None, finished: float | None = None) -> list:
        """``compute()``'s outputs, or the one reject row its failure becomes; counted and timed
        (from ``started`` to ``finished``, time.time()s, by default now) for progress and the manifest."""
        started = time.time() if started is None else started
        try:
            outputs = list(compute())
        except Reject as reject:
            progress.record(self.stage, started, 0, reject.reason, self.counts, finished)
            return self._staged(element, [self._reject(element, reject.reason, reject.detail)])
        except Exception as error:
            _LOG.exception("%s: unexpected error on %s", self.stage, self.ref(element))
            progress.record(self.stage, started, 0, "internal_error", self.counts, finished)
            return self._staged(element, [self._reject(element, "internal_error", f"{type(error).__name__}: {error}")])
        # Outputs are the main output's elements; a tagged side row (a review-queue row) is not one.
        produced = sum(not isinstance(output, beam.pvalue.TaggedOutput) for output in outputs)
        Metrics.counter(self.stage, "outputs").inc(produced)
        progress.record(self.stage, started, produced, None, self.counts, finished)
        return self._staged(element, outputs)

    def _staged(self, element, outputs: list) -> list:
        """With staging: the outputs' samples staged and the element recorded as done; the
        outputs to emit now (on an object store, those of a batch whose object was just written)."""
        if self.staging is None:
            return outputs
        outputs = [self.staging.stage(output) if isinstance(output, Sample) else output for output in outputs]
        if self._pack is None and self.staging.remote:
            self._pack = RemotePack(self.staging)
        if self._pack is not None:
            outputs = [self._pack.hold(output) for output in outputs]
        records = [output for output in outputs if isinstance(output, StagedSample)]
        rejects = [output.value for output in outputs if isinstance(output, beam.pvalue.TaggedOutput)]
        if not self._done:
            self._done, self._done_since = [], time.monotonic()
        self._done.append((self.ref(element), records, rejects))
        released = self._record_done()
        return outputs if self._pack is None else released

    def _record_done(self, force: bool = False) -> list:
        """Write the settled inputs' done lines: a batch at a time (one file an input cost about a
        millisecond each, as much as the stage's own bookkeeping), and whatever is left when the
        bundle ends; a kill loses at most one batch, whose inputs a resumed run does again. On an
        object store the batch's object is written first (its done lines name it), and the
        outputs held for it are returned."""
        if self._pack is None:
            due = time.monotonic() - self._done_since >= DONE_BATCH_SECONDS
        else:
            due = self._pack.full or time.monotonic() - self._done_since >= REMOTE_BATCH_SECONDS
        if not (self._done and (force or due or len(self._done) >= DONE_BATCH)):
            return []
        released = self._pack.write() if self._pack is not None else []
        self.staging.finish(self.stage, self._done)
        self._done = ()
        return released

    def _reject(self, element, reason: str, detail: str):
        Metrics.counter(self.stage, reason).inc()
        if isinstance(element, Sample):  # a stage over samples (labels): the row keeps its key and source
            record = sample_reject(element, self.stage, reason, detail[:2000])
        else:
            uri, locator = self.ref(element)
            record = RejectRecord(stage=self.stage, reason=reason, uri=uri, locator=locator, detail=detail[:2000])
        return beam.pvalue.TaggedOutput(REJECTS, record)


class ConcurrentStageDoFn(StageDoFn):
    """A stage with several elements in flight: ``submit(element) -> Future`` starts one,
    ``outputs(element, result) -> iterable`` turns its result into outputs. Up to ``in_flight``
    elements are pending; results leave as they finish, in any order (a slow element does not
    hold back the ones behind it; the shards are sorted whatever the order), the rest at the end
    of the bundle. Outputs emitted at the end of a bundle are placed in the global window: these
    stages run in batch pipelines."""

    in_flight = 2
    _pending: collections.deque  # set by start_bundle

    def submit(self, element):
        raise NotImplementedError

    def outputs(self, element, result):
        raise NotImplementedError

    def start_bundle(self):
        super().start_bundle()
        self._pending = collections.deque()

    def process(self, element):
        replayed = self.replay(element)
        if replayed is not None:
            yield from replayed
            return
        self._pending.append((element, time.time(), self.submit(element)))
        if len(self._pending) >= self.in_flight:
            concurrent.futures.wait([future for _, _, future in self._pending],
                                    return_when=concurrent.futures.FIRST_COMPLETED)
        yield from self._settle_done()

    def finish_bundle(self):
        while self._pending:
            concurrent.futures.wait([future for _, _, future in self._pending],
                                    return_when=concurrent.futures.FIRST_COMPLETED)
            yield from map(in_global_window, self._settle_done())
        yield from map(in_global_window, self._record_done(force=True))
        progress.flush()

    def _settle_done(self) -> list:
        """The outputs of every pending element that has finished, which leave the queue."""
        done = [entry for entry in self._pending if entry[2].done()]
        if not done:
            return []
        settled = {id(entry) for entry in done}  # taken once: a future that finishes meanwhile waits its turn
        self._pending = collections.deque(entry for entry in self._pending if id(entry) not in settled)
        outputs = []
        for element, started, future in done:
            # A head start's call is timed when it really ran, not from when the stage took it.
            ran = head_start.ran(future) or (started,)
            outputs += self.settle(element, lambda: self.outputs(element, future.result()), *ran)
        return outputs


class IsolatedStageDoFn(ConcurrentStageDoFn):
    """A stage whose work runs in isolated child processes (transforms/runtime/isolation.py), several at once.

    Subclasses write ``call(element) -> (function, args)`` (a module-level function the child
    runs) and ``outputs(element, result) -> iterable``. ``threads`` caps the children's native
    thread pools (transforms/runtime/native_threads.py). Up to ``2 * processes`` elements are in
    flight.
    """

    def __init__(self, processes: int, timeout_s: float, memory_limit_mb: int | None, threads: int | None = None):
        self._processes = processes
        self._timeout_s = timeout_s
        self._memory_limit_mb = memory_limit_mb
        self._threads = threads
        self._pool = None
        self.in_flight = 2 * processes

    # Modules the children import as they start (the stage's core and its native library).
    preload: tuple[str, ...] = ()

    def call(self, element):
        raise NotImplementedError

    def warm(self, pipeline: beam.Pipeline) -> "IsolatedStageDoFn":
        """Start this stage's children now, where the pipeline will run in this process (the local
        runner's default): they import their libraries while the rest of the pipeline is built
        and the runner starts, instead of after (about a second of every local run)."""
        if runs_in_this_process(pipeline.options):
            self._shared_pool()
        return self

    def _shared_pool(self):
        return shared_pool(self._processes, self._memory_limit_mb, self._threads, self.preload)

    def start_bundle(self):
        if self._pool is None:
            self._pool = self._shared_pool()
        super().start_bundle()

    def job(self, element) -> tuple:
        """The function the child runs for ``element`` and its arguments."""
        function, args = self.call(element)
        if self.staging is not None:  # the child stages what it makes: records come back, not pixels
            function, args = staged_call, (self.staging, function, *args)
        return function, args

    def start_call(self, job: tuple):
        """Start ``job`` on this stage's children; its Future. (A head start calls this on the DoFn
        before the pipeline is pickled, which must not hold the pool: it is looked up.)"""
        pool = self._pool if self._pool is not None else self._shared_pool()
        function, args = job
        return pool.submit(self._timeout_s, function, *args)

    def submit(self, element):
        job = self.job(element)
        early = head_start.take(self.stage, self.ref(element), job)
        if early is not None:
            return early
        head_start.stop()  # the pipeline makes its own calls: a head start would compete with them
        return self.start_call(job)


class ThreadedStageDoFn(ConcurrentStageDoFn):
    """A stage whose ``run(element)`` waits on the network: ``threads`` threads of this worker
    process run it, ``2 * threads`` elements in flight (img2dataset's thread pool per process)."""

    def __init__(self, threads: int):
        self._threads = threads
        self._executor = None
        self.in_flight = 2 * threads

    def start_bundle(self):
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(self._threads, thread_name_prefix=self.stage)
        super().start_bundle()

    def submit(self, element):
        return self._executor.submit(self._run_and_stage, element)

    def _run_and_stage(self, element) -> list:
        # Staged in the thread that made them (a packed append), so the bundle's thread only settles.
        outputs = list(self.run(element))
        if self.staging is None:
            return outputs
        return [self.staging.stage(output, packed=True) if isinstance(output, Sample) else output
                for output in outputs]

    def outputs(self, element, result):
        return result

    def teardown(self):
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def in_global_window(output):
    """An output emitted from ``finish_bundle`` (tagged or not), placed in the global window, as
    Beam asks of what a bundle's end emits; our stages run in batch pipelines."""
    if isinstance(output, beam.pvalue.TaggedOutput):
        return beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
    return GlobalWindows.windowed_value(output)


def runs_in_this_process(options) -> bool:
    """Whether a pipeline with these options runs its DoFns in this process: the local runner in
    its default in-memory (or multi-threading) mode, and not a dry run."""
    every = options.get_all_options()
    return (every.get("runner") in (None, "FnApiRunner", "DirectRunner")
            and every.get("direct_running_mode") in (None, "in_memory", "multi_threading")
            and not every.get("dry_run"))
