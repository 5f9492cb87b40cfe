"""A child process for native-code calls: a crash or a hang costs one input, not the run.

PyMuPDF (MuPDF, C) can crash or spin forever on hostile files, and a thread cannot be stopped.
``IsolatedWorker`` keeps one long-lived child per owner (a DoFn instance), sends it calls over a
pipe, and waits with a deadline: on a timeout the child is killed, on a crash it is gone; either
way the call becomes a ``Reject`` and a fresh child starts for the next call. Because each DoFn
instance owns its child, the threads of a Beam SDK worker render in separate processes, which is
also what PyMuPDF's lack of thread safety asks for.
"""

from __future__ import annotations

import logging
import multiprocessing

from vlcurate.transforms.rejects import Reject

_LOG = logging.getLogger(__name__)
# spawn, not fork: the parent holds gRPC threads (Beam's SDK harness) that fork would copy badly.
_CONTEXT = multiprocessing.get_context("spawn")


class IsolatedError(RuntimeError):
    """An unexpected exception inside the child, carried back as its type name and message."""


def _serve(connection, memory_limit_mb: int | None) -> None:
    """The child's loop: run each (function, args) it is sent and send back the outcome."""
    if memory_limit_mb:
        import resource

        limit = memory_limit_mb * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    while True:
        try:
            message = connection.recv()
        except EOFError:
            return
        if message is None:
            return
        function, args = message
        try:
            outcome = ("ok", function(*args))
        except Reject as reject:
            outcome = ("reject", reject.reason, reject.detail)
        except MemoryError:
            outcome = ("reject", "worker_crashed", "out of memory in the isolated worker")
        except Exception as error:  # carried to the parent, which turns it into a reject row
            outcome = ("error", f"{type(error).__name__}: {error}")
        connection.send(outcome)


class IsolatedWorker:
    """One child process that runs module-level functions with a time limit per call."""

    def __init__(self, memory_limit_mb: int | None = None):
        self._memory_limit_mb = memory_limit_mb
        self._process = None
        self._connection = None

    def call(self, timeout_s: float, function, *args):
        """``function(*args)`` in the child; ``Reject`` for a timeout, a crash or a Reject inside."""
        self._ensure_started()
        try:
            self._connection.send((function, args))
            if not self._connection.poll(timeout_s):
                self._stop(kill=True)
                raise Reject("timeout", f"{function.__name__} took over {timeout_s:g}s")
            outcome = self._connection.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            exit_code = self._process.exitcode if self._process else None
            self._stop(kill=True)
            raise Reject("worker_crashed", f"{function.__name__}: child exited with {exit_code}") from None
        if outcome[0] == "ok":
            return outcome[1]
        if outcome[0] == "reject":
            raise Reject(outcome[1], outcome[2])
        raise IsolatedError(outcome[1])

    def close(self) -> None:
        self._stop(kill=False)

    def _ensure_started(self) -> None:
        if self._process is not None and self._process.is_alive():
            return
        self._stop(kill=True)
        parent_end, child_end = _CONTEXT.Pipe()
        self._process = _CONTEXT.Process(
            target=_serve, args=(child_end, self._memory_limit_mb), daemon=True, name="vlcurate-isolated"
        )
        self._process.start()
        child_end.close()
        self._connection = parent_end

    def _stop(self, kill: bool) -> None:
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if connection is not None:
            try:
                if not kill:
                    connection.send(None)
            except OSError:
                pass
            connection.close()
        if process is not None:
            if kill and process.is_alive():
                process.kill()
            process.join(timeout=5)
            if process.is_alive():
                _LOG.warning("isolated worker %s did not exit; killing it", process.pid)
                process.kill()
                process.join()

    def __del__(self):
        # Best effort; daemon children also die with their parent.
        if self._process is not None:
            self._stop(kill=True)
