"""The desk's queue: which sample an editor sees next, with filters, counts and leases.

Items under review come first, lowest confidence first (the queue files under ``review/``); then
every other sample of the index, by key, for an editor who filters for them. An item an editor has
open is leased to that editor's session until the lease expires or the editor decides or skips it,
so two editors on one desk never get the same item. Nothing here is written to disk: leases are
short-lived by design, and the decisions are the log's (decisions.py).
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time

from vlcurate.transforms.data.review import REVIEW_STATUS
from vlcurate.transforms.label.queue import dataset_queue

FILTERS = ("source", "category", "language", "node", "status")
MAX_SEARCH = 200  # characters of a text search


class Conflict(PermissionError):
    """Another editor holds the item, or decided it meanwhile."""


@dataclasses.dataclass
class Item:
    key: str
    shard: str  # the shard's name, "sft-000000"
    number: int  # the sample's position in its shard
    source: str
    category: str
    language: str
    status: str  # review | labelled | reviewed | unlabelled
    label: str | None  # the sample's own taxonomy id
    confidence: float | None
    search: str  # lowercased text the text search looks in
    row: dict | None = None  # its review-queue row, for items under review

    def main(self) -> str:
        label = self.label or (self.row or {}).get("main") or ""
        return label.split("/", 1)[0]


@dataclasses.dataclass(frozen=True)
class Filter:
    source: str = ""
    category: str = ""
    language: str = ""
    node: str = ""  # a taxonomy id: the item's label or, under review, its main category is under it
    status: str = REVIEW_STATUS  # "" for any sample
    min_confidence: float | None = None
    max_confidence: float | None = None
    text: str = ""

    @classmethod
    def of(cls, params) -> "Filter":
        """From query parameters; a bad number is a ValueError with the parameter's name."""
        values = {name: str(params.get(name, "") or "")[:MAX_SEARCH] for name in (*FILTERS, "text")}
        values["status"] = params.get("status", REVIEW_STATUS) or ""
        for name in ("min_confidence", "max_confidence"):
            raw = params.get(name)
            try:
                values[name] = float(raw) if raw not in (None, "") else None
            except ValueError:
                raise ValueError(f"{name} must be a number, not {raw!r}") from None
        return cls(**values)

    def keeps(self, item: Item, but: str = "") -> bool:
        """Whether ``item`` passes; ``but``: one filter to leave out (counts per value of it)."""
        if but != "source" and self.source and item.source != self.source:
            return False
        if but != "category" and self.category and item.category != self.category:
            return False
        if but != "language" and self.language and item.language != self.language:
            return False
        if but != "status" and self.status and item.status != self.status:
            return False
        if but != "node" and self.node:
            where = item.label or item.main()
            if where != self.node and not where.startswith(self.node + "/"):
                return False
        if self.min_confidence is not None and (item.confidence is None or item.confidence < self.min_confidence):
            return False
        if self.max_confidence is not None and (item.confidence is None or item.confidence > self.max_confidence):
            return False
        return not self.text or self.text.lower() in item.search


def load_items(dataset: str, index_paths: list[str]) -> list[Item]:
    """The queue's items in order: review rows (lowest confidence first), then the rest by key."""
    import pyarrow.parquet as pq

    from vlcurate.transforms.io.files import open_for_reading

    rows = {row["key"]: row for row in dataset_queue(dataset)}
    items: dict[str, Item] = {}
    columns = ["key", "shard", "source", "category", "uri", "language", "taxonomy_id", "taxonomy_confidence",
               "taxonomy_status"]
    for path in index_paths:
        with open_for_reading(path) as handle:
            table = pq.read_table(handle, columns=columns).to_pylist()
        for number, facts in enumerate(table):  # index rows are in the shard's order
            row = rows.get(facts["key"])
            search = (row["text"] if row else "") + "\n" + (facts["uri"] or "")
            items[facts["key"]] = Item(
                facts["key"], facts["shard"], number, facts["source"] or "", facts["category"] or "",
                facts["language"] or "", facts["taxonomy_status"] or "unlabelled", facts["taxonomy_id"],
                row["confidence"] if row else facts["taxonomy_confidence"], search.lower(), row)
    review = sorted((item for item in items.values() if item.row is not None),
                    key=lambda item: (item.confidence if item.confidence is not None else 0.0, item.key))
    rest = sorted((item for item in items.values() if item.row is None), key=lambda item: item.key)
    return review + rest


class Queue:
    """The items, who holds which, and what is decided. Thread-safe."""

    def __init__(self, items: list[Item], decided, lease_seconds: float = 600.0, clock=time.monotonic):
        self.items = items
        self.by_key = {item.key: item for item in items}
        self._decided = decided  # `key in decided`: the decisions log
        self._lease_seconds = lease_seconds
        self._clock = clock
        self._leases: dict[str, tuple[str, float]] = {}  # key -> (session, expiry)
        self._held: dict[str, str] = {}  # session -> the key it holds
        self._skipped: dict[str, set[str]] = collections.defaultdict(set)
        self._lock = threading.Lock()

    def _free_for(self, key: str, session: str, now: float) -> bool:
        lease = self._leases.get(key)
        return lease is None or lease[0] == session or lease[1] <= now

    def next(self, session: str, wanted: Filter) -> Item | None:
        """The item ``session`` should see: the one it holds if still open and wanted, else the
        first wanted item that is undecided, not skipped by it and not leased to another."""
        with self._lock:
            now = self._clock()
            held = self._held.get(session)
            if held and held not in self._decided and self._free_for(held, session, now) \
                    and wanted.keeps(self.by_key[held]):
                return self._lease(held, session, now)
            skipped = self._skipped[session]
            for item in self.items:
                if item.key in self._decided or item.key in skipped or not wanted.keeps(item):
                    continue
                if self._free_for(item.key, session, now):
                    return self._lease(item.key, session, now)
            return None

    def _lease(self, key: str, session: str, now: float) -> Item:
        old = self._held.get(session)
        if old and old != key and self._leases.get(old, ("",))[0] == session:
            del self._leases[old]
        self._leases[key] = (session, now + self._lease_seconds)
        self._held[session] = key
        return self.by_key[key]

    def take(self, key: str, session: str) -> Item:
        """Lease ``key`` to ``session`` (to decide it, or to show an undone item again); a
        LookupError when it is unknown, a Conflict when another editor holds it."""
        with self._lock:
            if key not in self.by_key:
                raise LookupError(f"no sample {key} in this dataset")
            now = self._clock()
            if not self._free_for(key, session, now):
                raise Conflict(f"sample {key} is open at another editor's desk")
            return self._lease(key, session, now)

    def release(self, key: str, session: str, skip: bool = False) -> None:
        with self._lock:
            if self._leases.get(key, ("",))[0] == session:
                del self._leases[key]
            if self._held.get(session) == key:
                del self._held[session]
            if skip:
                self._skipped[session].add(key)
            else:
                self._skipped[session].discard(key)

    def counts(self, wanted: Filter) -> dict:
        """Undecided items per value of each filter, the others applied; and the total."""
        out = {name: collections.Counter() for name in ("source", "category", "language", "node", "status")}
        total = 0
        for item in self.items:
            if item.key in self._decided:
                continue
            total += wanted.keeps(item)
            for name in out:
                if wanted.keeps(item, but=name):
                    out[name][item.main() if name == "node" else getattr(item, name)] += 1
        return {"total": total, **{name: dict(sorted(counter.items())) for name, counter in out.items()}}
