"""The DoFn every stage wrapper builds on: results on the main output, reject rows on a tagged one."""

from __future__ import annotations

import logging

import apache_beam as beam
from apache_beam.metrics import Metrics

from vlcurate.transforms.rejects import Reject, RejectRecord

REJECTS = "rejects"
_LOG = logging.getLogger(__name__)


class StageDoFn(beam.DoFn):
    """Subclasses set ``stage``, write ``run(element)`` and ``ref(element) -> (uri, locator)``.

    ``run`` raises ``Reject`` for expected bad input; any other exception is a bug, but it still
    costs only this element: it becomes an ``internal_error`` row naming the exception. ``run``
    should raise before it yields, so an element is either all outputs or one reject.
    Counters: ``<stage>/outputs`` and ``<stage>/<reason>``.
    """

    stage = "stage"

    def run(self, element):
        raise NotImplementedError

    def ref(self, element) -> tuple[str, str]:
        raise NotImplementedError

    def process(self, element):
        try:
            outputs = list(self.run(element))
        except Reject as reject:
            yield self._reject(element, reject.reason, reject.detail)
            return
        except Exception as error:
            _LOG.exception("%s: unexpected error on %s", self.stage, self.ref(element))
            yield self._reject(element, "internal_error", f"{type(error).__name__}: {error}")
            return
        Metrics.counter(self.stage, "outputs").inc(len(outputs))
        yield from outputs

    def _reject(self, element, reason: str, detail: str):
        Metrics.counter(self.stage, reason).inc()
        uri, locator = self.ref(element)
        record = RejectRecord(stage=self.stage, reason=reason, uri=uri, locator=locator, detail=detail[:2000])
        return beam.pvalue.TaggedOutput(REJECTS, record)
