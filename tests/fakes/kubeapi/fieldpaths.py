"""Field paths and field sets: the vocabulary of managedFields and server-side apply.

A path is a tuple of fieldsV1 keys: `("f:spec", "f:template", "f:spec", "f:containers",
'k:{"name":"app"}', "f:image")`. Lists whose items have a merge key (containers by name,
ports by port+protocol...) are associative: each item is addressed by `k:{...}`, so two
managers can own different containers. Every other list is atomic, a single leaf, as the
real schemas mostly declare (args, command, finalizers...).

The real server derives list semantics from the OpenAPI schema; here a small table keyed
by field name (and parent, for `ports`) stands in for it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

Path = tuple[str, ...]
MISSING: Any = object()

_LIST_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "ephemeralContainers": ("name",),
    "env": ("name",), "volumes": ("name",), "volumeMounts": ("mountPath",),
    "volumeDevices": ("devicePath",), "imagePullSecrets": ("name",), "conditions": ("type",),
    "ownerReferences": ("uid",), "hostAliases": ("ip",), "resourceClaims": ("name",),
    "topologySpreadConstraints": ("topologyKey", "whenUnsatisfiable"),
}  # fmt: skip
_KEY_DEFAULTS = {"protocol": "TCP"}

# Server-owned or identifying fields that never belong to a manager (the apiserver strips
# the same ones before computing field sets).
STRIPPED_METADATA = (
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "managedFields", "selfLink", "deletionTimestamp", "deletionGracePeriodSeconds",
)  # fmt: skip


def list_keys(path: Path, items: list[Any]) -> tuple[str, ...] | None:
    """The merge keys of the list at `path`, or None when the list is atomic."""
    if not path or not items or not all(isinstance(i, dict) for i in items):
        return None
    name = path[-1][2:]
    if name == "ports":
        keys: tuple[str, ...] = (
            ("containerPort", "protocol") if "f:containers" in path
            or "f:initContainers" in path else ("port", "protocol")
        )  # fmt: skip
    else:
        keys = _LIST_KEYS.get(name, ())
    required = [k for k in keys if k not in _KEY_DEFAULTS]
    if not keys or not all(k in i for i in items for k in required):
        return None
    return keys


def key_of(item: Mapping[str, Any], keys: tuple[str, ...]) -> str:
    """The `k:{...}` element of a list-map item (defaulted key fields filled in)."""
    values = {k: item.get(k, _KEY_DEFAULTS.get(k)) for k in keys}
    return "k:" + json.dumps(values, sort_keys=True, separators=(",", ":"))


def strip(obj: Mapping[str, Any], *, status: bool) -> dict[str, Any]:
    """The part of an object managers can own (`status=False` also drops .status).

    Shares the object's values (only the top level and metadata are new): callers read it,
    and `merge` copies whatever it takes from it.
    """
    out = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    if not status:
        out.pop("status", None)
    meta = {k: v for k, v in (out.get("metadata") or {}).items() if k not in STRIPPED_METADATA}
    if meta:
        out["metadata"] = meta
    else:
        out.pop("metadata", None)
    return out


def field_set(value: Any, path: Path = ()) -> set[Path]:
    """Every owned path of an object: leaves, atomic lists, and list-map items."""
    out: set[Path] = set()
    if not isinstance(value, dict):
        return out
    for name, child in value.items():
        here = (*path, f"f:{name}")
        keys = list_keys(here, child) if isinstance(child, list) else None
        if isinstance(child, dict) and child:
            out |= field_set(child, here)
        elif keys:
            for item in child:
                element = (*here, key_of(item, keys))
                out.add(element)
                out |= field_set(item, element)
        else:
            out.add(here)
    return out


def changed(before: Mapping[str, Any], after: Mapping[str, Any], path: Path = ()) -> set[Path]:
    """The paths of ``field_set(after)`` that ``before`` lacks or holds another value at.

    The same set as comparing the two field sets path by path, found by walking both
    objects at once and skipping equal subtrees (one comparison in C instead of a lookup
    per path): most writes change a few fields of a large object.
    """
    out: set[Path] = set()
    if before == after:
        return out
    for name, child in after.items():
        here = (*path, f"f:{name}")
        old = before.get(name, MISSING)
        keys = list_keys(here, child) if isinstance(child, list) else None
        if isinstance(child, dict) and child:
            out |= changed(old if isinstance(old, dict) else {}, child, here)
        elif keys:
            previous = _items(here, old, keys)
            for item in child:
                element = (*here, key_of(item, keys))
                was = previous.get(element[-1], MISSING)
                if was != item:
                    out.add(element)
                    out |= changed(was if was is not MISSING else {}, item, element)
        elif old != child:
            out.add(here)
    return out


def removed(before: Mapping[str, Any], after: Mapping[str, Any], path: Path = ()) -> set[Path]:
    """``field_set(before) - field_set(after)``, skipping equal subtrees."""
    out: set[Path] = set()
    if before == after:
        return out
    for name, child in before.items():
        here = (*path, f"f:{name}")
        new = after.get(name, MISSING)
        keys = list_keys(here, child) if isinstance(child, list) else None
        if isinstance(child, dict) and child:
            if isinstance(new, dict) and new:
                out |= removed(child, new, here)
            else:
                out |= field_set(child, here)
        elif keys:
            following = _items(here, new, keys)
            for item in child:
                element = (*here, key_of(item, keys))
                now = following.get(element[-1], MISSING)
                if now is MISSING:
                    out.add(element)
                    out |= field_set(item, element)
                else:
                    out |= removed(item, now, element)
        elif new is MISSING or (isinstance(new, dict) and new) or (
                isinstance(new, list) and list_keys(here, new)):
            out.add(here)  # `here` is no longer a leaf of the new object
    return out


def _items(path: Path, value: Any, keys: tuple[str, ...]) -> dict[str, Any]:
    """A keyed list's items by `k:` element (the first of duplicates, as `get` finds), or
    nothing if ``value`` is not a list keyed the same way."""
    if not isinstance(value, list) or list_keys(path, value) != keys:
        return {}
    out: dict[str, Any] = {}
    for item in value:
        out.setdefault(key_of(item, keys), item)
    return out


def duplicate_keys(value: Any, path: Path = ()) -> list[tuple[Path, str]]:
    """(list path, `k:` element) for every key that occurs twice in a keyed list."""
    out: list[tuple[Path, str]] = []
    if not isinstance(value, dict):
        return out
    for name, child in value.items():
        here = (*path, f"f:{name}")
        keys = list_keys(here, child) if isinstance(child, list) else None
        if keys:
            seen: set[str] = set()
            for item in child:
                element = key_of(item, keys)
                if element in seen:
                    out.append((here, element))
                seen.add(element)
                out += duplicate_keys(item, (*here, element))
        elif isinstance(child, dict):
            out += duplicate_keys(child, here)
    return out


def get(obj: Any, path: Path) -> Any:
    """The value at `path`, or MISSING."""
    node = obj
    for element in path:
        if element.startswith("f:") and isinstance(node, dict):
            node = node.get(element[2:], MISSING)
        elif element.startswith("k:") and isinstance(node, list):
            node = next((i for i in node if _is(i, element)), MISSING)
        else:
            return MISSING
        if node is MISSING:
            return MISSING
    return node


def _is(item: Any, element: str) -> bool:
    if not isinstance(item, dict):
        return False
    # Types too, as the JSON text of the key would: 1 is not true, 80.0 is not 80.
    return all(type(got := item.get(k, _KEY_DEFAULTS.get(k))) is type(v) and got == v
               for k, v in _wanted(element))


def forget_keys() -> None:
    """Drop the parsed `k:` elements (benchmarks: each side starts cold)."""
    _wanted.cache_clear()


@functools.lru_cache(maxsize=65536)
def _wanted(element: str) -> tuple[tuple[str, Any], ...]:
    """The key fields of a `k:{...}` element, parsed once (the same few recur endlessly)."""
    return tuple(json.loads(element[2:]).items())


def remove(obj: Any, path: Path) -> None:
    """Delete the field or list item at `path` if present."""
    parent = get(obj, path[:-1]) if len(path) > 1 else obj
    last = path[-1]
    if last.startswith("f:") and isinstance(parent, dict):
        parent.pop(last[2:], None)
    elif last.startswith("k:") and isinstance(parent, list):
        parent[:] = [i for i in parent if not _is(i, last)]


def encode(paths: Iterable[Path]) -> dict[str, Any]:
    """A field set as fieldsV1 JSON (nested keys; `"."` marks a member with children)."""
    paths = set(paths)
    tree: dict[str, Any] = {}
    for path in sorted(paths):
        node = tree
        for element in path:
            node = node.setdefault(element, {})
    for path in paths:
        node = tree
        for element in path:
            node = node[element]
        if node and "." not in node:
            node["."] = {}
    return tree


def decode(tree: Mapping[str, Any], path: Path = ()) -> set[Path]:
    """The inverse of `encode`."""
    out: set[Path] = set()
    for element, child in tree.items():
        if element == ".":
            out.add(path)
        elif child:
            out |= decode(child, (*path, element))
        else:
            out.add((*path, element))
    return out


def to_string(path: Path) -> str:
    """The apiserver's rendering, e.g. `.spec.template.spec.containers[name="app"].image`."""
    out = ""
    for element in path:
        if element.startswith("f:"):
            out += "." + element[2:]
        elif element.startswith("k:"):
            keys = json.loads(element[2:])
            out += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
        else:
            out += f"[{element}]"
    return out
