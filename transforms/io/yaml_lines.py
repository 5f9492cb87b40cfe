"""Safe YAML with line numbers: documents built from plain values only, every key's line kept.

PyYAML composes the document with its safe composer; values are then built here, node by node,
so that a config or data file can report ``FILE:LINE`` for each problem, a repeated key is an
error instead of YAML's silent "last one wins", aliases are refused (an alias inside its own
anchor builds a cycle, and nested aliases build "billion laughs" documents), and tags such as
``!!python/object`` are never constructed. Used by the taxonomy and by recipes.
"""

from __future__ import annotations

import yaml


class Refused(Exception):
    """The document cannot be read at all (an alias); ``line`` says where."""

    def __init__(self, line, message):
        super().__init__(message)
        self.line, self.message = line, message


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases: our files have no use for them, and an alias
    inside its own anchor builds a cyclic structure that a tree walk would never leave."""

    def __init__(self, stream):
        super().__init__(stream)
        self._open_anchors = []

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            line = event.start_mark.line + 1
            if event.anchor in self._open_anchors:
                raise Refused(line, f"alias *{event.anchor} is inside its own anchor &{event.anchor}: a cycle")
            raise Refused(line, f"alias *{event.anchor}: YAML aliases are not allowed, write the value out")
        anchor = getattr(event, "anchor", None)
        self._open_anchors.append(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open_anchors.pop()


class Mapping(dict):
    """A YAML mapping with the line of each key, and the enclosing mapping (for messages)."""

    def __init__(self, line, up):
        super().__init__()
        self.line, self.up, self.lines = line, up, {}


class Sequence(list):
    def __init__(self, line):
        super().__init__()
        self.line, self.lines = line, []


def _line(yaml_node) -> int:
    return yaml_node.start_mark.line + 1


_REFUSED = object()  # a value that was not built (a tag we don't allow); its key is left out


class _Reader:
    """Turns composed YAML nodes into Mapping/Sequence/scalars, noting problems against their mapping."""

    _COLLECTION_TAGS = ("tag:yaml.org,2002:map", "tag:yaml.org,2002:seq")

    def __init__(self, loader):
        self.loader = loader
        self.notes = []  # (enclosing _Map or None, line, message)

    def value(self, node, up):
        if isinstance(node, yaml.ScalarNode):
            try:
                return self.loader.construct_object(node)
            except yaml.YAMLError as error:  # an unknown tag such as !!python/object: never built
                self.notes.append((up, _line(node), f"not allowed: {getattr(error, 'problem', error)}"))
                return _REFUSED
        if node.tag not in self._COLLECTION_TAGS:
            self.notes.append((up, _line(node), f"tag {node.tag} is not allowed"))
            return _REFUSED
        if isinstance(node, yaml.SequenceNode):
            items = Sequence(_line(node))
            for item in node.value:
                value = self.value(item, up)
                if value is not _REFUSED:
                    items.append(value)
                    items.lines.append(_line(item))
            return items
        mapping = Mapping(_line(node), up)
        for key_node, value_node in node.value:
            key = self.value(key_node, mapping) if isinstance(key_node, yaml.ScalarNode) else None
            if key is _REFUSED:
                continue
            if not isinstance(key, str):
                shown = repr(key) if isinstance(key_node, yaml.ScalarNode) else "that is a list or mapping"
                self.notes.append((mapping, _line(key_node), f"key {shown} is not a string"))
            elif key in mapping:  # YAML would keep the last one without a word
                self.notes.append((mapping, _line(key_node), f"duplicate key '{key}' (first at line {mapping.lines[key]})"))
            else:
                value = self.value(value_node, mapping)
                if value is not _REFUSED:  # already reported; leaving the key out avoids a second message
                    mapping[key] = value
                    mapping.lines[key] = _line(key_node)
        return mapping


def read_yaml(text: str):
    """(document, notes) from YAML text: mappings are ``Mapping`` (``.line``, ``.lines[key]``,
    ``.up``), lists ``Sequence`` (``.line``, ``.lines[i]``); notes are (enclosing Mapping or None,
    line, message) for what was refused inside. Raises Refused, or yaml.YAMLError with a mark."""
    loader = _Loader(text)
    try:
        root = loader.get_single_node()
        reader = _Reader(loader)
        return (None if root is None else reader.value(root, None)), reader.notes
    finally:
        loader.dispose()
