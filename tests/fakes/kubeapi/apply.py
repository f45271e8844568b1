"""Server-side apply and managedFields bookkeeping.

Every write records who set what. A manager is identified by (name, operation,
subresource): `kubectl` applying and `kubectl` updating are two managers, as on the real
server. Two entry points:

* `record_update` after create/PUT/PATCH (and the simulated controllers' writes): the
  fields whose value changed move to the writer's `Update` entry, taken from everyone else
  without conflict;
* `server_side_apply` for `application/apply-patch+yaml`: the applied configuration
  becomes the applier's `Apply` entry. A field another manager owns with a different
  value is a conflict (409 with the apiserver's message and `details.causes`) unless
  `force=true`, which takes the field over. Fields the applier set last time and no
  longer sets are removed from the object, unless another manager still owns them.

Not modelled: the kubectl client-side-apply upgrade path, versioned conversion of field
sets, and `x-kubernetes-list-type: set` (all non-keyed lists are atomic).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import fieldpaths as fp
from .errors import ApiError
from .fieldpaths import Path
from .meta import clone, metadata, timestamp

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass
class Entry:
    """One managedFields entry with its field set decoded."""

    manager: str
    operation: str
    api_version: str
    subresource: str = ""
    time: str = ""
    fields: set[Path] = field(default_factory=set)
    # The fieldsV1 this entry was read from and the set it decoded to: an entry a write
    # leaves alone is stored as it was, not encoded again (most of a controller write's
    # cost at 100 apps).
    source: tuple[frozenset[Path], dict[str, Any]] | None = None

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.manager, self.operation, self.subresource)

    def describe(self) -> str:
        """How the apiserver names the manager in conflict messages."""
        text = json.dumps(self.manager)
        if self.subresource:
            text += f" with subresource {json.dumps(self.subresource)}"
        if self.operation == "Update":
            text += f" using {self.api_version}"
        return text

    def to_json(self) -> dict[str, Any]:
        if self.source is not None and self.fields == self.source[0]:
            encoded = self.source[1]
        else:
            encoded = fp.encode(self.fields)
        out: dict[str, Any] = {"manager": self.manager, "operation": self.operation,
                               "apiVersion": self.api_version, "time": self.time,
                               "fieldsType": "FieldsV1", "fieldsV1": encoded}
        if self.subresource:
            out["subresource"] = self.subresource
        return out  # fmt: skip


def entries_of(obj: Mapping[str, Any] | None) -> list[Entry]:
    if not obj:
        return []
    entries = []
    for e in metadata(obj).get("managedFields") or []:
        raw = e.get("fieldsV1") or {}
        fields = fp.decode(raw)
        entries.append(Entry(e.get("manager", ""), e.get("operation", "Update"),
                             e.get("apiVersion", ""), e.get("subresource", ""),
                             e.get("time", ""), fields, (frozenset(fields), raw)))
    return entries


def _store(obj: dict[str, Any], entries: list[Entry]) -> None:
    meta = obj.setdefault("metadata", {})
    kept = [e.to_json() for e in entries if e.fields]
    if kept:
        meta["managedFields"] = kept
    else:
        meta.pop("managedFields", None)


def _owned_part(obj: Mapping[str, Any], subresource: str, has_status: bool) -> dict[str, Any]:
    """What a write through this endpoint can own: status via /status, the rest otherwise."""
    if subresource == "status":
        return {"status": clone(obj["status"])} if "status" in obj else {}
    return fp.strip(obj, status=not has_status)


def _entry(entries: list[Entry], wanted: Entry) -> Entry:
    for e in entries:
        if e.identity == wanted.identity:
            e.api_version = wanted.api_version
            return e
    entries.append(wanted)
    return wanted


def record_update(
    old: Mapping[str, Any] | None, new: dict[str, Any], manager: str, api_version: str,
    *, subresource: str = "", has_status: bool = True,
) -> None:
    """Give `manager` (operation Update) the fields this write changed; mutates `new`.

    A write that itself changes metadata.managedFields (kubectl's client-side-apply to
    server-side-apply migration does, `[{}]` clears them) sets the starting point.
    """
    sent = metadata(new).get("managedFields")
    if sent is not None and sent != metadata(old or {}).get("managedFields"):
        entries = entries_of({"metadata": {"managedFields": [e for e in sent if e]}})
    else:
        entries = entries_of(old)
    before = _owned_part(old or {}, subresource, has_status)
    after = _owned_part(new, subresource, has_status)
    changed, removed = fp.changed(before, after), fp.removed(before, after)
    if changed or removed:
        for e in entries:
            e.fields -= changed | removed
        mine = _entry(entries, Entry(manager, "Update", api_version, subresource))
        mine.fields |= changed
        mine.time = timestamp()
    _store(new, entries)


def merge(live: Any, applied: Any, path: Path = ()) -> Any:
    """The applied configuration laid over the live value (maps and list-maps merge)."""
    if isinstance(live, dict) and isinstance(applied, dict):
        out = dict(live)
        for name, value in applied.items():
            if value is None:
                out.pop(name, None)
            elif name in live:
                out[name] = merge(live[name], value, (*path, f"f:{name}"))
            else:
                out[name] = clone(value)
        return out
    if isinstance(live, list) and isinstance(applied, list):
        keys = fp.list_keys(path, applied)
        if keys and fp.list_keys(path, live) == keys:
            items = list(live)
            index = {fp.key_of(item, keys): n for n, item in enumerate(items)}
            for item in applied:
                element = fp.key_of(item, keys)
                if element in index:
                    n = index[element]
                    items[n] = merge(items[n], item, (*path, element))
                else:
                    items.append(clone(item))
            return items
    return clone(applied)


def _conflicts(
    live: Any, config: Any, applied: set[Path], others: list[Entry]
) -> list[tuple[Entry, Path]]:
    found: list[tuple[Entry, Path]] = []
    # Only paths another manager owns can conflict (none, when the object is new).
    contested = applied & set().union(*(other.fields for other in others))
    for path in sorted(contested):
        value = fp.get(config, path)
        if isinstance(value, dict) and value:
            continue  # a list-map item: its leaves are compared one by one
        for other in others:
            if path in other.fields and fp.get(live, path) != value:
                found.append((other, path))
    return found


def _upgrading(conflicts: list[tuple[Entry, Path]], live: Mapping[str, Any]) -> bool:
    """The apiserver's lastAppliedManager: `kubectl apply --server-side` may take over,
    without --force-conflicts, fields that `kubectl apply` (client-side) set, i.e. fields
    owned by kubectl-client-side-apply and listed in the last-applied annotation."""
    raw = (metadata(live).get("annotations") or {}).get(LAST_APPLIED)
    try:
        last = json.loads(raw) if raw else None
    except ValueError:
        return False
    if not isinstance(last, dict):
        return False
    fields = fp.field_set(fp.strip(last, status=True))
    return all(e.manager == "kubectl-client-side-apply" and p in fields for e, p in conflicts)


def conflict_error(conflicts: list[tuple[Entry, Path]]) -> ApiError:
    """409 worded like the apiserver's NewConflictError."""
    causes = [{"reason": "FieldManagerConflict", "message": f"conflict with {e.describe()}",
               "field": fp.to_string(p)} for e, p in conflicts]  # fmt: skip
    if len(conflicts) == 1:
        entry, path = conflicts[0]
        message = (f"Apply failed with 1 conflict: conflict with {entry.describe()}: "
                   f"{fp.to_string(path)}")
    else:
        by_manager: dict[str, list[str]] = {}
        for entry, path in conflicts:
            by_manager.setdefault(entry.describe(), []).append(fp.to_string(path))
        lines = []
        for manager in sorted(by_manager):
            lines.append(f"conflicts with {manager}:")
            lines.extend(f"- {p}" for p in by_manager[manager])
        message = f"Apply failed with {len(conflicts)} conflicts: " + "\n".join(lines)
    return ApiError(409, "Conflict", message, {"causes": causes})


def server_side_apply(
    live: Mapping[str, Any] | None, config: Mapping[str, Any], manager: str, *,
    force: bool, has_status: bool,
) -> dict[str, Any]:
    """The object after `manager` applies `config` (managedFields updated, no defaults)."""
    api_version = str(config.get("apiVersion", ""))
    entries = entries_of(live)
    base: dict[str, Any] = clone(dict(live)) if live else {
        "apiVersion": config.get("apiVersion"), "kind": config.get("kind"),
        "metadata": {k: v for k, v in metadata(config).items() if k in ("name", "namespace")},
    }  # fmt: skip
    owned_config = fp.strip(config, status=not has_status)
    applied = fp.field_set(owned_config)
    mine = _entry(entries, Entry(manager, "Apply", api_version))
    previous = set(mine.fields)
    others = [e for e in entries if e is not mine]

    found = _conflicts(fp.strip(base, status=True), owned_config, applied, others)
    if found and not force and not (manager == "kubectl" and _upgrading(found, base)):
        raise conflict_error(found)
    for other, path in found:
        other.fields.discard(path)

    merged: dict[str, Any] = merge(base, owned_config)
    if has_status and live is not None:
        merged["status"] = clone(live.get("status"))
        if merged["status"] is None:
            merged.pop("status")
    owned_by_others = set().union(*(e.fields for e in others)) if others else set()
    for path in sorted(previous - applied, key=len, reverse=True):
        if not any(q[: len(path)] == path for q in owned_by_others | applied):
            fp.remove(merged, path)
    mine.fields = applied
    mine.time = timestamp()
    _store(merged, entries)
    return merged
