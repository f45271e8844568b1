"""Label and field selectors: the query-string syntax and the `LabelSelector` object.

`?labelSelector=app=web,tier!=db,env in (a,b),!canary` is how `kubectl get -l`, prune and
the Python client filter; `spec.selector` objects (matchLabels / matchExpressions) are how
Deployments and ReplicaSets find their pods. Both reduce to the same requirement tuples.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from .errors import bad_request

Requirement = tuple[str, str, frozenset[str]]  # key, operator, values
Selector = Callable[[Mapping[str, Any]], bool]

_SET = re.compile(r"^\s*(!?)\s*([\w./-]+)\s*(?:(notin|in)\s*\(([^)]*)\))?\s*$")
_EQ = re.compile(r"^\s*([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)\s*$")


def _split(text: str) -> list[str]:
    """Split at commas that are not inside `in (...)` value lists."""
    parts, depth, current = [], 0, ""
    for char in text:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_label_selector(text: str) -> list[Requirement]:
    """The requirements of a label selector string; 400 BadRequest if it does not parse."""
    requirements: list[Requirement] = []
    for part in _split(text or ""):
        eq = _EQ.match(part)
        if eq:
            key, op, value = eq.groups()
            requirements.append((key, "!=" if op == "!=" else "=", frozenset([value])))
            continue
        match = _SET.match(part)
        if not match or (match.group(1) and match.group(3)):
            raise bad_request(f"unable to parse requirement: invalid label selector: {part!r}")
        negated, key, op, values = match.groups()
        if op:
            requirements.append((key, op, frozenset(v.strip() for v in values.split(","))))
        else:
            requirements.append((key, "!" if negated else "exists", frozenset()))
    return requirements


def labels_match(requirements: list[Requirement], labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    for key, op, values in requirements:
        present = key in labels
        value = labels.get(key)
        ok = {
            "=": present and value in values,
            "in": present and value in values,
            "!=": not present or value not in values,
            "notin": not present or value not in values,
            "exists": present,
            "!": not present,
        }[op]
        if not ok:
            return False
    return True


def from_object(selector: Mapping[str, Any] | None) -> list[Requirement]:
    """Requirements of a metav1.LabelSelector (matchLabels + matchExpressions)."""
    selector = selector or {}
    requirements: list[Requirement] = [
        (k, "=", frozenset([str(v)])) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        requirements.append(
            (expr["key"], ops[expr["operator"]], frozenset(expr.get("values") or []))
        )
    return requirements


def to_string(requirements: list[Requirement]) -> str:
    """The query-string form (the `selector` field of a Scale, `kubectl get -l` style)."""
    out = []
    for key, op, values in requirements:
        if op in ("=", "!="):
            out.append(f"{key}{op}{next(iter(values))}")
        elif op in ("in", "notin"):
            out.append(f"{key} {op} ({','.join(sorted(values))})")
        else:
            out.append(key if op == "exists" else f"!{key}")
    return ",".join(out)


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    if value is None:
        return ""
    return str(value).lower() if isinstance(value, bool) else str(value)


def parse_field_selector(text: str) -> Selector:
    """`metadata.name=x,status.phase!=Running` as a predicate on whole objects.

    The real server accepts only a few fields per type; any dotted path is accepted here.
    """
    terms = []
    for part in _split(text or ""):
        match = re.match(r"^\s*([\w.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        terms.append(match.groups())

    def matches(obj: Mapping[str, Any]) -> bool:
        for path, op, value in terms:
            equal = _field_value(obj, path) == value
            if equal == (op == "!="):
                return False
        return True

    return matches


def object_selector(label_selector: str, field_selector: str) -> Selector:
    """One predicate for both query parameters of a LIST or WATCH."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector)

    def matches(obj: Mapping[str, Any]) -> bool:
        return labels_match(labels, obj.get("metadata", {}).get("labels")) and fields(obj)

    return matches
