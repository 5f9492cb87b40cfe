"""ThreadedStageDoFn: elements run on a thread pool, several in flight; a slow one does not hold
back those behind it, a Reject is that element's one reject row, and nothing is lost at the end."""

from __future__ import annotations

import threading
import time

import apache_beam as beam

from vlcurate.transforms.data.rejects import Reject
from vlcurate.transforms.runtime.stage import REJECTS, ThreadedStageDoFn


class Echo(ThreadedStageDoFn):
    stage = "echo"

    def __init__(self, threads, release):
        super().__init__(threads)
        self.release = release

    def ref(self, element):
        return str(element), ""

    def run(self, element):
        if element == 0:
            self.release.wait(10)  # the slow one: waits until the test lets it go
        if element == 3:
            raise Reject("bad_input", "three is refused")
        return [element * 10]


def test_a_slow_element_does_not_hold_back_the_others_and_nothing_is_lost():
    release = threading.Event()
    stage = Echo(threads=2, release=release)
    stage.start_bundle()
    early = []
    for element in range(8):
        early += list(stage.process(element))
        time.sleep(0.05)
    kept, _ = _split(early)
    assert 0 not in kept and len(kept) >= 4  # the others went past element 0, still waiting
    release.set()
    rest = list(stage.finish_bundle())  # element 0, in the global window
    stage.teardown()
    kept, rejects = _split([*early, *rest])
    assert sorted(kept) == [0, 10, 20, 40, 50, 60, 70]
    assert [(row.reason, row.uri) for row in rejects] == [("bad_input", "3")]


def _split(items) -> tuple[list, list]:
    """(main outputs, reject rows), each unwrapped from the window a bundle's end puts it in."""
    kept, rejects = [], []
    for item in items:
        if isinstance(item, beam.pvalue.TaggedOutput):
            assert item.tag == REJECTS
            rejects.append(getattr(item.value, "value", item.value))
        else:
            kept.append(getattr(item, "value", item))
    return kept, rejects
