"""Load YAML into a small tree that remembers the line of every value.

PyYAML's safe loader forgets where values came from and happily takes the last of two
duplicate keys; users need ``FILE:LINE`` in every message, and silent duplicates hide
mistakes. Loading is also hardened against hostile files: size, nesting depth and alias
expansion are bounded, and every failure becomes a :class:`ConfigIssue`, never a traceback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml
from yaml.constructor import SafeConstructor

from provisioner.errors import ConfigIssue

MAX_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 40
MAX_EVENTS = 500_000
MAX_NODES = 200_000

# libyaml's loader when PyYAML was built with it: ten times faster, same nodes and marks.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE_TAG = "tag:yaml.org,2002:merge"
_PLAIN_TAGS = {"tag:yaml.org,2002:seq", "tag:yaml.org,2002:map"}


@dataclass(frozen=True)
class Scalar:
    """A leaf value as YAML resolved it (str, int, float, bool, None, date), with its line."""

    value: object
    line: int
    tag: str
    raw: str


@dataclass(frozen=True)
class Mapping:
    """A mapping with string keys; ``key_lines`` gives the line each key was written on."""

    items: dict[str, Node]
    key_lines: dict[str, int]
    line: int


@dataclass(frozen=True)
class Sequence:
    """A list of nodes."""

    items: list[Node]
    line: int


Node = Scalar | Mapping | Sequence


class LoadFailed(Exception):
    """Internal: loading stopped; ``issues`` says why."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__(issues)
        self.issues = issues


def _mark_line(error: yaml.YAMLError) -> int:
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    return int(mark.line) + 1 if mark is not None else 0


def _yaml_issue(error: yaml.YAMLError) -> ConfigIssue:
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    if "maximum nesting depth" in str(problem):
        # libyaml 0.2.6 (bundled from PyYAML 6.0.4 on) stops at 1000 levels while scanning
        # ahead, before our own event walk reaches MAX_DEPTH: the same finding, said as ours.
        return _too_deep(_mark_line(error))
    context = getattr(error, "context", None)
    text = f"{context}, {problem}" if context else str(problem)
    return ConfigIssue(_mark_line(error), "", f"invalid YAML: {text}", "check the syntax here")


def _too_deep(line: int) -> ConfigIssue:
    return ConfigIssue(line, "", f"nested deeper than {MAX_DEPTH} levels",
                       "an environment file is never this deep")


def decode(data: bytes) -> str:
    """Decode a config file as UTF-8 text, refusing oversized and binary input."""
    if len(data) > MAX_BYTES:
        raise LoadFailed([ConfigIssue(0, "", f"file is over {MAX_BYTES} bytes",
                                      f"an environment file must be under {MAX_BYTES} bytes")])
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise LoadFailed([ConfigIssue(line, "", "file is not UTF-8 text",
                                      "save it as UTF-8; is this a binary file?")]) from e
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise LoadFailed([ConfigIssue(line, "", "file contains NUL bytes",
                                      "this looks like a binary file, not YAML")])
    return text


def _check_shape(text: str) -> None:
    """Walk parser events (no recursion, no object building) to bound depth and size."""
    depth = 0
    documents = 0
    for events, event in enumerate(yaml.parse(text, Loader=_LOADER), start=1):
        line = event.start_mark.line + 1 if event.start_mark else 0
        if events > MAX_EVENTS:
            raise LoadFailed([ConfigIssue(line, "", "file has too many values",
                                          f"at most {MAX_EVENTS} YAML events are read")])
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                raise LoadFailed([ConfigIssue(line, "",
                                              "file holds more than one YAML document",
                                              "one environment per file; remove the '---'")])
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise LoadFailed([_too_deep(line)])
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


class _Converter:
    """Turns composed PyYAML nodes into the positioned tree, with an alias budget."""

    def __init__(self) -> None:
        self.budget = MAX_NODES
        self.issues: list[ConfigIssue] = []
        self.constructor = SafeConstructor()
        self.active: set[int] = set()  # nodes on the path being converted, to spot cycles

    def convert(self, node: yaml.Node, path: str = "") -> Node:
        self.budget -= 1
        if self.budget < 0:
            raise LoadFailed([ConfigIssue(node.start_mark.line + 1, "",
                                          "aliases expand to too many values",
                                          "is this a YAML alias bomb? use fewer nested aliases")])
        line = node.start_mark.line + 1
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, line, path)
        if id(node) in self.active:
            raise LoadFailed([ConfigIssue(line, path, "an alias refers to a value that contains "
                                          "it", "recursive anchors cannot describe an "
                                          "environment; remove the alias")])
        self.active.add(id(node))
        try:
            return self._collection(node, line, path)
        finally:
            self.active.discard(id(node))

    def _collection(self, node: yaml.Node, line: int, path: str) -> Node:
        if node.tag not in _PLAIN_TAGS:
            self.issues.append(ConfigIssue(line, path, f"unsupported YAML tag {node.tag!r}",
                                           "remove the tag; environment files use plain values"))
        if isinstance(node, yaml.SequenceNode):
            return Sequence([self.convert(item, f"{path}[{i}]") for i, item in
                             enumerate(node.value)], line)
        assert isinstance(node, yaml.MappingNode)
        return self._mapping(node, line, path)

    def _scalar(self, node: yaml.ScalarNode, line: int, path: str) -> Scalar:
        try:
            value = self.constructor.construct_object(node, deep=True)
        except yaml.YAMLError as e:
            self.issues.append(ConfigIssue(line, path, f"cannot read value {node.value!r}: "
                                           f"{getattr(e, 'problem', e)}",
                                           "remove the tag or quote the value"))
            value = node.value
        return Scalar(value, line, node.tag, str(node.value))

    def _mapping(self, node: yaml.MappingNode, line: int, path: str) -> Mapping:
        items: dict[str, Node] = {}
        key_lines: dict[str, int] = {}
        merged: list[Mapping] = []
        for key_node, value_node in node.value:
            key_line = key_node.start_mark.line + 1
            if key_node.tag == _MERGE_TAG:
                merged.extend(self._merge_sources(value_node, path))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.issues.append(ConfigIssue(key_line, "", "a key must be plain text",
                                               "lists and mappings cannot be keys"))
                continue
            # The key's source text, not its resolved value: `on:` must stay "on", not True.
            key = str(key_node.value)
            child = f"{path}.{key}" if path else key
            if key in items:
                self.issues.append(ConfigIssue(key_line, child, "duplicate key",
                                               f"first set on line {key_lines[key]}; keep one"))
                continue
            items[key] = self.convert(value_node, child)
            key_lines[key] = key_line
        for source in merged:
            for key, value in source.items.items():
                if key not in items:
                    items[key] = value
                    key_lines[key] = source.key_lines[key]
        return Mapping(items, key_lines, line)

    def _merge_sources(self, value_node: yaml.Node, path: str) -> list[Mapping]:
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        result = []
        for source in sources:
            converted = self.convert(source, path)
            if isinstance(converted, Mapping):
                result.append(converted)
            else:
                self.issues.append(ConfigIssue(converted.line, f"{path}.<<" if path else "<<",
                                               "can only merge mappings",
                                               "point '<<' at a mapping anchor"))
        return result


@dataclass
class Loaded:
    """A loaded document: its root node (None when empty) and any issues found."""

    root: Node | None
    issues: list[ConfigIssue] = field(default_factory=list)


def load(data: bytes) -> Loaded:
    """Load one YAML document from bytes; every problem is returned as an issue."""
    try:
        text = decode(data)
        _check_shape(text)
        composed = yaml.compose(text, Loader=_LOADER)
    except LoadFailed as e:
        return Loaded(None, e.issues)
    except yaml.YAMLError as e:
        return Loaded(None, [_yaml_issue(e)])
    except RecursionError:
        return Loaded(None, [ConfigIssue(0, "", "nested too deeply to read",
                                         "an environment file is never this deep")])
    if composed is None:
        return Loaded(None, [ConfigIssue(1, "", "file is empty",
                                         "start from a file in examples/")])
    converter = _Converter()
    try:
        root = converter.convert(composed)
    except LoadFailed as e:
        return Loaded(None, e.issues)
    except RecursionError:
        return Loaded(None, [ConfigIssue(0, "", "nested too deeply to read",
                                         "an environment file is never this deep")])
    return Loaded(root, converter.issues)


def key_line(config: Path | None, section: str, key: str) -> int:
    """The line of ``section.key`` in an environment file: the key's, else the section's;
    0 when the file is unknown, unreadable or has no such section (an error message then
    names the file and key without a line)."""
    if config is None:
        return 0
    try:
        root = load(config.read_bytes()).root
    except OSError:
        return 0
    if isinstance(root, Mapping) and isinstance(found := root.items.get(section), Mapping):
        return found.key_lines.get(key, found.line)
    return 0
