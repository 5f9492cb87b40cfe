"""One writer per dataset: a lock file in the output folder while a run writes it.

Two runs into one output at once would interleave shards, staging and manifests. The second is
refused before anything starts, with who holds the lock. A lock left by a run that was killed on
this machine (its process is gone) is taken over: that is the `--mode resume` case. On gs:// the
check is best effort (no atomic create): the lock still stops the ordinary mistake of starting the
same job twice.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket

from vlcurate.transforms.io.files import open_for_reading, write_bytes

LOCK = ".vlcurate.lock"


class OutputLocked(Exception):
    """Another live run is writing this output."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def _holder(path: str) -> dict | None:
    try:
        with open_for_reading(path) as handle:
            return json.loads(handle.read().decode("utf-8"))
    except (OSError, ValueError):
        return None


def acquire(output: str) -> str:
    """Take the output's lock; ``OutputLocked`` says who holds it. Returns the lock's path."""
    path = f"{output.rstrip('/')}/{LOCK}"
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "since": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    data = json.dumps(me, sort_keys=True).encode("utf-8")
    if "://" not in path:
        os.makedirs(output, exist_ok=True)
        for _ in range(2):
            try:
                descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _holder(path) or {}
                if holder.get("host") == me["host"] and isinstance(holder.get("pid"), int) \
                        and not _alive(holder["pid"]):
                    os.unlink(path)  # its run was killed: this one may take over (resume)
                    continue
                raise OutputLocked(_message(output, path, holder)) from None
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(data)
            return path
        raise OutputLocked(_message(output, path, _holder(path) or {}))
    holder = _holder(path)
    if holder is not None:
        raise OutputLocked(_message(output, path, holder))
    write_bytes(path, data)
    return path


def release(path: str) -> None:
    from apache_beam.io.filesystems import FileSystems

    with contextlib.suppress(Exception):
        FileSystems.delete([path])


@contextlib.contextmanager
def locked(output: str):
    """Hold the output's lock for the ``with`` block (a dry run writes nothing and takes none)."""
    path = acquire(output)
    try:
        yield path
    finally:
        release(path)


def _message(output: str, path: str, holder: dict) -> str:
    who = f"pid {holder.get('pid')} on {holder.get('host')} since {holder.get('since')}" if holder else "another run"
    return (f"{output} is being written by another run ({who}): wait for it to finish, "
            f"or delete {path} if that run is gone")
