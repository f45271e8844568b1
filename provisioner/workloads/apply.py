"""Server-side apply of the desired objects: tier by tier, concurrently within a tier.

Objects of one tier do not depend on each other (Deployments and StatefulSets; Services,
autoscalers and disruption budgets), so they go out together; a tier starts when the one
before it is done, so a workload never starts before the ConfigMap it reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError
from provisioner.workloads.objects import Desired

FIELD_MANAGER = "provision"
PARALLELISM = 16


class Conflicts(ProvisionError):
    """Another field manager owns fields provision would change."""


@dataclass(frozen=True)
class Applied:
    """The server's answer to one apply."""

    desired: Desired
    live: dict[str, Any]


def apply_one(kube: Kube, obj: Desired, force: bool, dry_run: bool = False) -> Applied:
    """PATCH with application/apply-patch+yaml (JSON is YAML); creates the object if absent."""
    query = [("fieldManager", FIELD_MANAGER), ("force", "true" if force else "false")]
    if dry_run:
        query.append(("dryRun", "All"))
    live = kube.request("PATCH", obj.kind.path(obj.namespace, obj.name), query, obj.body,
                        "application/apply-patch+yaml",
                        verb=f"patch {obj.kind.plural}.{obj.kind.group or 'core'}")
    return Applied(obj, live)


def _conflict_text(obj: Desired, error: KubeError) -> str:
    causes = (error.body.get("details") or {}).get("causes") or []
    fields = [f"{c.get('field', '?')} ({c.get('message', '').split(':')[0]})" for c in causes]
    where = f"{obj.kind.kind} {obj.namespace + '/' if obj.namespace else ''}{obj.name}"
    return f"  {where}: " + (", ".join(fields) if fields else str(error))


def apply_all(kube: Kube, objects: Sequence[Desired], force: bool = False,
              dry_run: bool = False, on_applied: Callable[[Applied], None] | None = None,
              parallelism: int = PARALLELISM) -> list[Applied]:
    """Apply every object; all conflicts are reported together, by field."""
    results: list[Applied] = []
    conflicts: list[str] = []
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        for _, tier in groupby(objects, key=lambda d: d.kind.tier):
            batch = list(tier)
            futures = [pool.submit(apply_one, kube, obj, force, dry_run) for obj in batch]
            for obj, future in zip(batch, futures, strict=True):
                try:
                    applied = future.result()
                except KubeError as e:
                    if e.status == 409:
                        conflicts.append(_conflict_text(obj, e))
                        continue
                    raise
                results.append(applied)
                if on_applied is not None:
                    on_applied(applied)
            if conflicts:
                raise Conflicts("other field managers own fields provision would change:\n"
                                + "\n".join(conflicts)
                                + "\nre-run with --force-conflicts to take them over")
    return results
