"""Jinja filters that serialize values instead of pasting them.

Every value from a user's config reaches a template through one of these, so no quote,
newline, ``${``, ``{{`` or YAML indicator in it can change the structure of the output.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    """A safe dumper that never emits anchors for repeated objects.

    The pure-Python emitter is the reference: libyaml's writes some characters differently
    (astral-plane ones, line separators, control characters in keys), and the rendered
    text is hashed into worker names, so the same file must render the same bytes on every
    machine, with or without libyaml.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True


# libyaml's emitter, about ten times faster (rendering 100 apps spent most of its time
# emitting), for values whose every string is printable ASCII, tabs or newlines: there
# both emitters write the same bytes (tests/unit/test_filters.py checks it on generated
# values). Anything else, or no libyaml, takes the reference emitter.
_CDumper: type | None = None
if hasattr(yaml, "CSafeDumper"):
    class _Fast(yaml.CSafeDumper):
        def ignore_aliases(self, data: Any) -> bool:
            return True

    _CDumper = _Fast

_PLAIN = frozenset(map(chr, range(32, 127))) | {"\n", "\t"}


def _plain(value: Any) -> bool:
    """Whether every string in ``value`` is printable ASCII, tabs or newlines, and every
    key a string that is not empty."""
    if isinstance(value, str):
        return value.isascii() and _PLAIN.issuperset(value)
    if isinstance(value, dict):  # an empty or non-string key: libyaml writes "? ..."
        return all(isinstance(k, str) and k and _plain(k) and _plain(v)
                   for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(_plain(v) for v in value)
    return True


# Line breaks YAML readers honour even inside quotes; PyYAML writes them raw when allowed to
# emit unicode, which would turn them into spaces on the way back in.
_RAW_BREAKS = ("\x85", "\u2028", "\u2029")


def _dump(value: Any, flow: bool) -> str:
    dumper = _CDumper if _CDumper is not None and _plain(value) else _Dumper
    text = yaml.dump(value, Dumper=dumper, default_flow_style=flow, allow_unicode=True,
                     width=1 << 30, sort_keys=False)
    if any(ch in text for ch in _RAW_BREAKS):
        text = yaml.dump(value, Dumper=_Dumper, default_flow_style=flow, allow_unicode=False,
                         width=1 << 30, sort_keys=False)
    # The dumper ends a bare scalar with a document end marker; only the value is wanted.
    return text.removesuffix("\n...\n").rstrip("\n")


def to_yaml(value: Any) -> str:
    """A YAML flow value on one line, quoted as needed (``'on'``, ``"a: b"``, ``"x\\ny"``)."""
    return _dump(value, flow=True)


def _block_safe(value: str) -> bool:
    """Whether a literal block can carry ``value`` unchanged."""
    if not value.strip("\n") or value[0] in " \t" or "\r" in value:
        return False
    if any(ch in value for ch in "\x85\u2028\u2029\ufeff"):
        return False  # line breaks or marks YAML would reinterpret
    return all(ch.isprintable() or ch in "\n\t" for ch in value)


def to_yaml_block(value: str, indent: int) -> str:
    """A multi-line string as a YAML literal block (``|``), or quoted if a block cannot hold it.

    A literal block keeps scripts and embedded YAML readable in cloud-init files. It cannot
    represent carriage returns, tabs before content on its first line, or a leading space on
    the first line without an indentation indicator; those fall back to a quoted scalar.
    """
    if not _block_safe(value):
        return to_yaml(value)
    # Chomping: clip (one final newline), keep (several) or strip (none), so the block
    # reads back as exactly the same string.
    stripped = value.rstrip("\n")
    trailing = len(value) - len(stripped)
    chomp = {0: "-", 1: ""}.get(trailing, "+")
    pad = " " * indent
    body = "\n".join(pad + line if line else "" for line in stripped.split("\n"))
    extra = "\n" * (trailing - 1) if chomp == "+" else ""
    return f"|{chomp}\n{body}{extra}"


def to_yaml_tree(value: Any, indent: int) -> str:
    """A nested value as block YAML on the lines that follow, indented (Helm's ``nindent``)."""
    text = _dump(value, flow=False)
    pad = " " * indent
    return "".join("\n" + pad + line for line in text.split("\n"))


def to_json(value: Any) -> str:
    """Compact, key-sorted JSON (valid YAML too)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=True)


def shell_quote(value: Any) -> str:
    """A single shell word, whatever the value holds."""
    return shlex.quote(str(value))


FILTERS = {
    "yaml": to_yaml,
    "yaml_block": to_yaml_block,
    "yaml_tree": to_yaml_tree,
    "json": to_json,
    "shquote": shell_quote,
}
