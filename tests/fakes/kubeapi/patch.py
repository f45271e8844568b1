"""The non-apply PATCH flavours: JSON merge patch, strategic merge patch, JSON patch.

Strategic merge is a merge patch that merges keyed lists (containers by name, ports by
port...) instead of replacing them and honours the `$patch: replace|delete` directives;
that covers what kubectl sends for `rollout restart`, `rollout undo`, `set image`,
`label`/`annotate` and `scale`. `$setElementOrder`, `$retainKeys` and
`$deleteFromPrimitiveList` are accepted and ignored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import fieldpaths as fp
from .errors import ApiError, bad_request
from .meta import clone

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, Mapping):
        return clone(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for name, value in patch.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = merge_patch(out.get(name), value)
    return out


def strategic_merge(target: Any, patch: Any, path: fp.Path = ()) -> Any:
    if not isinstance(patch, Mapping):
        return clone(patch)
    directive = patch.get("$patch")
    clean = {k: v for k, v in patch.items() if not k.startswith("$")}
    if directive == "replace":
        return clone(clean)
    out = dict(target) if isinstance(target, Mapping) else {}
    for name, value in clean.items():
        here = (*path, f"f:{name}")
        current = out.get(name)
        if value is None:
            out.pop(name, None)
        elif isinstance(value, list) and isinstance(current, list):
            out[name] = _merge_list(current, value, here)
        else:
            out[name] = strategic_merge(current, value, here)
    return out


def _merge_list(current: list[Any], patch: list[Any], path: fp.Path) -> list[Any]:
    keys = fp.list_keys(path, [i for i in patch if not (isinstance(i, Mapping) and "$patch" in i)])
    if not keys or fp.list_keys(path, current) != keys:
        return [clone(i) for i in patch if not (isinstance(i, Mapping) and "$patch" in i)]
    items = list(current)
    for item in patch:
        element = fp.key_of(item, keys)
        index = next((n for n, i in enumerate(items) if fp.key_of(i, keys) == element), None)
        if item.get("$patch") == "delete":
            if index is not None:
                items.pop(index)
        elif index is None:
            items.append(strategic_merge({}, item, (*path, element)))
        else:
            items[index] = strategic_merge(items[index], item, (*path, element))
    return items


def _pointer(pointer: str) -> list[str]:
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise bad_request(f"invalid JSON pointer {pointer!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in pointer[1:].split("/")]


def _walk(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(doc: Any, operations: Any) -> Any:
    """RFC 6902 (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc = clone(doc)
    for op in operations:
        try:
            doc = _json_op(doc, op)
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise ApiError(422, "Invalid", f"the server rejected our request due to an error "
                           f"in our request: {op!r}: {exc}") from exc  # fmt: skip
    return doc


def _json_op(doc: Any, op: Mapping[str, Any]) -> Any:
    kind = op["op"]
    parts = _pointer(op["path"])
    if kind == "test":
        if _walk(doc, parts) != op["value"]:
            raise ValueError("test failed")
        return doc
    if kind in ("move", "copy"):
        value = clone(_walk(doc, _pointer(op["from"])))
        if kind == "move":
            doc = _json_op(doc, {"op": "remove", "path": op["from"]})
        return _json_op(doc, {"op": "add", "path": op["path"], "value": value})
    if not parts:
        return clone(op["value"]) if kind in ("add", "replace") else None
    parent = _walk(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if kind == "add":
            parent.insert(index, clone(op["value"]))
        elif kind == "remove":
            parent.pop(index)
        else:
            parent[index] = clone(op["value"])
    elif kind == "remove" or (kind == "replace" and last not in parent):
        del parent[last]
    else:
        parent[last] = clone(op["value"])
    return doc


def apply_patch(content_type: str, live: Any, body: Any) -> Any:
    """Dispatch on the request's Content-Type (apply is handled by the registry)."""
    if content_type == MERGE:
        return merge_patch(live, body)
    if content_type == STRATEGIC:
        return strategic_merge(live, body)
    if content_type == JSON_PATCH:
        return json_patch(live, body)
    raise ApiError(415, "UnsupportedMediaType", f"unsupported patch type {content_type!r}")
