"""Removing what this environment applied before and no longer declares, and nothing else."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from provisioner.config.model import Environment
from provisioner.kube import Kube, KubeError
from provisioner.workloads.kinds import KINDS
from provisioner.workloads.objects import CONTAINS, PART_OF, Desired, applyset_id, parent_name

# Only names and labels are needed: ask for metadata only (as client-go's metadata client
# does); a server that cannot answer so sends the full objects, which read the same.
METADATA_ONLY = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json"


def previous_group_kinds(kube: Kube, env: Environment) -> set[str]:
    """The group-kinds the ApplySet parent lists (empty on a first deploy)."""
    path = KINDS["ConfigMap"].path(env.namespace, parent_name(env))
    try:
        parent = kube.request("GET", path)
    except KubeError as e:
        if e.status == 404:
            return set()
        raise
    listed = ((parent.get("metadata") or {}).get("annotations") or {}).get(CONTAINS, "")
    return {gk for gk in listed.split(",") if gk in KINDS}


def stale(kube: Kube, env: Environment, desired: Sequence[Desired],
          group_kinds: set[str]) -> list[tuple[str, str]]:
    """(group-kind, name) of members of this ApplySet that are no longer desired."""
    wanted = {(d.kind.group_kind, d.name) for d in desired}
    selector = [("labelSelector", f"{PART_OF}={applyset_id(env)}")]
    kinds = sorted(group_kinds)

    def listing(group_kind: str) -> list[dict[str, Any]]:
        items = kube.request("GET", KINDS[group_kind].path(env.namespace), selector,
                             accept=METADATA_ONLY)
        return list(items.get("items") or [])

    # One LIST a kind, all at once: each is a round trip, and a large one to answer.
    with ThreadPoolExecutor(max_workers=max(len(kinds), 1)) as pool:
        listings = list(pool.map(listing, kinds))
    found = []
    for group_kind, items in zip(kinds, listings, strict=True):
        for item in items:
            name = item["metadata"]["name"]
            labels = item["metadata"].get("labels") or {}
            # The selector already filtered; checking again keeps a misbehaving server from
            # ever making provision delete someone else's object.
            if labels.get(PART_OF) == applyset_id(env) and (group_kind, name) not in wanted:
                found.append((group_kind, name))
    return found


def delete(kube: Kube, env: Environment, targets: Sequence[tuple[str, str]],
           dry_run: bool = False) -> None:
    """Delete the given members (background propagation: their pods go too)."""
    query = [("propagationPolicy", "Background")] + ([("dryRun", "All")] if dry_run else [])

    def one(target: tuple[str, str]) -> None:
        kind = KINDS[target[0]]
        try:
            kube.request("DELETE", kind.path(env.namespace, target[1]), query,
                         verb=f"delete {kind.plural}")
        except KubeError as e:
            if e.status != 404:  # already gone is what we wanted
                raise

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, targets))
