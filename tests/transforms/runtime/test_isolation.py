"""Isolated child processes: values, reuse, timeouts, native crashes, out of memory, pools.

Everything here runs real children (``python -m vlcurate.transforms.runtime.isolation``). Functions sent to
a child travel by module and name, so only stdlib and vlcurate functions are used, never ones
defined in this file.
"""

from __future__ import annotations

import builtins
import ctypes
import hashlib
import math
import os
import signal
import threading
import time

import pytest

from fixtures import pdf as pdf_fixtures
from vlcurate.transforms.sources.pdf import core as pdf
from vlcurate.transforms.runtime.isolation import IsolatedError, IsolatedPool, IsolatedWorker, shared_pool
from vlcurate.transforms.data.rejects import Reject

# Generous: a fresh child starts Python and imports what the call needs (PyMuPDF for PDF calls).
START_TIMEOUT = 30.0


@pytest.fixture
def worker():
    made = IsolatedWorker()
    yield made
    made.close()


@pytest.fixture
def make_pool():
    pools = []

    def make(size, memory_limit_mb=None):
        pools.append(IsolatedPool(size, memory_limit_mb))
        return pools[-1]

    yield make
    for pool in pools:
        pool.close()


def is_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


# --- plain calls --------------------------------------------------------------------------------


def test_call_runs_in_a_child_that_is_reused(worker):
    child = worker.call(START_TIMEOUT, os.getpid)
    assert child != os.getpid()
    assert worker.call(5, math.factorial, 20) == 2432902008176640000
    assert worker.call(5, os.path.join, "a", "b") == "a/b"
    assert worker.call(5, os.getpid) == child


def test_close_ends_the_child_and_a_later_call_starts_another(worker):
    child = worker.call(START_TIMEOUT, os.getpid)
    worker.close()
    assert is_gone(child)
    again = worker.call(START_TIMEOUT, os.getpid)
    assert again not in (child, os.getpid())


def test_a_child_is_replaced_after_its_calls_so_its_memory_cannot_grow_with_the_run():
    worker = IsolatedWorker(recycle_after=3)
    try:
        pids = [worker.call(START_TIMEOUT, os.getpid) for _ in range(7)]
    finally:
        worker.close()
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] == pids[5] != pids[6]
    assert is_gone(pids[0]) and is_gone(pids[3])  # the old children exited, reaped


# --- timeouts and crashes -----------------------------------------------------------------------


def test_timeout_kills_the_child_and_the_next_call_gets_a_new_one(worker):
    child = worker.call(START_TIMEOUT, os.getpid)
    started = time.monotonic()
    with pytest.raises(Reject) as caught:
        worker.call(0.5, time.sleep, 30)
    elapsed = time.monotonic() - started
    assert caught.value.reason == "timeout"
    assert "sleep" in caught.value.detail
    assert 0.45 <= elapsed < 10  # cut at 0.5 s, not after the 30 s sleep (generous: a busy 2-core machine)
    assert is_gone(child)  # the hung child was killed and reaped, not left running
    fresh = worker.call(START_TIMEOUT, os.getpid)
    assert fresh != child


@pytest.mark.parametrize(
    ("function", "args", "exit_code"),
    [
        (os.abort, (), -signal.SIGABRT),
        (os._exit, (3,), 3),
        (ctypes.string_at, (0,), -signal.SIGSEGV),  # a real segfault: reads address 0
    ],
    ids=["abort", "exit3", "segfault"],
)
def test_a_crash_is_a_reject_and_the_next_call_works(worker, function, args, exit_code):
    child = worker.call(START_TIMEOUT, os.getpid)
    with pytest.raises(Reject) as caught:
        worker.call(10, function, *args)
    assert caught.value.reason == "worker_crashed"
    assert f"exited with {exit_code}" in caught.value.detail
    fresh = worker.call(START_TIMEOUT, os.getpid)
    assert fresh != child
    assert worker.call(5, math.factorial, 5) == 120


# --- outcomes carried back ----------------------------------------------------------------------


def test_a_reject_in_the_child_comes_back_as_is(worker):
    with pytest.raises(Reject) as local:
        pdf.open_pdf(pdf_fixtures.NOT_A_PDF)
    with pytest.raises(Reject) as remote:
        worker.call(START_TIMEOUT, pdf.open_pdf, pdf_fixtures.NOT_A_PDF)
    assert remote.value.reason == local.value.reason == "not_pdf"
    assert remote.value.detail == local.value.detail
    child = worker.call(5, os.getpid)
    # A reject is an ordinary outcome: the child carries on.
    with pytest.raises(Reject) as encrypted:
        worker.call(10, pdf.open_pdf, pdf_fixtures.encrypted_pdf())
    assert encrypted.value.reason == "pdf_encrypted"
    assert worker.call(5, os.getpid) == child


def test_inspect_uri_in_the_child_matches_the_parent(worker, tmp_path):
    config = pdf.PdfConfig()
    cases = {
        "text.pdf": (pdf_fixtures.text_pdf(3, title="Both"), None),
        "truncated.pdf": (pdf_fixtures.truncated_pdf(), "pdf_corrupt"),
        "zero.pdf": (pdf_fixtures.zero_page_pdf(), "pdf_empty"),
        "gif.pdf": (pdf_fixtures.NOT_A_PDF, "not_pdf"),
    }
    for name, (data, reason) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        if reason is None:
            tasks = worker.call(START_TIMEOUT, pdf.inspect_uri, str(path), len(data), config)
            assert tasks == pdf.inspect_uri(str(path), len(data), config)
            assert [task.page_index for task in tasks] == [0, 1, 2]
            assert tasks[0].file_sha256 == hashlib.sha256(data).hexdigest()
        else:
            with pytest.raises(Reject) as caught:
                worker.call(START_TIMEOUT, pdf.inspect_uri, str(path), len(data), config)
            assert caught.value.reason == reason, name
    pdf._OPEN_DOCUMENTS.clear()


def test_an_unexpected_exception_is_an_isolated_error(worker):
    child = worker.call(START_TIMEOUT, os.getpid)
    with pytest.raises(IsolatedError) as caught:
        worker.call(5, int, "not a number")
    assert str(caught.value).startswith("ValueError")
    assert "not a number" in str(caught.value)
    with pytest.raises(IsolatedError, match="FileNotFoundError"):
        worker.call(5, os.stat, "/nonexistent/vlcurate/file")
    assert worker.call(5, os.getpid) == child  # not a crash: the same child goes on


def test_a_result_that_cannot_be_sent_back_is_an_isolated_error_not_a_crash(worker):
    # A lock cannot be pickled: a bug in the stage, which must not read as a bad input.
    with pytest.raises(IsolatedError, match="cannot send the result"):
        worker.call(10, threading.Lock)
    assert worker.call(10, str.upper, "still here") == "STILL HERE"


def test_child_output_cannot_corrupt_the_protocol(worker, capfd):
    child = worker.call(START_TIMEOUT, os.getpid)
    assert worker.call(5, builtins.print, "vlcurate-print-noise " * 50) is None
    assert worker.call(5, os.write, 1, b"vlcurate-fd1-noise\n") == len(b"vlcurate-fd1-noise\n")
    assert worker.call(5, math.factorial, 6) == 720
    assert worker.call(5, os.getpid) == child
    # The child's stdout went to stderr, not into the reply pipe.
    assert "vlcurate-fd1-noise" in capfd.readouterr().err


# --- memory -------------------------------------------------------------------------------------


def test_memory_limit_turns_a_huge_allocation_into_a_reject():
    limited = IsolatedWorker(memory_limit_mb=300)
    try:
        child = limited.call(START_TIMEOUT, os.getpid)
        with pytest.raises(Reject) as caught:
            limited.call(30, bytes, 10**9)
        assert caught.value.reason == "worker_crashed"
        assert "memory" in caught.value.detail
        assert limited.call(10, math.factorial, 7) == 5040
        assert limited.call(10, len, b"x" * 1000) == 1000
        assert limited.call(5, os.getpid) == child
    finally:
        limited.close()


# --- the slow PDF -------------------------------------------------------------------------------


@pytest.mark.e2e
def test_slow_page_times_out_and_the_worker_renders_the_next_pdf(tmp_path):
    config = pdf.PdfConfig(page_size=256, page_timeout_s=1.0)
    slow = tmp_path / "slow.pdf"
    slow.write_bytes(pdf_fixtures.slow_pdf())
    good_data = pdf_fixtures.text_pdf(2, "after")
    good = tmp_path / "good.pdf"
    good.write_bytes(good_data)

    isolated = IsolatedWorker(config.worker_memory_mb)
    try:
        tasks = isolated.call(START_TIMEOUT, pdf.inspect_uri, str(slow), slow.stat().st_size, config)
        assert len(tasks) == 1
        started = time.monotonic()
        with pytest.raises(Reject) as caught:
            isolated.call(config.page_timeout_s, pdf.render_page_of_uri, tasks[0], config)
        elapsed = time.monotonic() - started
        assert caught.value.reason == "timeout"
        assert 0.9 <= elapsed < 10  # cut at the page timeout, not after the whole render

        good_tasks = isolated.call(START_TIMEOUT, pdf.inspect_uri, str(good), len(good_data), config)
        sample = isolated.call(10, pdf.render_page_of_uri, good_tasks[1], config)
        assert sample.text == "after heading 2\n\nBody text of after page 2."
        assert sample.locator == "page=2"
        # A child renders the same bytes as this process does.
        local = pdf.render_page(pdf.open_pdf(good_data), good_tasks[1], config)
        assert sample.members() == local.members()
    finally:
        isolated.close()


# --- pools --------------------------------------------------------------------------------------


@pytest.mark.e2e
def test_pool_runs_its_children_concurrently(make_pool):
    pool = make_pool(2)
    # Start both children first (each of two concurrent calls holds its own worker).
    warm = [pool.submit(START_TIMEOUT, time.sleep, 0.3) for _ in range(2)]
    assert [future.result() for future in warm] == [None, None]

    started = time.monotonic()
    futures = [pool.submit(10, time.sleep, 0.5) for _ in range(4)]
    assert [future.result(timeout=10) for future in futures] == [None] * 4
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 1.8  # two at a time: two rounds of 0.5 s, not one and not four


def test_a_crash_in_a_pool_costs_only_its_own_call(make_pool):
    pool = make_pool(2)
    futures = [
        pool.submit(START_TIMEOUT, time.sleep, 0.2),
        pool.submit(START_TIMEOUT, os.abort),
        pool.submit(START_TIMEOUT, math.factorial, 10),
        pool.submit(START_TIMEOUT, time.sleep, 0.2),
        pool.submit(START_TIMEOUT, os.getpid),
    ]
    crashed = futures[1].exception(timeout=60)
    assert isinstance(crashed, Reject)
    assert crashed.reason == "worker_crashed"
    assert futures[0].result(timeout=60) is None
    assert futures[2].result(timeout=60) == 3628800
    assert futures[3].result(timeout=60) is None
    assert futures[4].result(timeout=60) != os.getpid()
    assert pool.submit(START_TIMEOUT, math.factorial, 4).result(timeout=60) == 24


def test_shared_pool_is_one_per_size_and_memory_limit():
    first = shared_pool(3, 1234)
    assert shared_pool(3, 1234) is first
    assert first.size == 3
    assert shared_pool(2, 1234) is not first
    assert shared_pool(3, None) is not first


def test_a_function_named_as_module_colon_name_is_imported_by_the_child_only(worker):
    child = worker.call(START_TIMEOUT, "os:getpid")
    assert child != os.getpid()
    assert worker.call(5, "vlcurate.transforms.sources.pdf.core:clean_text", "a\x00b") == "ab"
    with pytest.raises(IsolatedError, match="ModuleNotFoundError"):
        worker.call(5, "vlcurate.no_such_module:f")
    assert worker.call(5, "os:getpid") == child  # not a crash


def test_children_get_their_share_of_native_threads():
    # Without a cap each onnxruntime session in a child takes every core (intra-op threads 0,
    # "all"); with one, sessions made with default options (as pymupdf-layout makes them) use it.
    from vlcurate.transforms.ocr.config import ppocr_model_paths

    model = ppocr_model_paths()["cls"]
    capped, free = IsolatedWorker(threads=1), IsolatedWorker()
    try:
        assert capped.call(START_TIMEOUT, "vlcurate.transforms.runtime.native_threads:session_threads", model) == ("1", 1)
        assert free.call(START_TIMEOUT, "vlcurate.transforms.runtime.native_threads:session_threads", model)[1] == 0
    finally:
        capped.close()
        free.close()


def test_prestarted_children_are_adopted_by_the_pool_of_their_shape_with_its_memory_limit():
    import resource

    from vlcurate.transforms.runtime import isolation

    shape = (3, ("json",))  # three native threads, preloading json: a shape no other test's pool has
    isolation.prestart(2, *shape)
    spares = {worker._process.pid for worker in isolation._SPARES[shape]}
    assert len(spares) == 2
    pool = IsolatedPool(2, 300, threads=3, preload=("json",))
    try:
        # Both calls at once, so that each child answers one.
        calls = [pool.submit(START_TIMEOUT, time.sleep, 0.5), pool.submit(START_TIMEOUT, time.sleep, 0.5)]
        assert [call.result(timeout=60) for call in calls] == [None, None]
        pids = {pool.submit(10, os.getpid).result(timeout=60) for _ in range(6)}
        assert pids == spares
        limit = 300 * 1024 * 1024
        limits = {tuple(pool.submit(10, resource.getrlimit, resource.RLIMIT_AS).result(timeout=60)) for _ in range(4)}
        assert limits == {(limit, limit)}  # each child's, set before its first call
        assert isolation._SPARES[shape] == []  # adopted: a second pool of the shape starts its own
    finally:
        pool.close()
    assert all(is_gone(pid) for pid in spares)
