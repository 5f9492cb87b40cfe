"""Changes between two taxonomy versions, and migration of labels from one version to the next.

Both rest on ``Taxonomy.resolve``: an old id maps to the node that lists it under moved_from (or
that it follows because its parent moved). Migration is accounted like the pipelines' rejects:
every input line is either written to the output, its label now a current id, or written to the
rejects file with a reason; none is dropped.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

from vlcurate.taxonomy.tree import Taxonomy

# Why a labels line was not migrated.
REJECT_REASONS = {
    "bad_json": "the line is not a JSON object",
    "label_missing": "the label field is absent or not a string",
    "label_unknown": "the label is not an id (current or old) of the old taxonomy",
    "label_removed": "the label's node was removed: the new taxonomy has no node for it",
}


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str  # added | removed | renamed | moved | merged
    old_ids: tuple[str, ...]  # empty for added; several for merged
    new_id: str | None  # None for removed
    old_name: str = ""
    new_name: str = ""
    old_parent: str | None = None
    new_parent: str | None = None

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"old_ids": list(self.old_ids)}

    def __str__(self) -> str:
        old = ", ".join(self.old_ids)
        if self.kind == "added":
            return f"added    {self.new_id}  ({self.new_name})"
        if self.kind == "removed":
            return f"removed  {old}  ({self.old_name})"
        if self.kind == "merged":
            return f"merged   {old} -> {self.new_id}"
        names = f"  ({self.old_name} -> {self.new_name})" if self.old_name != self.new_name else ""
        parents = f"  parent {self.old_parent} -> {self.new_parent}" if self.kind == "moved" else ""
        return f"{self.kind:<8} {old} -> {self.new_id}{names}{parents}"


def diff(old: Taxonomy, new: Taxonomy) -> list[Change]:
    """What changed from ``old`` to ``new``, in old file order then new (added nodes last).

    renamed: one old node is one new node under the same (possibly itself renamed) parent, with a
    new name and/or id; moved: its parent is another node; merged: several old nodes are one new
    node; removed: no new node; added: a new node no old node maps to.
    """
    targets = {}  # new id -> old ids that map onto it, in old order
    removed = []
    for node in old:
        target = new.resolve(node.id)
        if target is None:
            removed.append(Change("removed", (node.id,), None, node.name, old_parent=node.parent))
        else:
            targets.setdefault(target, []).append(node.id)
    changes = []
    for new_id, old_ids in targets.items():
        now = new.node(new_id)
        if len(old_ids) > 1:
            changes.append(Change("merged", tuple(old_ids), new_id, new_name=now.name, new_parent=now.parent))
            continue
        was = old.node(old_ids[0])
        same_parent = (was.parent is None and now.parent is None) or (
            was.parent is not None and new.resolve(was.parent) == now.parent)
        kind = "renamed" if same_parent else "moved"
        if kind == "moved" or was.id != now.id or was.name != now.name:
            changes.append(Change(kind, (was.id,), now.id, was.name, now.name, was.parent, now.parent))
    changes += removed
    changes += [Change("added", (), node.id, new_name=node.name, new_parent=node.parent)
                for node in new if node.id not in targets]
    return changes


# An editor's fields of a node, compared between versions: texts as a whole, lists by item.
EDITED_TEXTS = ("description", "paper_description")
EDITED_LISTS = ("examples", "keywords")


@dataclasses.dataclass(frozen=True)
class Edit:
    """One field of one node that both versions have (by id or moved_from), changed."""

    node: str  # its id in the new version
    field: str  # one of EDITED_TEXTS or EDITED_LISTS
    old: str = ""  # a text field's old and new value
    new: str = ""
    added: tuple[str, ...] = ()  # a list field's new items, and the items gone
    removed: tuple[str, ...] = ()

    def as_dict(self) -> dict:
        return dataclasses.asdict(self) | {"added": list(self.added), "removed": list(self.removed)}

    def __str__(self) -> str:
        what = self.field.replace("_", " ")
        if self.field in EDITED_TEXTS:
            change = "added" if not self.old else "removed" if not self.new else "changed"
            return f"edited   {self.node}: {what} {change}"
        if self.field == "examples":  # whole prompts: counted, not quoted
            counts = [f"+{len(self.added)}" if self.added else "", f"-{len(self.removed)}" if self.removed else ""]
            return f"edited   {self.node}: {' '.join(filter(None, counts))} {what}"
        items = [f"+{_word(item)}" for item in self.added] + [f"-{_word(item)}" for item in self.removed]
        return f"edited   {self.node}: {what} {' '.join(items)}"


def _word(item: str) -> str:
    return repr(item) if not item or any(c.isspace() for c in item) else item


def edits(old: Taxonomy, new: Taxonomy) -> list[Edit]:
    """The editor's fields changed on each node of ``new`` that one node of ``old`` maps onto (a
    merged node's fields are not compared: its merge is the change), in new file order."""
    sources: dict[str, list] = {}
    for node in old:
        target = new.resolve(node.id)
        if target is not None:
            sources.setdefault(target, []).append(node)
    found = []
    for now in new:
        was = sources.get(now.id, [])
        if len(was) != 1:
            continue
        for field in EDITED_TEXTS:
            before, after = getattr(was[0], field), getattr(now, field)
            if before != after:
                found.append(Edit(now.id, field, old=before, new=after))
        for field in EDITED_LISTS:
            before, after = getattr(was[0], field), getattr(now, field)
            added = tuple(item for item in after if item not in before)
            removed = tuple(item for item in before if item not in after)
            if added or removed:
                found.append(Edit(now.id, field, added=added, removed=removed))
    return found


def label_map(old: Taxonomy, new: Taxonomy) -> dict[str, str | None]:
    """Every id the old taxonomy knows (current and moved_from) to its id in the new one, or None."""
    known = {node.id for node in old} | {former for node in old for former in node.moved_from}
    return {label: new.resolve(old.resolve(label)) for label in sorted(known)}


@dataclasses.dataclass
class MigrationReport:
    """Line counts: lines_in = unchanged + migrated + rejected (+ blank, which are skipped)."""

    lines_in: int = 0
    unchanged: int = 0
    migrated: int = 0
    blank: int = 0
    rejected: dict = dataclasses.field(default_factory=dict)  # reason -> count

    @property
    def rejected_total(self) -> int:
        return sum(self.rejected.values())


def get_field(record, path):
    """The value at a dotted path ("label", "taxonomy.id"); (parent dict, key) or (None, None)."""
    *parents, key = path.split(".")
    for part in parents:
        record = record.get(part) if isinstance(record, dict) else None
    return (record, key) if isinstance(record, dict) else (None, None)


def migrate_lines(lines, old: Taxonomy, new: Taxonomy, field: str = "label"):
    """For each JSONL line: ("ok", line) with the label migrated, or ("reject", reject_line).

    A line whose label is already right is passed through byte for byte; a migrated line is
    re-serialised with its keys in their order. A reject line records the input line number, the
    reason code (REJECT_REASONS), the label and the original line.
    """
    for number, text in enumerate(lines, 1):
        text = text.rstrip("\n")
        if not text.strip():
            yield "blank", text
            continue
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        holder, key = get_field(record, field) if isinstance(record, dict) else (None, None)
        label = holder.get(key) if holder is not None else None
        current = old.resolve(label)  # old labels may themselves predate the old version
        if not isinstance(record, dict):
            reason = "bad_json"
        elif not isinstance(label, str):
            reason = "label_missing"
        elif current is None:
            reason = "label_unknown"
        elif new.resolve(current) is None:
            reason = "label_removed"
        elif new.resolve(current) == label:
            yield "unchanged", text
            continue
        else:
            holder[key] = new.resolve(current)
            yield "migrated", json.dumps(record, ensure_ascii=False)
            continue
        reject = {"line": number, "reason": reason, "label": label if isinstance(label, str) else None,
                  "from_version": old.version, "to_version": new.version, "input": text}
        yield "rejected:" + reason, json.dumps(reject, ensure_ascii=False)


def migrate_file(input_path, output_path, rejects_path, old: Taxonomy, new: Taxonomy,
                 field: str = "label") -> MigrationReport:
    """Migrate a JSONL labels file; rejected lines go to ``rejects_path``. Returns the counts."""
    paths = [pathlib.Path(path).resolve() for path in (input_path, output_path, rejects_path)]
    if len(set(paths)) < 3:  # opening the output would empty the input before it is read
        raise ValueError(f"input, output and rejects must be three different files: {', '.join(map(str, paths))}")
    report = MigrationReport()
    with open(input_path, encoding="utf-8") as source, \
            open(output_path, "w", encoding="utf-8") as out, \
            open(rejects_path, "w", encoding="utf-8") as rejects:
        for status, text in migrate_lines(source, old, new, field):
            report.lines_in += 1
            if status == "blank":
                report.blank += 1
            elif status.startswith("rejected:"):
                reason = status.split(":", 1)[1]
                report.rejected[reason] = report.rejected.get(reason, 0) + 1
                rejects.write(text + "\n")
            else:
                setattr(report, status, getattr(report, status) + 1)
                out.write(text + "\n")
    return report
