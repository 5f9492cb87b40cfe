"""The use-case taxonomy as data: load a taxonomy YAML safely, validate it, and query the tree.

The file format is described in the header of ``deepseek_vl.yaml`` (the bundled DeepSeek-VL
taxonomy) and in docs/taxonomy.md. Loading never constructs anything but plain strings, numbers, lists
and dicts: the YAML is composed by PyYAML's safe composer and turned into values here, node by
node, so every value keeps its line for error messages and a repeated key is an error instead of
YAML's silent "last one wins". All problems in a file are reported together, each as
``FILE:LINE: NODE: message``.
"""

from __future__ import annotations

import dataclasses
import datetime
import pathlib
import re

import yaml

from vlcurate.transforms.io.yaml_lines import Refused, read_yaml

DEFAULT_TAXONOMY = pathlib.Path(__file__).with_name("deepseek_vl.yaml")
LEVELS = ("main", "secondary", "leaf")
ID_CHARS = re.compile(r"[a-z0-9/-]+")

# Keys a node may carry, per level; the list that holds a node's children says their level
# (a main category lists "secondary" categories or, like Evaluation, "leaves" directly).
_TEXT_KEYS = ("paper_description", "description")
_LIST_KEYS = ("examples", "keywords", "moved_from")
_COMMON_KEYS = ("id", "name", *_TEXT_KEYS, *_LIST_KEYS)
_NODE_KEYS = {
    "main": {*_COMMON_KEYS, "secondary", "leaves"},
    "secondary": {*_COMMON_KEYS, "leaves"},
    "leaf": set(_COMMON_KEYS),
}
_TOP_KEYS = {"version", "name", "source", "changelog", "categories"}
_CHANGELOG_KEYS = {"version", "date", "notes"}


def slug(name: str) -> str:
    """One id segment from a display name: lowercase, runs outside [a-z0-9] become one '-'."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


@dataclasses.dataclass(frozen=True)
class Problem:
    """One thing wrong with a taxonomy file, where it is and which node it concerns."""

    file: str
    line: int  # 1-based; 0 when it concerns the whole file
    node: str  # the node id, or a position like "categories[2]", or "-"
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.node}: {self.message}"


class TaxonomyError(ValueError):
    """A taxonomy that can't be used; ``problems`` lists every problem found, one per line in str()."""

    def __init__(self, problems):
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


@dataclasses.dataclass(frozen=True)
class Node:
    """One category. A node without children (any level) is a labelling leaf."""

    id: str
    name: str
    level: str  # "main" | "secondary" | "leaf"
    parent: str | None
    children: tuple[str, ...] = ()
    description: str = ""  # editors' words
    paper_description: str = ""  # verbatim from the paper (Table 3), where it has one
    examples: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()
    moved_from: tuple[str, ...] = ()
    line: int = 0

    @property
    def is_leaf(self) -> bool:
        return not self.children


@dataclasses.dataclass(frozen=True)
class ChangelogEntry:
    version: str
    date: str
    notes: tuple[str, ...]


class Taxonomy:
    """A validated taxonomy: nodes in file order (depth first), queries by id."""

    def __init__(self, version, name, path, nodes, changelog=()):
        self.version = version
        self.name = name
        self.path = path
        self._nodes = {node.id: node for node in nodes}
        self.changelog = tuple(changelog)
        # Every old id recorded in moved_from, to the node that carries it now.
        self._moved = {old: node.id for node in nodes for old in node.moved_from}

    def __iter__(self):
        return iter(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    def __contains__(self, node_id) -> bool:
        return node_id in self._nodes

    def node(self, node_id: str) -> Node:
        return self._nodes[node_id]  # KeyError names the id

    def mains(self) -> list[Node]:
        return [node for node in self if node.level == "main"]

    def leaves(self) -> list[Node]:
        """The labelling leaves, in file order: tertiary nodes and childless secondaries/mains."""
        return [node for node in self if node.is_leaf]

    def main_of(self, node_id: str) -> Node:
        self.node(node_id)  # KeyError for an unknown id
        return self._nodes[node_id.split("/", 1)[0]]  # ids are paths: the first segment is the main

    def resolve(self, old_id) -> str | None:
        """The current id for ``old_id``: itself if current, else via moved_from, else None.

        A node whose parent moved follows its parent when the new parent has a child with the
        same id segment (renaming a secondary need not list each of its leaves); an explicit
        moved_from wins over that rule.
        """
        if not isinstance(old_id, str):
            return None
        if old_id in self._nodes:
            return old_id
        if old_id in self._moved:
            return self._moved[old_id]
        parent, sep, segment = old_id.rpartition("/")
        if sep:
            new_parent = self.resolve(parent)
            if new_parent is not None and new_parent != parent:
                candidate = f"{new_parent}/{segment}"
                if candidate in self._nodes:
                    return candidate
        return None


# --- reading YAML -------------------------------------------------------------------------------


# --- validating ---------------------------------------------------------------------------------


class _Check:
    """Collects problems; knows which node a mapping belongs to, for the NODE part of messages."""

    def __init__(self, file):
        self.file, self.problems, self.labels = file, [], {}

    def add(self, line, node, message):
        self.problems.append(Problem(self.file, line, node, message))

    def label_of(self, mapping):
        while mapping is not None and id(mapping) not in self.labels:
            mapping = mapping.up
        return "-" if mapping is None else self.labels[id(mapping)]


def _strings(check, label, value, line, key):
    """A list of non-empty strings, or a problem."""
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        check.add(line, label, f"{key} must be a list of non-empty strings")
        return ()
    return tuple(value)


def _nodes(check, items, line, parent, level, out, where):
    """Validate the list ``items`` of nodes at ``level`` under ``parent`` (a Node or None)."""
    parent_id = parent.id if parent else None
    if not isinstance(items, list) or not items:
        check.add(line, parent_id or "-", f"{where} must be a non-empty list of categories")
        return ()
    ids = []
    for index, raw in enumerate(items):
        item_line = items.lines[index]
        position = f"{parent_id + '/' if parent_id else ''}{where}[{index}]"
        if not isinstance(raw, dict):
            check.add(item_line, position, "a category must be a mapping with id and name")
            continue
        node_id, name = raw.get("id"), raw.get("name")
        label = node_id if isinstance(node_id, str) and node_id else position
        check.labels[id(raw)] = label
        problems_before = len(check.problems)
        for key in raw:
            if key not in _NODE_KEYS[level]:
                allowed = ", ".join(sorted(_NODE_KEYS[level]))
                check.add(raw.lines[key], label, f"unknown key '{key}' for a {level} category (allowed: {allowed})")
        if name is not None and not isinstance(name, str):  # YAML reads No, 1.5, 2024-01-01 as non-strings
            check.add(raw.lines["name"], label, f"name must be a string, not {type(name).__name__} (quote it)")
        elif not isinstance(name, str) or not name.strip():
            check.add(raw.lines.get("name", raw.line), label, "name is missing or empty")
        elif name != name.strip():
            check.add(raw.lines["name"], label, f"name {name!r} has spaces around it")
        if not isinstance(node_id, str) or not node_id:
            check.add(raw.lines.get("id", raw.line), label, "id is missing or not a string")
        elif not ID_CHARS.fullmatch(node_id):
            bad = "".join(sorted(set(re.sub(r"[a-z0-9/-]", "", node_id))))
            check.add(raw.lines["id"], label, f"id has characters outside [a-z0-9-/]: {bad!r}")
        elif isinstance(name, str) and name.strip():
            expected = f"{parent_id}/{slug(name)}" if parent_id else slug(name)
            if node_id != expected:
                check.add(raw.lines["id"], label, f"id does not match its parent and name: expected '{expected}'"
                          " (a renamed node lists its old id under moved_from)")
        fields = {}
        for key in _TEXT_KEYS:
            if key in raw and not isinstance(raw[key], str):
                check.add(raw.lines[key], label, f"{key} must be a string")
            fields[key] = raw[key].strip() if isinstance(raw.get(key), str) else ""
        for key in _LIST_KEYS:
            fields[key] = _strings(check, label, raw[key], raw.lines[key], key) if key in raw else ()
        if label in out:
            check.add(item_line, label, f"duplicate id (first at line {out[label].line})")
            continue
        if len(check.problems) > problems_before or label == position:
            continue  # don't build children on a broken node; their own problems are still found below
        node = Node(id=node_id, name=name, level=level, parent=parent_id, line=item_line, **fields)
        out[node_id] = node
        ids.append(node_id)
        kids = ()
        if level == "main" and "secondary" in raw and "leaves" in raw:
            check.add(raw.lines["leaves"], label, "a main category lists either secondary categories or leaves, not both")
        elif "secondary" in raw:
            kids = _nodes(check, raw["secondary"], raw.lines["secondary"], node, "secondary", out, "secondary")
        elif "leaves" in raw:
            kids = _nodes(check, raw["leaves"], raw.lines["leaves"], node, "leaf", out, "leaves")
        out[node_id] = dataclasses.replace(node, children=kids)
    return tuple(ids)


def _check_moves(check, nodes):
    """moved_from: valid ids, each claimed by one node, never a current id (which is a cycle when
    it leads back to the claimer, e.g. a <- b <- a)."""
    claims = {}
    for node in nodes.values():
        for old in node.moved_from:
            if not ID_CHARS.fullmatch(old):
                check.add(node.line, node.id, f"moved_from id {old!r} has characters outside [a-z0-9-/]")
            elif old in claims:
                check.add(node.line, node.id, f"moved_from '{old}' is also claimed by '{claims[old]}'")
            else:
                claims[old] = node.id
    # The graph of current ids naming current ids; a path back to the start is a cycle.
    edges = {node.id: [old for old in node.moved_from if old in nodes] for node in nodes.values()}
    reported = set()
    for start, olds in edges.items():
        for old in olds:
            path = [start] if old == start else _path_back(edges, start, [start, old])
            if path is None:
                check.add(nodes[start].line, start, f"moved_from '{old}' is a current id: an id is either live or retired")
            elif frozenset(path) not in reported:
                reported.add(frozenset(path))
                check.add(nodes[start].line, start, "moved_from cycle: " + " <- ".join([*path, start]))


def _path_back(edges, start, path):
    """The path extended until it comes back to ``start`` (without repeating it), or None."""
    for following in edges.get(path[-1], ()):
        if following == start:
            return path
        if following not in path:
            found = _path_back(edges, start, [*path, following])
            if found:
                return found
    return None


def _version(check, doc, key, line, label):
    value = doc.get(key)
    if isinstance(value, bool) or not isinstance(value, (str, int)) or not str(value).strip():
        check.add(line, label, f"{key} must be a string or an integer (quote it, e.g. '1.10')")
        return None
    return str(value)


def _changelog(check, doc, version):
    entries, items = [], doc.get("changelog")
    if not isinstance(items, list) or not items:
        check.add(doc.lines.get("changelog", doc.line), "changelog", "changelog must be a non-empty list of entries")
        return entries
    for index, raw in enumerate(items):
        label = f"changelog[{index}]"
        if not isinstance(raw, dict):
            check.add(items.lines[index], label, "a changelog entry must be a mapping with version and notes")
            continue
        check.labels[id(raw)] = label
        for key in raw:
            if key not in _CHANGELOG_KEYS:
                check.add(raw.lines[key], label, f"unknown key '{key}' (allowed: {', '.join(sorted(_CHANGELOG_KEYS))})")
        entry_version = _version(check, raw, "version", raw.lines.get("version", raw.line), label)
        date = raw.get("date", "")
        date = date.isoformat() if isinstance(date, datetime.date) else date
        if not isinstance(date, str):
            check.add(raw.lines["date"], label, "date must be a string like 2026-11-26")
        notes = _strings(check, label, raw.get("notes"), raw.lines.get("notes", raw.line), "notes")
        entries.append(ChangelogEntry(entry_version or "", str(date), notes))
    if version is not None and version not in {entry.version for entry in entries}:
        check.add(doc.lines.get("changelog", doc.line), "changelog", f"no changelog entry for version {version}")
    return entries


def parse_taxonomy(text: str, file: str = "<string>") -> tuple[Taxonomy | None, list[Problem]]:
    """Validate taxonomy YAML text: (Taxonomy, []) or (None, every problem found)."""
    check = _Check(file)
    try:
        doc, notes = read_yaml(text)
    except Refused as refused:
        return None, [Problem(file, refused.line, "-", refused.message)]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        message = " ".join(str(part) for part in (getattr(error, "context", None), getattr(error, "problem", None)) if part)
        return None, [Problem(file, mark.line + 1 if mark else 0, "-", f"YAML syntax: {message or error}")]
    if not isinstance(doc, dict):
        problems = [Problem(file, line, "-", message) for _, line, message in notes]
        return None, problems + [Problem(file, getattr(doc, "line", 0), "-",
                                         "a taxonomy file is a mapping with version, changelog and categories")]
    for key in doc:
        if key not in _TOP_KEYS:
            check.add(doc.lines[key], "-", f"unknown top-level key '{key}' (allowed: {', '.join(sorted(_TOP_KEYS))})")
    version = _version(check, doc, "version", doc.lines.get("version", doc.line), "-")
    name = doc.get("name", "")
    if not isinstance(name, str):
        check.add(doc.lines["name"], "-", "name must be a string")
    changelog = _changelog(check, doc, version)
    nodes = {}
    _nodes(check, doc.get("categories"), doc.lines.get("categories", doc.line), None, "main", nodes, "categories")
    _check_moves(check, nodes)
    for mapping, line, message in notes:  # reported last: by then every node mapping has a label
        check.add(line, check.label_of(mapping), message)
    if check.problems:
        return None, sorted(check.problems, key=lambda problem: problem.line)
    return Taxonomy(version, name, file, list(nodes.values()), changelog), []


def validate(path=None) -> list[Problem]:
    """Every problem in the taxonomy file at ``path`` (the bundled one by default); [] if valid."""
    return _load(path)[1]


def load_taxonomy(path=None) -> Taxonomy:
    """The validated taxonomy at ``path`` (default: DEFAULT_TAXONOMY); TaxonomyError otherwise."""
    taxonomy, problems = _load(path)
    if problems:
        raise TaxonomyError(problems)
    return taxonomy


def _load(path):
    path = pathlib.Path(DEFAULT_TAXONOMY if path is None else path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return None, [Problem(str(path), 0, "-", f"cannot read: {error}")]
    return parse_taxonomy(text, str(path))


def render_tree(taxonomy: Taxonomy, depth: int | None = None, ids: bool = True) -> str:
    """The tree as text, drawn like the ``tree`` command; ``depth`` 1 shows the main categories only."""
    lines = [f"{taxonomy.name or 'taxonomy'} (version {taxonomy.version})"]

    def draw(node_ids, prefix, level):
        for index, node_id in enumerate(node_ids):
            node, last = taxonomy.node(node_id), index == len(node_ids) - 1
            lines.append(f"{prefix}{'└── ' if last else '├── '}{node.name}" + (f"  [{node.id}]" if ids else ""))
            if depth is None or level < depth:
                draw(node.children, prefix + ("    " if last else "│   "), level + 1)

    draw([main.id for main in taxonomy.mains()], "", 1)
    return "\n".join(lines)


def as_json_tree(taxonomy: Taxonomy, depth: int | None = None) -> dict:
    """Nested {id, name, children} objects under one root with the taxonomy's name and version."""

    def obj(node, level):
        kids = node.children if depth is None or level < depth else ()
        return {"id": node.id, "name": node.name, "children": [obj(taxonomy.node(kid), level + 1) for kid in kids]}

    return {"name": taxonomy.name, "version": taxonomy.version,
            "children": [obj(main, 1) for main in taxonomy.mains()]}
