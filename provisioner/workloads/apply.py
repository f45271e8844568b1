"""Server-side apply of the desired objects, concurrently where they are independent.

The namespace goes first, then the configuration every app reads (ConfigMaps, Secrets),
each as a barrier. Then the workloads, all at once; an app's Service, autoscaler and
disruption budget follow as soon as that app's workloads are applied, not when every
app's are: a barrier there would drain the requests in flight once per deploy.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError
from provisioner.workloads.kinds import WORKLOADS
from provisioner.workloads.objects import APP_LABEL, Desired

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


def _app(obj: Desired) -> str | None:
    return ((obj.body.get("metadata") or {}).get("labels") or {}).get(APP_LABEL)


def apply_all(kube: Kube, objects: Sequence[Desired], force: bool = False,
              dry_run: bool = False, on_applied: Callable[[Applied], None] | None = None,
              parallelism: int = PARALLELISM) -> list[Applied]:
    """Apply every object; all conflicts are reported together, by field."""
    done: dict[int, Applied] = {}
    conflicts: dict[int, str] = {}
    order = {id(obj): n for n, obj in enumerate(objects)}
    with ThreadPoolExecutor(max_workers=parallelism) as pool:
        stages = [list(tier) for _, tier in groupby(objects, key=lambda d: min(
            d.kind.tier, WORKLOADS))]
        for stage in stages:
            _stage(pool, kube, stage, force, dry_run, order, done, conflicts, on_applied)
            if conflicts:
                raise Conflicts("other field managers own fields provision would change:\n"
                                + "\n".join(conflicts[n] for n in sorted(conflicts))
                                + "\nre-run with --force-conflicts to take them over")
    return [done[n] for n in sorted(done)]


def _stage(pool: ThreadPoolExecutor, kube: Kube, stage: list[Desired], force: bool,
           dry_run: bool, order: dict[int, int], done: dict[int, Applied],
           conflicts: dict[int, str], on_applied: Callable[[Applied], None] | None) -> None:
    """One stage; in the workloads' stage an object of a later tier waits for the
    workloads of its app (all workloads, if it names no app)."""
    workloads = [d for d in stage if d.kind.tier <= WORKLOADS]
    blockers = Counter(_app(d) for d in workloads)
    held: dict[str | None, list[Desired]] = defaultdict(list)
    running: dict[Future[Applied], Desired] = {}

    def submit(obj: Desired) -> None:
        running[pool.submit(apply_one, kube, obj, force, dry_run)] = obj

    for obj in stage:
        if obj.kind.tier <= WORKLOADS:
            submit(obj)
        elif _app(obj) is None and workloads:
            held[None].append(obj)
        elif blockers[_app(obj)]:
            held[_app(obj)].append(obj)
        else:
            submit(obj)
    left = len(workloads)
    while running:
        finished, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in sorted(finished, key=lambda f: order[id(running[f])]):
            obj = running.pop(future)
            try:
                applied = future.result()
            except KubeError as e:
                if e.status != 409:
                    raise
                conflicts[order[id(obj)]] = _conflict_text(obj, e)
            else:
                done[order[id(obj)]] = applied
                if on_applied is not None:
                    on_applied(applied)
            if obj.kind.tier > WORKLOADS:
                continue
            left -= 1
            blockers[_app(obj)] -= 1
            # After a conflict nothing more starts: the re-run with --force-conflicts
            # applies the rest, as a barrier between the tiers would have it.
            if not blockers[_app(obj)] and not conflicts:
                for dependent in held.pop(_app(obj), []):
                    submit(dependent)
            if not left and not conflicts:
                for dependent in held.pop(None, []):
                    submit(dependent)
