"""Small helpers on object metadata shared by the store, the registry and the controllers."""

from __future__ import annotations

import copy
import datetime as dt
import marshal
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")
_SCALARS = (str, int, float, bool, type(None))


def clone(value: T) -> T:
    """A deep copy of a JSON tree (dicts, lists, scalars), without shared parts.

    Copies go through ``marshal`` (format 2: no back-references, so nothing in the copy is
    shared), about 5x faster than ``copy.deepcopy``, which at 100 apps was most of the
    fake's CPU. Values marshal cannot write (subclasses, other types) get deepcopy.
    """
    if type(value) in _SCALARS:
        return value
    try:
        copied: T = marshal.loads(marshal.dumps(value, 2))  # type: ignore[arg-type]
        return copied
    except ValueError:
        return copy.deepcopy(value)


def timestamp(at: dt.datetime | None = None) -> str:
    """RFC 3339 in UTC with second precision, like every metav1.Time on the wire."""
    at = at or dt.datetime.now(dt.UTC)
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def metadata(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata")
    return meta if isinstance(meta, dict) else {}


def name_of(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("name") or "")


def namespace_of(obj: Mapping[str, Any]) -> str:
    return str(metadata(obj).get("namespace") or "")


def labels_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata(obj).get("labels") or {})


def annotations_of(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict(metadata(obj).get("annotations") or {})


def owner_uids(obj: Mapping[str, Any]) -> set[str]:
    return {ref.get("uid", "") for ref in metadata(obj).get("ownerReferences") or []}


def controller_ref(owner: Mapping[str, Any]) -> dict[str, Any]:
    """The ownerReference a controller puts on what it creates (GC follows it)."""
    meta = metadata(owner)
    return {
        "apiVersion": owner["apiVersion"], "kind": owner["kind"], "name": meta["name"],
        "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True,
    }  # fmt: skip
