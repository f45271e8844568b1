"""Evictions, PodDisruptionBudget status, pod garbage collection, and the node timeline.

* ``evict``: POST ``pods/<name>/eviction`` (policy/v1 Eviction) as kube-apiserver's
  EvictionREST.Create does (kubernetes pkg/registry/core/pod/storage/eviction.go, read at
  commit 01aa0f3f, the 1.3x line): a pod that is Pending, Succeeded, Failed or already being
  deleted is deleted without looking at budgets; more than one budget selecting the pod is
  a 500 ("This pod has more than one PodDisruptionBudget, which the eviction subresource
  does not support."); with one, `checkAndDecrement`: a budget whose
  status.observedGeneration is behind its generation, or with disruptionsAllowed 0, answers
  429 TooManyRequests "Cannot evict pod as it would violate the pod's disruption budget."
  with a DisruptionBudget cause naming the budget; else disruptionsAllowed is decremented,
  the pod is recorded in status.disruptedPods and deleted. An unready pod is evicted
  without decrementing while currentHealthy >= desiredHealthy > 0. A budget with an empty
  selector matches nothing.
* ``Disruption.step``: the disruption controller's status (kubernetes
  pkg/controller/disruption/disruption.go): minAvailable as a number: expected = the pods
  the budget selects, desiredHealthy = minAvailable; maxUnavailable (or a percentage):
  expected = the replicas of the pods' controllers (a ReplicaSet owned by a Deployment
  counts as that Deployment), desiredHealthy = expected - maxUnavailable; currentHealthy
  = Ready pods not being deleted and not in disruptedPods; disruptionsAllowed =
  max(0, currentHealthy - desiredHealthy); observedGeneration = generation. Entries of
  disruptedPods whose pod is gone are dropped.
* Pod garbage collection (kubernetes pkg/controller/podgc/gc_controller.go,
  `gcOrphaned`): pods bound to a node that no longer exists are deleted.
* ``Timeline``: what a test reads of a rollout, with wall-clock times: a node becoming
  Ready, cordoned (spec.unschedulable), deleted; a pod evicted.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog, errors
from .errors import ApiError
from .meta import clone, labels_of, metadata, name_of, namespace_of, timestamp
from .registry import Registry
from .selectors import from_object, labels_match
from .store import Event

POD = catalog.get("v1", "Pod")
NODE = catalog.get("v1", "Node")
PDB = catalog.get("policy/v1", "PodDisruptionBudget")
REPLICASET = catalog.get("apps/v1", "ReplicaSet")
CONTROLLERS = {"ReplicaSet": REPLICASET,
               "StatefulSet": catalog.get("apps/v1", "StatefulSet"),
               "Deployment": catalog.get("apps/v1", "Deployment")}
MANAGER = "kube-controller-manager"


@dataclass(frozen=True)
class Entry:
    """One line of the timeline."""

    at: float  # time.time()
    what: str  # node-ready, node-cordoned, node-deleted, pod-evicted
    subject: str  # node name, or namespace/pod
    node: str = ""  # for pod-evicted: the node it ran on


@dataclass
class Timeline:
    """Node and eviction events in the order they happened."""

    entries: list[Entry] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, what: str, subject: str, node: str = "") -> None:
        with self._lock:
            self.entries.append(Entry(time.time(), what, subject, node))

    def snapshot(self) -> list[Entry]:
        with self._lock:
            return list(self.entries)

    def note(self, event: Event) -> None:
        """A store listener: node transitions."""
        if event.rt.kind != "Node":
            return
        name = name_of(event.obj)
        if event.type == "DELETED":
            self.add("node-deleted", name)
            return
        old = event.old or {}
        if _node_ready(event.obj) and not _node_ready(old):
            self.add("node-ready", name)
        if event.obj.get("spec", {}).get("unschedulable") and not old.get(
                "spec", {}).get("unschedulable"):
            self.add("node-cordoned", name)


def _node_ready(node: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def pod_ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _selects(pdb: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    selector = pdb.get("spec", {}).get("selector") or {}
    requirements = from_object(selector)
    return bool(requirements) and labels_match(requirements, labels_of(pod))


def too_many_requests(message: str, cause: str, retry_after: int) -> ApiError:
    return ApiError(429, "TooManyRequests", message, {
        "causes": [{"reason": "DisruptionBudget", "message": cause}],
        "retryAfterSeconds": retry_after})


VIOLATES = "Cannot evict pod as it would violate the pod's disruption budget."


def evict(registry: Registry, namespace: str, name: str, body: Any, dry_run: bool,
          timeline: Timeline | None) -> dict[str, Any]:
    """POST pods/<name>/eviction; a Success Status, or raise the apiserver's error."""
    if not isinstance(body, dict) or body.get("kind") != "Eviction":
        raise errors.bad_request(f"not a Eviction object: {type(body).__name__}")
    if metadata(body).get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    with registry.store.lock:
        pod = registry.get(POD, namespace, name)
        phase = pod.get("status", {}).get("phase")
        ignore = phase in ("Pending", "Succeeded", "Failed") or bool(
            metadata(pod).get("deletionTimestamp"))
        if not ignore:
            budgets = [b for b in registry.store.objects(PDB, namespace)[0] if _selects(b, pod)]
            if len(budgets) > 1:
                raise ApiError(500, "InternalError", "This pod has more than one "
                               "PodDisruptionBudget, which the eviction subresource does not "
                               "support.")
            if budgets:
                _check_and_decrement(registry, budgets[0], pod, dry_run)
        if not dry_run:
            registry.delete(POD, namespace, name)
            if timeline is not None:
                timeline.add("pod-evicted", f"{namespace}/{name}",
                             str(pod.get("spec", {}).get("nodeName") or ""))
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "code": 201}


def _check_and_decrement(registry: Registry, pdb: dict[str, Any], pod: dict[str, Any],
                         dry_run: bool) -> None:
    status = pdb.get("status") or {}
    pdb_name = name_of(pdb)
    if not pod_ready(pod) and status.get("currentHealthy", 0) >= status.get(
            "desiredHealthy", 0) > 0:
        return  # an unready pod does not count towards healthy: nothing to decrement
    if int(status.get("observedGeneration") or 0) < int(metadata(pdb).get("generation") or 0):
        raise too_many_requests(VIOLATES, f"The disruption budget {pdb_name} is still being "
                                "processed by the server.", 10)
    allowed = int(status.get("disruptionsAllowed") or 0)
    if allowed == 0:
        raise too_many_requests(VIOLATES, f"The disruption budget {pdb_name} needs "
                                f"{status.get('desiredHealthy', 0)} healthy pods and has "
                                f"{status.get('currentHealthy', 0)} currently", 0)
    if dry_run:
        return
    new = clone(pdb)
    new["status"]["disruptionsAllowed"] = allowed - 1
    new["status"].setdefault("disruptedPods", {})[name_of(pod)] = timestamp()
    registry.commit(PDB, pdb, new, "kube-apiserver", subresource="status")


@dataclass
class Disruption:
    """The disruption controller and the pod garbage collector, run in each pass."""

    registry: Registry

    def step(self) -> None:
        store = self.registry.store
        nodes = {name_of(n) for n in store.objects(NODE)[0]}
        pods = store.objects(POD)[0]
        if nodes:
            for pod in pods:
                bound = pod.get("spec", {}).get("nodeName")
                if bound and bound not in nodes:
                    self.registry.delete(POD, namespace_of(pod), name_of(pod))
            pods = store.objects(POD)[0]
        for pdb in store.objects(PDB)[0]:
            self._status(pdb, [p for p in pods if namespace_of(p) == namespace_of(pdb)
                               and _selects(pdb, p)])

    def _status(self, pdb: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        spec = pdb.get("spec", {})
        old = pdb.get("status") or {}
        # An entry goes once its pod is gone or being deleted (the real controller's
        # buildDisruptedPodMap). The fake deletes at once, and a StatefulSet may recreate
        # the pod under the same name in the same pass: a pod created at or after the
        # eviction is not the evicted one.
        created = {name_of(p): str(metadata(p).get("creationTimestamp") or "") for p in pods
                   if not metadata(p).get("deletionTimestamp")}
        disrupted = {k: v for k, v in (old.get("disruptedPods") or {}).items()
                     if k in created and created[k] < v}
        if "minAvailable" in spec and not str(spec["minAvailable"]).endswith("%"):
            expected = len(pods)
            desired = int(spec["minAvailable"])
        else:
            expected = self._expected(pods)
            if "minAvailable" in spec:
                desired = math.ceil(expected * int(str(spec["minAvailable"])[:-1]) / 100)
            else:
                value = spec.get("maxUnavailable", 0)
                unavailable = (math.ceil(expected * int(value[:-1]) / 100)
                               if isinstance(value, str) and value.endswith("%") else int(value))
                desired = max(0, expected - unavailable)
        healthy = sum(1 for p in pods if pod_ready(p) and name_of(p) not in disrupted
                      and not metadata(p).get("deletionTimestamp"))
        status: dict[str, Any] = {"observedGeneration": int(metadata(pdb).get("generation") or 1),
                  "disruptionsAllowed": max(0, healthy - desired),
                  "currentHealthy": healthy, "desiredHealthy": desired,
                  "expectedPods": expected}
        if disrupted:
            status["disruptedPods"] = disrupted
        allowed = status["disruptionsAllowed"] > 0
        status["conditions"] = [{
            "type": "DisruptionAllowed", "status": "True" if allowed else "False",
            "reason": "SufficientPods" if allowed else "InsufficientPods",
            "message": "", "observedGeneration": status["observedGeneration"],
            "lastTransitionTime": next((c.get("lastTransitionTime") for c in old.get(
                "conditions", []) if c.get("status") == ("True" if allowed else "False")),
                timestamp())}]
        if status == old:
            return
        self.registry.commit(PDB, pdb, {**clone(pdb), "status": status}, MANAGER,
                             subresource="status")

    def _expected(self, pods: list[dict[str, Any]]) -> int:
        """The replicas the pods' controllers want (the controller's scale)."""
        owners: dict[tuple[str, str], int] = {}
        for pod in pods:
            ref = next((r for r in metadata(pod).get("ownerReferences", [])
                        if r.get("controller")), None)
            if ref is None:
                owners[("Pod", name_of(pod))] = 1
                continue
            kind, owner_name = str(ref.get("kind")), str(ref.get("name"))
            if kind == "ReplicaSet":
                rs = self.registry.store.peek(REPLICASET, namespace_of(pod), owner_name) or {}
                up = next((r for r in metadata(rs).get("ownerReferences", [])
                           if r.get("controller") and r.get("kind") == "Deployment"), None)
                if up is not None:
                    kind, owner_name = "Deployment", str(up.get("name"))
            rt = CONTROLLERS.get(kind)
            owner = self.registry.store.peek(rt, namespace_of(pod), owner_name) if rt else None
            owners[(kind, owner_name)] = int((owner or {}).get("spec", {}).get("replicas", 1)
                                             if owner else 1)
        return sum(owners.values())
