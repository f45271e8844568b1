"""What a deploy would change, from the API server itself (server-side dry-run).

Each object is applied with ``dryRun=All``: the server merges, defaults and validates as for
real and returns the result without storing it; comparing that with the live object gives the
fields that would change. Secret values are never compared or shown, only their keys.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from provisioner.config.model import Environment
from provisioner.kube import Kube, KubeError
from provisioner.workloads import apply, prune
from provisioner.workloads.objects import Desired, desired_objects

# Fields the server owns or bumps on every write: never a difference worth showing.
_IGNORED = {("metadata", "resourceVersion"), ("metadata", "generation"),
            ("metadata", "managedFields"), ("metadata", "uid"),
            ("metadata", "creationTimestamp"), ("status",)}


@dataclass(frozen=True)
class ObjectChange:
    """One object's fate in the next deploy."""

    kind: str
    name: str
    action: str  # create, change, unchanged, prune
    fields: tuple[str, ...] = ()


def changed_paths(before: Any, after: Any, path: tuple[str, ...] = (),
                  depth: int = 5) -> Iterator[str]:
    """Dotted paths where two objects differ, down to ``depth`` levels."""
    if path[:2] in _IGNORED or path[:1] in _IGNORED:
        return
    if isinstance(before, dict) and isinstance(after, dict) and len(path) < depth:
        for key in sorted(set(before) | set(after)):
            yield from changed_paths(before.get(key), after.get(key), (*path, str(key)), depth)
    elif before != after:
        yield "." + ".".join(path)


def _one(kube: Kube, obj: Desired) -> ObjectChange:
    try:
        live = kube.request("GET", obj.kind.path(obj.namespace, obj.name))
    except KubeError as e:
        if e.status == 404:
            return ObjectChange(obj.kind.kind, obj.name, "create")
        raise
    if obj.kind.kind == "Secret":
        keys = set(obj.body.get("stringData") or {})
        return ObjectChange(obj.kind.kind, obj.name,
                            "unchanged" if keys == set(live.get("data") or {}) else "change",
                            (".data (keys only; values are not compared)",))
    dry = apply.apply_one(kube, obj, force=False, dry_run=True).live
    fields = tuple(changed_paths(live, dry))
    return ObjectChange(obj.kind.kind, obj.name, "change" if fields else "unchanged", fields)


def diff(env: Environment, api: Any, environ: dict[str, str] | None = None
         ) -> list[ObjectChange]:
    """Create / change (which fields) / unchanged per object, then what would be pruned."""
    kube = Kube(api)
    secrets_env = environ if environ is not None else {
        s.from_env: "" for s in env.secrets}
    objects = desired_objects(env, environ=secrets_env)
    changes = [_one(kube, obj) for obj in objects]
    try:
        kinds = prune.previous_group_kinds(kube, env) | {
            o.kind.group_kind for o in objects if o.kind.tier > 0}
        for group_kind, name in prune.stale(kube, env, objects, kinds):
            changes.append(ObjectChange(group_kind.split(".")[0], name, "prune"))
    except KubeError as e:
        if e.status != 404:
            raise
    return changes


def format_diff(changes: list[ObjectChange]) -> str:
    """The workload part of a plan, as people read it."""
    symbols = {"create": "+", "change": "~", "prune": "-", "unchanged": "="}
    lines = ["Workload changes:"]
    for change in changes:
        if change.action == "unchanged":
            continue
        extra = f": {', '.join(change.fields[:6])}" if change.fields else ""
        more = f" and {len(change.fields) - 6} more" if len(change.fields) > 6 else ""
        lines.append(f"  {symbols[change.action]} {change.kind} {change.name}{extra}{more}")
    counts = {a: sum(1 for c in changes if c.action == a)
              for a in ("create", "change", "prune", "unchanged")}
    if len(lines) == 1:
        lines.append("  none: the cluster runs what the file declares")
    lines.append(f"Workloads: {counts['create']} to create, {counts['change']} to change, "
                 f"{counts['prune']} to prune, {counts['unchanged']} unchanged.")
    return "\n".join(lines) + "\n"
