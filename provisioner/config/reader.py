"""Typed, position-aware reading of the YAML tree, collecting every issue.

A :class:`Section` wraps one mapping of the tree and hands out typed values. Instead of
stopping at the first problem it records a :class:`ConfigIssue` and returns a fallback, so
one run reports every mistake in the file.
"""

from __future__ import annotations

import datetime as dt
import difflib
from collections.abc import Iterable
from typing import TypeVar

from provisioner.config.checks import Check
from provisioner.config.yamlpos import Mapping, Node, Scalar, Sequence
from provisioner.errors import ConfigIssue

T = TypeVar("T")


class Issues:
    """The growing list of problems found in one file."""

    def __init__(self) -> None:
        self.items: list[ConfigIssue] = []

    def add(self, line: int, path: str, problem: str, hint: str = "") -> None:
        """Record one problem."""
        self.items.append(ConfigIssue(line, path, problem, hint))


def node_kind(node: Node) -> str:
    """What a YAML node is, for an error message (``expected text, got a list``)."""
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    value = node.value
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return f"true/false ({node.raw})"
    if isinstance(value, int | float):
        return f"a number ({node.raw})"
    return f"text ({node.raw!r})" if len(node.raw) < 40 else "text"


class Section:
    """One mapping of the config, read key by key with checks and defaults."""

    def __init__(self, issues: Issues, node: Node | None, path: str, known: Iterable[str],
                 line: int = 0) -> None:
        self.issues = issues
        self.path = path
        self.known = tuple(known)
        self.items: dict[str, Node] = {}
        self.key_lines: dict[str, int] = {}
        self.line = line
        # A missing or malformed section is reported once; its own required keys are not.
        self.absent = node is None or not isinstance(node, Mapping)
        if node is None:
            return
        self.line = node.line
        if not isinstance(node, Mapping):
            hint = (f"write '{path.rsplit('.', 1)[-1]}:' followed by indented keys" if path
                    else "an environment file is a mapping of name:, digitalocean:, ...; "
                    "start from a file in examples/")
            issues.add(node.line, path, f"expected a mapping, got {node_kind(node)}", hint)
            return
        self.items = node.items
        self.key_lines = node.key_lines
        unknown = 0
        for key in node.items:
            if key not in self.known:
                unknown += 1
                # Suggestions cost a fuzzy match each; a file of thousands of unknown keys
                # is not an environment file and gets none past the first hundred.
                close = difflib.get_close_matches(key, self.known, n=1, cutoff=0.6) if (
                    unknown <= 100) else []
                hint = f"did you mean '{close[0]}'?" if close else (
                    "known keys: " + ", ".join(self.known))
                issues.add(node.key_lines[key], self.sub(key), "unknown key", hint)

    def sub(self, key: str | int) -> str:
        """The dotted path of a child key or list index."""
        if isinstance(key, int):
            return f"{self.path}[{key}]"
        return f"{self.path}.{key}" if self.path else key

    def node(self, key: str) -> Node | None:
        """The raw node under ``key``, or None."""
        return self.items.get(key)

    def has(self, key: str) -> bool:
        """Whether the key was written."""
        return key in self.items

    def line_of(self, key: str) -> int:
        """The line of a key's value, or of the mapping when the key is absent."""
        node = self.items.get(key)
        return node.line if node is not None else self.line

    def _missing(self, key: str, hint: str) -> None:
        if not self.absent:
            self.issues.add(self.line, self.sub(key), "is required", hint)

    def text(self, key: str, default: T, check: Check | None = None, *,
             required: bool = False, hint: str = "") -> str | T:
        """A text value; numbers written unquoted are taken as the characters typed."""
        node = self.items.get(key)
        if node is None:
            if required:
                self._missing(key, hint)
            return default
        return self.text_of(node, self.sub(key), default, check)

    def text_of(self, node: Node, path: str, default: T, check: Check | None = None) -> str | T:
        """Read one node as text, with a check."""
        if not isinstance(node, Scalar) or node.value is None or isinstance(node.value, bool):
            self.issues.add(node.line, path, f"expected text, got {node_kind(node)}",
                            'put the value in quotes if it is meant as text')
            return default
        # The source characters, not the resolved value: `version: 1.30` means "1.30".
        value = node.value if isinstance(node.value, str) else node.raw
        if check is not None:
            problem = check(value)
            if problem:
                self.issues.add(node.line, path, problem[0], problem[1])
                return default
        return value

    def integer(self, key: str, default: int, low: int, high: int, *,
                required: bool = False, hint: str = "") -> int:
        """A whole number within bounds."""
        node = self.items.get(key)
        if node is None:
            if required:
                self._missing(key, hint)
            return default
        if not isinstance(node, Scalar) or isinstance(node.value, bool) or not isinstance(
                node.value, int):
            self.issues.add(node.line, self.sub(key),
                            f"expected a whole number, got {node_kind(node)}",
                            f"e.g. {key}: {default}")
            return default
        if not low <= node.value <= high:
            self.issues.add(node.line, self.sub(key), f"{node.value} is out of range",
                            f"must be between {low} and {high}")
            return default
        return node.value

    def boolean(self, key: str, default: bool) -> bool:
        """true or false."""
        node = self.items.get(key)
        if node is None:
            return default
        if not isinstance(node, Scalar) or not isinstance(node.value, bool):
            self.issues.add(node.line, self.sub(key),
                            f"expected true or false, got {node_kind(node)}")
            return default
        return node.value

    def choice(self, key: str, default: str, options: tuple[str, ...]) -> str:
        """One of a fixed set of words."""
        value = self.text(key, default)
        if value not in options:
            close = difflib.get_close_matches(value, options, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else "one of: " + ", ".join(options)
            self.issues.add(self.line_of(key), self.sub(key), f"{value!r} is not allowed", hint)
            return default
        return value

    def date(self, node: Node, path: str) -> dt.date | None:
        """A calendar date, written YYYY-MM-DD."""
        if isinstance(node, Scalar):
            if isinstance(node.value, dt.datetime):
                return node.value.date()
            if isinstance(node.value, dt.date):
                return node.value
            if isinstance(node.value, str):
                try:
                    return dt.date.fromisoformat(node.value)
                except ValueError:
                    pass
        self.issues.add(node.line, path, f"expected a date, got {node_kind(node)}",
                        "e.g. 2026-12-24")
        return None

    def items_of(self, key: str, *, required: bool = False, hint: str = "") -> list[Node]:
        """The elements of a list value."""
        node = self.items.get(key)
        if node is None:
            if required:
                self._missing(key, hint)
            return []
        if not isinstance(node, Sequence):
            self.issues.add(node.line, self.sub(key), f"expected a list, got {node_kind(node)}",
                            "write each item on its own line starting with '- '")
            return []
        return node.items

    def texts(self, key: str, check: Check | None = None, *, required: bool = False,
              hint: str = "") -> tuple[str, ...]:
        """A list of text values, each checked."""
        result = []
        items = self.items_of(key, required=required, hint=hint)
        for index, item in enumerate(items):
            value = self.text_of(item, f"{self.sub(key)}[{index}]", None, check)
            if value is not None:
                result.append(value)
        if required and isinstance(self.items.get(key), Sequence) and not items:
            self.issues.add(self.line_of(key), self.sub(key), "must not be empty", hint)
        return tuple(result)

    def pairs(self, key: str, key_check: Check | None, value_check: Check | None
              ) -> tuple[tuple[str, str], ...]:
        """A mapping of text to text (labels, env, settings), in file order."""
        node = self.items.get(key)
        if node is None:
            return ()
        if not isinstance(node, Mapping):
            self.issues.add(node.line, self.sub(key), f"expected a mapping, got {node_kind(node)}",
                            "write NAME: value pairs, one per line")
            return ()
        result = []
        for name, value_node in node.items.items():
            path = f"{self.sub(key)}.{name}"
            if key_check is not None and (problem := key_check(name)):
                self.issues.add(node.key_lines[name], path, problem[0], problem[1])
                continue
            if isinstance(value_node, Scalar) and isinstance(value_node.value, bool):
                # `DEBUG: true` in an env or settings map means the text the user typed.
                value_node = Scalar(value_node.raw, value_node.line, value_node.tag, value_node.raw)
            value = self.text_of(value_node, path, None, value_check)
            if value is not None:
                result.append((name, value))
        return tuple(result)

    def section(self, key: str, known: Iterable[str], *, required: bool = False,
                hint: str = "") -> Section:
        """A nested mapping."""
        node = self.items.get(key)
        if node is None and required:
            self._missing(key, hint)
        return Section(self.issues, node, self.sub(key), known, line=self.line)
