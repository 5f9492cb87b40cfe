"""The desk itself, without the web: a dataset's queue, the taxonomy, the decisions log and the mix.

The web app (app.py) only translates requests into these calls; tests and the benchmark call them
directly too. A user's mistake (no queue, no taxonomy, a label that is not a leaf) is a DeskError
with one line to show.
"""

from __future__ import annotations

import collections
import re

from vlcurate.taxonomy.desk.decisions import DecisionLog, DecisionsError
from vlcurate.taxonomy.desk.queue import Conflict, Filter, Item, Queue, load_items
from vlcurate.taxonomy.desk.samples import SampleReader
from vlcurate.taxonomy.tree import Taxonomy, TaxonomyError, load_taxonomy
from vlcurate.transforms.data.review import REVIEW_LABEL, REVIEW_FOLDER

EDITOR = re.compile(r"^[\w .@+:-]{1,64}$")
MAX_TEXT = 20_000  # characters of a sample's text shown (a page of text, not a book)


class DeskError(ValueError):
    """A user's mistake or a dataset the desk cannot serve: one line."""


def check_editor(name) -> str:
    if not isinstance(name, str) or not EDITOR.match(name.strip()):
        raise DeskError("an editor's name is 1 to 64 letters, digits, spaces or . @ + : - _")
    return name.strip()


def open_taxonomy(path: str | None) -> Taxonomy:
    import os

    if path is not None and not os.path.isfile(path):
        raise DeskError(f"--taxonomy {path}: no such file")
    try:
        return load_taxonomy(path)
    except TaxonomyError as error:
        raise DeskError(f"--taxonomy {path}: {len(error.problems)} problem(s), first: {error.problems[0]} "
                        f"(vlcurate taxonomy validate {path})") from None
    except OSError as error:
        raise DeskError(f"--taxonomy {path}: {error.strerror or error}") from None


def read_dataset_manifest(dataset: str) -> dict:
    from vlcurate.transforms.io.manifest import ManifestError, read_manifest

    try:
        return read_manifest(dataset)
    except ManifestError as error:
        raise DeskError(str(error)) from None


def index_paths(dataset: str, manifest: dict) -> list[str]:
    from vlcurate.transforms.report.build import dataset_files

    return dataset_files(dataset, [(s.get("index") or {}).get("name") for s in manifest.get("shards") or []], "index")


class Desk:
    def __init__(self, dataset: str, taxonomy: str | None = None, lease_seconds: float = 600.0,
                 target_mix: dict | None = None):
        from vlcurate.transforms.label.queue import queue_files

        self.dataset = dataset.rstrip("/")
        if "://" in self.dataset:
            raise DeskError(f"{dataset}: the desk edits a local dataset (its decisions log is appended on disk)")
        self.manifest = read_dataset_manifest(self.dataset)
        if not queue_files(self.dataset):
            raise DeskError(f"{dataset} has no review queue ({REVIEW_FOLDER}/*-review.jsonl): it was made without "
                            "a labeler, or no sample was below --min-confidence")
        self.taxonomy = open_taxonomy(taxonomy)
        try:
            self.log = DecisionLog.of(self.dataset)
        except DecisionsError as error:
            raise DeskError(str(error)) from None
        self.queue = Queue(load_items(self.dataset, index_paths(self.dataset, self.manifest)), self.log,
                           lease_seconds)
        self.samples = SampleReader(self.dataset)
        self.samples.note_starts(list(dict.fromkeys(item.shard for item in self.queue.items)))
        self.target = self._target(target_mix)

    def _target(self, given: dict | None) -> dict | None:
        from vlcurate.transforms.report.build import target_of

        target = target_of(self.manifest, given)
        mains = {node.id for node in self.taxonomy.mains()}
        return target if target and set(target) <= mains else None  # a category mix is not a taxonomy mix

    # --- what an editor sees ----------------------------------------------------------------

    def next_item(self, session: str, wanted: Filter) -> dict | None:
        item = self.queue.next(session, wanted)
        return None if item is None else self.view(item)

    def view(self, item: Item) -> dict:
        row = item.row
        if row is not None:  # the queue row holds what the editor reads: no shard read
            conversation, text, images = row.get("conversation"), row.get("text") or "", len(row["images"]["members"])
            candidates = row.get("candidates") or []
        else:
            sample = self.samples.sample(item.key, item.shard, item.number)
            conversation, text, images = sample.conversation, sample.text or "", len(sample.images)
            taxonomy = sample.taxonomy or {}
            candidates = taxonomy.get("top") or ([{"id": item.label, "confidence": item.confidence}] if item.label else [])
        decided = self.log.current(item.key)
        return {
            "key": item.key, "shard": item.shard, "source": item.source, "category": item.category,
            "language": item.language, "status": item.status, "label": item.label, "confidence": item.confidence,
            "conversation": [{"role": str(turn.get("role", "")), "content": str(turn.get("content", ""))[:MAX_TEXT]}
                             for turn in conversation or [] if isinstance(turn, dict)],
            "text": "" if conversation else text[:MAX_TEXT],
            "images": images,
            "candidates": [c for c in candidates if isinstance(c, dict) and c.get("id") in self.taxonomy],
            "decided": decided and {k: decided[k] for k in ("label", "editor", "time")},
        }

    def taxonomy_view(self) -> dict:
        """Every node with its path of names, for the candidates' context and the `/` search. Most
        leaves carry no words of their own: a node shows the description and examples of its
        nearest node up the path that has them, and is found by its own and its parents' keywords."""
        nodes = []
        for node in self.taxonomy:
            up = self._up(node.id)
            described = next((n for n in up if n.description or n.paper_description), None)
            nodes.append({"id": node.id, "name": node.name, "path": self.taxonomy_path(node.id), "leaf": node.is_leaf,
                          "description": described and (described.description or described.paper_description),
                          "examples": list(next((n.examples for n in up if n.examples), ())),
                          "keywords": [word for n in up for word in n.keywords]})
        return {"version": self.taxonomy.version, "nodes": nodes}

    def _up(self, node_id: str) -> list:
        """The node and its parents, nearest first."""
        parts = node_id.split("/")
        return [self.taxonomy.node("/".join(parts[:i])) for i in range(len(parts), 0, -1)]

    def taxonomy_path(self, node_id: str) -> list[str]:
        """The names from the main category down to the node (ids are paths of segments)."""
        return [node.name for node in reversed(self._up(node_id))]

    def mix(self) -> dict:
        """Samples per main category with the decisions counted in, against the target mix."""
        from vlcurate.taxonomy.mix import main_counts

        labels = collections.Counter(self.manifest.get("labels") or {})
        for key, decision in self.log.labels().items():
            item = self.queue.by_key.get(key)
            if item is not None:
                labels[item.label or REVIEW_LABEL] -= 1
                labels[decision["label"]] += 1
        known = {label: count for label, count in labels.items()
                 if label == REVIEW_LABEL or self.taxonomy.resolve(label)}
        counts = main_counts(known, self.taxonomy)
        labelled = sum(counts.values())
        return {"labelled": labelled, "review": max(0, labels[REVIEW_LABEL]),
                "mains": [{"id": node.id, "name": node.name, "count": counts[node.id],
                           "share": counts[node.id] / labelled if labelled else 0.0,
                           "target": (self.target or {}).get(node.id)} for node in self.taxonomy.mains()]}

    # --- deciding ---------------------------------------------------------------------------

    def check_label(self, label) -> str:
        if not isinstance(label, str) or label not in self.taxonomy:
            raise DeskError(f"label {label!r} is not in taxonomy {self.taxonomy.version}")
        if not self.taxonomy.node(label).is_leaf:
            raise DeskError(f"label {label!r} is not a labelling leaf of taxonomy {self.taxonomy.version}")
        return label

    def decide(self, session: str, editor: str, key: str, label: str) -> dict:
        """Store ``label`` for ``key``; the item must be this session's (or free). KeyError: unknown
        key; Conflict: another editor holds it or has decided it already."""
        label, editor = self.check_label(label), check_editor(editor)
        item = self.queue.take(key, session)
        if key in self.log and self.log.current(key)["editor"] != editor:
            self.queue.release(key, session)
            raise Conflict(f"sample {key} was decided by {self.log.current(key)['editor']} meanwhile")
        decision = self.log.label(key, label, editor, self.text_of(item), item.label)
        self.queue.release(key, session)
        return decision

    def text_of(self, item: Item) -> str:
        if item.row is not None:
            return item.row.get("text") or ""
        from vlcurate.transforms.label.queue import label_text

        return label_text(self.samples.sample(item.key, item.shard, item.number))

    def skip(self, session: str, key: str) -> None:
        self.queue.release(key, session, skip=True)

    def undo(self, session: str, editor: str) -> dict | None:
        """Take back the editor's last decision; its item is this session's again (to decide anew)."""
        undone = self.log.undo_last(check_editor(editor))
        if undone is not None:
            try:
                self.queue.take(undone["key"], session)
            except Conflict:  # someone opened it meanwhile: it stays undecided in the queue
                pass
        return undone
