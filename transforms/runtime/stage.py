"""The DoFns every stage wrapper builds on: results on the main output, reject rows on a tagged one."""

from __future__ import annotations

import collections
import logging
import time

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from vlcurate.transforms.runtime import progress
from vlcurate.transforms.runtime.isolation import shared_pool
from vlcurate.transforms.data.rejects import Reject, RejectRecord

REJECTS = "rejects"
_LOG = logging.getLogger(__name__)


class StageDoFn(beam.DoFn):
    """Subclasses set ``stage``, write ``run(element)`` and ``ref(element) -> (uri, locator)``.

    ``run`` raises ``Reject`` for expected bad input; any other exception is a bug, but it still
    costs only this element: it becomes an ``internal_error`` row naming the exception. An element
    gives either all of its outputs or one reject. Counters: ``<stage>/outputs``, ``<stage>/<reason>``.
    """

    stage = "stage"

    def run(self, element):
        raise NotImplementedError

    def ref(self, element) -> tuple[str, str]:
        raise NotImplementedError

    def process(self, element):
        yield from self.settle(element, lambda: self.run(element))

    def settle(self, element, compute, started: float | None = None) -> list:
        """``compute()``'s outputs, or the one reject row its failure becomes; counted and timed
        (from ``started``, a time.time(), by default now) for progress and the manifest."""
        started = time.time() if started is None else started
        try:
            outputs = list(compute())
        except Reject as reject:
            progress.record(self.stage, started, 0, reject.reason)
            return [self._reject(element, reject.reason, reject.detail)]
        except Exception as error:
            _LOG.exception("%s: unexpected error on %s", self.stage, self.ref(element))
            progress.record(self.stage, started, 0, "internal_error")
            return [self._reject(element, "internal_error", f"{type(error).__name__}: {error}")]
        # Outputs are the main output's elements; a tagged side row (a review-queue row) is not one.
        produced = sum(not isinstance(output, beam.pvalue.TaggedOutput) for output in outputs)
        Metrics.counter(self.stage, "outputs").inc(produced)
        progress.record(self.stage, started, produced, None)
        return outputs

    def _reject(self, element, reason: str, detail: str):
        Metrics.counter(self.stage, reason).inc()
        uri, locator = self.ref(element)
        record = RejectRecord(stage=self.stage, reason=reason, uri=uri, locator=locator, detail=detail[:2000])
        return beam.pvalue.TaggedOutput(REJECTS, record)


class IsolatedStageDoFn(StageDoFn):
    """A stage whose work runs in isolated child processes (transforms/runtime/isolation.py), several at once.

    Subclasses write ``call(element) -> (function, args)`` (a module-level function the child
    runs) and ``outputs(element, result) -> iterable``. ``threads`` caps the children's native
    thread pools (transforms/runtime/native_threads.py). Up to ``2 * processes`` elements are in
    flight; results leave as they finish, the rest at the end of the bundle. Outputs emitted at
    the end of a bundle are placed in the global window: these stages run in batch pipelines.
    """

    def __init__(self, processes: int, timeout_s: float, memory_limit_mb: int | None, threads: int | None = None):
        self._processes = processes
        self._timeout_s = timeout_s
        self._memory_limit_mb = memory_limit_mb
        self._threads = threads
        self._pool = None
        self._pending = collections.deque()

    def call(self, element):
        raise NotImplementedError

    def outputs(self, element, result):
        raise NotImplementedError

    def start_bundle(self):
        if self._pool is None:
            self._pool = shared_pool(self._processes, self._memory_limit_mb, self._threads)
        self._pending = collections.deque()

    def process(self, element):
        function, args = self.call(element)
        self._pending.append((element, time.time(), self._pool.submit(self._timeout_s, function, *args)))
        while self._pending and (len(self._pending) >= 2 * self._processes or self._pending[0][2].done()):
            yield from self._settle_oldest()

    def finish_bundle(self):
        while self._pending:
            for output in self._settle_oldest():
                if isinstance(output, beam.pvalue.TaggedOutput):
                    yield beam.pvalue.TaggedOutput(output.tag, GlobalWindows.windowed_value(output.value))
                else:
                    yield GlobalWindows.windowed_value(output)

    def _settle_oldest(self):
        element, started, future = self._pending.popleft()
        return self.settle(element, lambda: self.outputs(element, future.result()), started)
