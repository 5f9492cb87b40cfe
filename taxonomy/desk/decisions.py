"""The editors' decisions: an append-only JSON-lines log under ``DATASET/review/decisions.jsonl``.

Every decision is one line, written and flushed to disk before the desk answers, so a crash or a
restart loses nothing and the desk resumes where the editors were. A line is never rewritten: an
undo is a line of its own that names the line it takes back. A key's label is the last of its
``label`` lines not taken back, so the log is also its own history (who, when, the previous label).

Lines (``schema`` ``vlcurate.review-decision/1``):
  {"seq": N, "action": "label", "key", "label", "previous", "editor", "time", "text", "via"}
  {"seq": N, "action": "undo", "key", "undoes": SEQ, "label": the label it restores, "editor", "time"}
``text`` is what the labeler reads, so `vlcurate taxonomy train --examples` learns from the log as
it stands (``examples``); ``via`` says where the decision came from (desk, label-studio).
"""

from __future__ import annotations

import datetime
import json
import os
import threading

from vlcurate.transforms.data.review import decisions_path

SCHEMA = "vlcurate.review-decision/1"
MAX_LINE_BYTES = 4 * 1024 * 1024  # a line holds one sample's user text; anything bigger is not ours


class DecisionsError(ValueError):
    """A decisions log that cannot be read: names the file and line."""


def is_decisions_log(path: str) -> bool:
    """Whether ``path`` is a desk log (its first line says so), not a plain examples file."""
    try:
        with open(path, encoding="utf-8") as handle:
            first = handle.readline(MAX_LINE_BYTES)
        return json.loads(first).get("schema") == SCHEMA
    except (OSError, ValueError, AttributeError):
        return False


def now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


class DecisionLog:
    """The log of one dataset, folded in memory: ``labels()`` is each decided key's line.

    One process owns the log (the desk, or an import); its methods are safe across threads (the
    web server answers requests on a thread pool)."""

    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._stacks: dict[str, list[dict]] = {}  # key -> its label lines not taken back, oldest first
        self._by_editor: dict[str, list[int]] = {}  # editor -> seqs of their label lines, to undo
        self._lines: dict[int, dict] = {}
        self._seq = 0
        if os.path.exists(self.path):
            self._load()

    @classmethod
    def of(cls, dataset: str) -> "DecisionLog":
        return cls(decisions_path(dataset))

    def _load(self) -> None:
        with open(self.path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if not line.endswith(b"\n"):
                    break  # a line cut by a crash mid-write: it was never acknowledged
                try:
                    doc = json.loads(line)
                except ValueError as error:
                    raise DecisionsError(f"{self.path}:{number}: not JSON ({error})") from None
                if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
                    raise DecisionsError(f"{self.path}:{number}: not a {SCHEMA} line")
                self._fold(doc)

    def _fold(self, doc: dict) -> None:
        self._seq = max(self._seq, doc["seq"])
        self._lines[doc["seq"]] = doc
        if doc["action"] == "label":
            self._stacks.setdefault(doc["key"], []).append(doc)
            self._by_editor.setdefault(doc["editor"], []).append(doc["seq"])
        elif doc["action"] == "undo":
            stack = self._stacks.get(doc["key"], [])
            undone = self._lines.get(doc["undoes"])
            if undone in stack:
                stack.remove(undone)
            if not stack:
                self._stacks.pop(doc["key"], None)
            mine = self._by_editor.get(undone["editor"] if undone else "", [])
            if doc["undoes"] in mine:
                mine.remove(doc["undoes"])

    def _append(self, doc: dict) -> dict:
        self._seq += 1
        doc = {"schema": SCHEMA, "seq": self._seq, "time": now(), **doc}
        data = json.dumps(doc, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        # One write of the whole line to a file opened for appending: lines never interleave, and
        # fsync before answering, so an acknowledged decision survives a crash.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        self._fold(doc)
        return doc

    def label(self, key: str, label: str, editor: str, text: str, previous: str | None, via: str = "desk") -> dict:
        """Record ``label`` for ``key``; ``previous``: the sample's label before (its own or the
        last decision's)."""
        with self._lock:
            current = self._stacks.get(key)
            before = current[-1]["label"] if current else previous
            return self._append({"action": "label", "key": key, "label": label, "previous": before,
                                 "editor": editor, "text": text, "via": via})

    def undo_last(self, editor: str) -> dict | None:
        """Take back ``editor``'s last decision not yet taken back; the undo line, or None."""
        with self._lock:
            mine = self._by_editor.get(editor) or []
            if not mine:
                return None
            undone = self._lines[mine[-1]]
            stack = [doc for doc in self._stacks.get(undone["key"], []) if doc is not undone]
            restored = stack[-1]["label"] if stack else undone["previous"]
            return self._append({"action": "undo", "key": undone["key"], "undoes": undone["seq"],
                                 "label": restored, "editor": editor})

    def current(self, key: str) -> dict | None:
        """The label line in force for ``key``, or None when it is undecided."""
        stack = self._stacks.get(key)
        return stack[-1] if stack else None

    def labels(self) -> dict[str, dict]:
        """key -> the label line in force, for every decided key."""
        with self._lock:
            return {key: stack[-1] for key, stack in self._stacks.items()}

    def __contains__(self, key: str) -> bool:
        return key in self._stacks

    def __len__(self) -> int:
        return len(self._stacks)


def examples(path: str) -> list[tuple[int, str, str]]:
    """(seq, text, label) of every decision in force in a log: what `taxonomy train` learns."""
    in_force = DecisionLog(path).labels().values()
    return [(doc["seq"], doc["text"], doc["label"]) for doc in sorted(in_force, key=lambda doc: doc["seq"])]
