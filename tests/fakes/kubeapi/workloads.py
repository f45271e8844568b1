"""Simulated Deployment, ReplicaSet and StatefulSet controllers.

They follow the real controllers' bookkeeping closely enough for `kubectl rollout
status`, rollbacks and readiness checks to behave as on a cluster:

* Deployment: one ReplicaSet per pod template, named `<deploy>-<pod-template-hash>`, its
  revision in `deployment.kubernetes.io/revision`; re-applying an older template re-uses
  (and re-numbers) the old ReplicaSet. RollingUpdate honours maxSurge/maxUnavailable
  (new pods up first, old ones down as new ones become available); Recreate scales the
  old ReplicaSets to zero first. Status and the Available/Progressing conditions use the
  real reasons; ProgressDeadlineExceeded fires after progressDeadlineSeconds x
  `time_scale` real seconds without progress.
* ReplicaSet: creates/deletes pods to match spec.replicas.
* StatefulSet: pods `<sts>-<ordinal>` one at a time (OrderedReady) or all at once
  (Parallel), PVCs from volumeClaimTemplates, a ControllerRevision per template, rolling
  updates from the highest ordinal down, currentRevision/updateRevision.
* DaemonSet: one pod `<ds>-<5 chars>` per node whose NoSchedule/NoExecute taints the pod
  tolerates, bound to it at creation, with the tolerations the real controller adds
  (kubernetes pkg/controller/daemon/util/daemonset_util.go,
  `AddOrUpdateDaemonPodTolerations`: not-ready and unreachable NoExecute, disk-, memory-
  and pid-pressure and unschedulable NoSchedule, network-unavailable for host-network
  pods). A node tainted `node.cloudprovider.kubernetes.io/uninitialized` gets no pod of a
  DaemonSet that does not tolerate it. Status counts as `kubectl rollout status ds` reads.

Zero-valued status counters are omitted, as the real `omitempty` JSON does.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog, events
from .kubelet import Kubelet, keep_transition_times
from .meta import (
    annotations_of,
    clone,
    controller_ref,
    labels_of,
    metadata,
    name_of,
    timestamp,
)
from .queues import Key, each
from .registry import Registry

_tolerates = Kubelet._tolerates

DEPLOYMENT = catalog.get("apps/v1", "Deployment")
REPLICASET = catalog.get("apps/v1", "ReplicaSet")
STATEFULSET = catalog.get("apps/v1", "StatefulSet")
DAEMONSET = catalog.get("apps/v1", "DaemonSet")
NODE = catalog.get("v1", "Node")
REVISION_KIND = catalog.get("apps/v1", "ControllerRevision")
POD = catalog.get("v1", "Pod")
PVC = catalog.get("v1", "PersistentVolumeClaim")
SERVICE = catalog.get("v1", "Service")
MANAGER = "kube-controller-manager"
REVISION = "deployment.kubernetes.io/revision"
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def template_hash(template: Mapping[str, Any], length: int = 10) -> str:
    """A stable hash of a pod template in the apiserver's "safe" alphabet."""
    number = int(hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest(), 16)
    out = ""
    for _ in range(length):
        number, digit = divmod(number, len(_ALPHABET))
        out += _ALPHABET[digit]
    return out


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value or 0)


def _compact(status: dict[str, Any], keep: tuple[str, ...] = ()) -> dict[str, Any]:
    return {k: v for k, v in status.items() if v not in (0, None, "") or k in keep}


def _condition(kind: str, status: bool, reason: str, message: str) -> dict[str, Any]:
    now = timestamp()
    return {"type": kind, "status": "True" if status else "False", "lastUpdateTime": now,
            "lastTransitionTime": now, "reason": reason, "message": message}  # fmt: skip


@dataclass
class Progress:
    signature: tuple[Any, ...] = ()
    since: float = 0.0


@dataclass
class Workloads:
    registry: Registry
    time_scale: float = 0.01
    progress: dict[str, Progress] = field(default_factory=dict)
    _balancer_ips: Iterator[int] = field(default_factory=itertools.count)
    gate: Callable[[], None] | None = None  # see queues.each

    # Each reconciler below takes the keys its work queue holds (see queues.py) and
    # looks each object up as it is now. They read stored objects in place (Store.peek:
    # copying every pod of every ReplicaSet on each look was most of a pass's cost) and
    # copy an object before they change it.

    # ------------------------------------------------------------------ helpers

    def _live(self, rt: catalog.ResourceType, keys: Iterable[Key]) -> Iterator[dict[str, Any]]:
        return each(self.registry.store, rt, keys, self.gate)

    def _owned(self, rt: catalog.ResourceType, owner: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self.registry.store.owned(rt, metadata(owner)["namespace"],
                                         metadata(owner)["uid"], copy=False)

    def _write(self, rt: catalog.ResourceType, old: dict[str, Any], new: dict[str, Any],
               subresource: str = "") -> dict[str, Any]:  # fmt: skip
        return self.registry.commit(rt, old, new, MANAGER, subresource=subresource, copy=False)

    def _set_status(self, rt: catalog.ResourceType, obj: dict[str, Any],
                    status: dict[str, Any]) -> None:  # fmt: skip
        old = obj.get("status", {})
        keep_transition_times(old.get("conditions", []), status.get("conditions", []))
        for cond in status.get("conditions", []):
            prev: dict[str, Any] = next(
                (c for c in old.get("conditions", []) if c["type"] == cond["type"]), {})
            if prev.get("reason") == cond.get("reason") and "lastUpdateTime" in prev:
                cond["lastUpdateTime"] = prev["lastUpdateTime"]
        if status != old:
            self._write(rt, obj, {**obj, "status": status}, "status")

    def _scale(self, rs: dict[str, Any], replicas: int) -> dict[str, Any]:
        if rs["spec"].get("replicas") == replicas:
            return rs
        new = clone(rs)
        new["spec"]["replicas"] = replicas
        return self._write(REPLICASET, rs, new)

    def _new_pod(self, owner: Mapping[str, Any], name: str, labels: dict[str, str]) -> None:
        template = owner["spec"]["template"]
        pod = {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {**clone(template.get("metadata", {})), "name": name,
                         "namespace": metadata(owner)["namespace"], "labels": labels,
                         "ownerReferences": [controller_ref(owner)]},
            "spec": clone(template["spec"]),
        }  # fmt: skip
        self.registry.commit(POD, None, pod, MANAGER, copy=False)

    # -------------------------------------------------------------- deployments

    def deployments(self, keys: Iterable[Key]) -> None:
        for deployment in self._live(DEPLOYMENT, keys):
            if not deployment["spec"].get("paused"):
                self._rollout(deployment)

    def _rollout(self, deployment: dict[str, Any]) -> None:
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        template = spec["template"]
        pod_hash = template_hash(template)
        sets = self._owned(REPLICASET, deployment)
        new_rs = next((rs for rs in sets if labels_of(rs).get("pod-template-hash") == pod_hash),
                      None)  # fmt: skip
        newest = max((int(annotations_of(rs).get(REVISION, "0")) for rs in sets), default=0)
        old_sets = [rs for rs in sets if rs is not new_rs]
        recreate = spec.get("strategy", {}).get("type") == "Recreate"
        if new_rs is None:
            new_rs = self._create_rs(deployment, pod_hash, newest + 1, scaled_up=not old_sets)
        elif int(annotations_of(new_rs).get(REVISION, "0")) < newest:  # rollback
            renumbered = clone(new_rs)
            metadata(renumbered).setdefault("annotations", {})[REVISION] = str(newest + 1)
            new_rs = self._write(REPLICASET, new_rs, renumbered)
        revision = annotations_of(new_rs)[REVISION]
        if annotations_of(deployment).get(REVISION) != revision:
            annotated = clone(deployment)
            metadata(annotated).setdefault("annotations", {})[REVISION] = revision
            deployment = self._write(DEPLOYMENT, deployment, annotated)
        if recreate:
            for rs in old_sets:
                self._scale(rs, 0)
            pods_left = any(self._owned(POD, rs) for rs in old_sets)
            self._scale(new_rs, 0 if pods_left else desired)
            return
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        surge = _int_or_percent(rolling.get("maxSurge", "25%"), desired, True)
        unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
        if surge == 0 and unavailable == 0:
            unavailable = 1
        old_total = sum(int(rs["spec"].get("replicas", 0)) for rs in old_sets)
        current = int(new_rs["spec"].get("replicas", 0))
        target = max(current, min(desired, desired + surge - old_total)) if old_total else desired
        new_rs = self._scale(new_rs, target)
        new_unavailable = target - int(new_rs.get("status", {}).get("availableReplicas", 0))
        budget = old_total + target - (desired - unavailable) - max(new_unavailable, 0)
        for rs in sorted(old_sets, key=lambda r: int(annotations_of(r).get(REVISION, "0"))):
            replicas = int(rs["spec"].get("replicas", 0))
            cut = min(replicas, max(budget, 0))
            if cut:
                self._scale(rs, replicas - cut)
                budget -= cut

    def _create_rs(self, deployment: dict[str, Any], pod_hash: str, revision: int, *,
                   scaled_up: bool) -> dict[str, Any]:  # fmt: skip
        """The ReplicaSet of a new template: full size for a first rollout, else empty."""
        spec = deployment["spec"]
        name = f"{name_of(deployment)}-{pod_hash}"
        template = clone(spec["template"])
        labels = {**template.get("metadata", {}).get("labels", {}), "pod-template-hash": pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = clone(spec["selector"])
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        replicas = int(spec.get("replicas", 1)) if scaled_up else 0
        rs = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": metadata(deployment)["namespace"],
                         "labels": labels, "ownerReferences": [controller_ref(deployment)],
                         "annotations": {REVISION: str(revision),
                                         "deployment.kubernetes.io/desired-replicas":
                                             str(spec.get("replicas", 1))}},
            "spec": {"replicas": replicas, "selector": selector, "template": template},
        }  # fmt: skip
        created = self.registry.commit(REPLICASET, None, rs, MANAGER)
        self.progress[metadata(deployment)["uid"]] = Progress((name,), time.monotonic())
        events.record(self.registry, deployment, "ScalingReplicaSet",
                      f"Scaled up replica set {name} from 0 to {replicas or 1}")  # fmt: skip
        return created

    def deployment_statuses(self, keys: Iterable[Key]) -> list[Key]:
        """Update the statuses; the keys of rollouts still in progress, whose Progressing
        condition can change with time alone (the deadline), to look at again."""
        again = []
        for deployment in self._live(DEPLOYMENT, keys):
            if self._deployment_status(deployment):
                again.append((metadata(deployment)["namespace"], name_of(deployment)))
        return again

    def _deployment_status(self, deployment: dict[str, Any]) -> bool:
        spec = deployment["spec"]
        desired = int(spec.get("replicas", 1))
        sets = self._owned(REPLICASET, deployment)
        pod_hash = template_hash(spec["template"])
        new_rs = next((rs for rs in sets if labels_of(rs).get("pod-template-hash") == pod_hash),
                      None)  # fmt: skip

        def total(key: str, among: list[dict[str, Any]]) -> int:
            return sum(int(rs.get("status", {}).get(key, 0)) for rs in among)

        replicas = total("replicas", sets)
        updated = total("replicas", [new_rs] if new_rs else [])
        available = total("availableReplicas", sets)
        wanted = sum(int(rs["spec"].get("replicas", 0)) for rs in sets)
        rolling = spec.get("strategy", {}).get("rollingUpdate", {})
        max_unavailable = _int_or_percent(rolling.get("maxUnavailable", "25%"), desired, False)
        status = _compact({
            "observedGeneration": metadata(deployment).get("generation"),
            "replicas": replicas, "updatedReplicas": updated,
            "readyReplicas": total("readyReplicas", sets), "availableReplicas": available,
            "unavailableReplicas": max(wanted - available, 0),
        })  # fmt: skip
        minimum = available >= desired - max_unavailable
        conditions = [_condition(
            "Available", minimum, "MinimumReplicasAvailable" if minimum
            else "MinimumReplicasUnavailable", "Deployment has minimum availability." if minimum
            else "Deployment does not have minimum availability.")]  # fmt: skip
        progressing = self._progressing(deployment, new_rs, desired, replicas, updated,
                                        available)  # fmt: skip
        status["conditions"] = [*conditions, progressing]
        self._set_status(DEPLOYMENT, deployment, status)
        return progressing["reason"] not in ("NewReplicaSetAvailable", "ProgressDeadlineExceeded")

    def _progressing(self, deployment: dict[str, Any], new_rs: dict[str, Any] | None,
                     desired: int, replicas: int, updated: int,
                     available: int) -> dict[str, Any]:  # fmt: skip
        rs_name = name_of(new_rs) if new_rs else ""
        previous: dict[str, Any] = next(
            (c for c in deployment.get("status", {}).get("conditions", [])
             if c["type"] == "Progressing"), {})  # fmt: skip
        if updated == desired and replicas == updated and available >= updated and new_rs:
            return _condition("Progressing", True, "NewReplicaSetAvailable",
                              f'ReplicaSet "{rs_name}" has successfully progressed.')
        uid = metadata(deployment)["uid"]
        signature = (rs_name, replicas, updated, available)
        track = self.progress.setdefault(uid, Progress(signature, time.monotonic()))
        if track.signature != signature:
            track.signature, track.since = signature, time.monotonic()
        deadline = deployment["spec"].get("progressDeadlineSeconds", 600) * self.time_scale
        timed_out = previous.get("reason") == "ProgressDeadlineExceeded" and (
            previous.get("message", "").startswith(f'ReplicaSet "{rs_name}"'))
        if timed_out or time.monotonic() - track.since > deadline:
            return _condition("Progressing", False, "ProgressDeadlineExceeded",
                              f'ReplicaSet "{rs_name}" has timed out progressing.')
        if previous.get("reason") in (None, "NewReplicaSetAvailable") and updated == 0:
            return _condition("Progressing", True, "NewReplicaSetCreated",
                              f'Created new replica set "{rs_name}"')
        return _condition("Progressing", True, "ReplicaSetUpdated",
                          f'ReplicaSet "{rs_name}" is progressing.')

    # -------------------------------------------------------------- replicasets

    def replicasets(self, keys: Iterable[Key]) -> None:
        for rs in self._live(REPLICASET, keys):
            pods = self._owned(POD, rs)
            want = int(rs["spec"].get("replicas", 1))
            for _ in range(want - len(pods)):
                suffix = "".join(self.registry.rng.choice(_ALPHABET) for _ in range(5))
                self._new_pod(rs, f"{name_of(rs)}-{suffix}",
                              dict(rs["spec"]["template"].get("metadata", {}).get("labels", {})))
            if len(pods) > want:
                ranked = sorted(pods, key=lambda p: (_ready(p), metadata(p)["creationTimestamp"]))
                for pod in ranked[: len(pods) - want]:
                    self.registry.delete(POD, metadata(pod)["namespace"], name_of(pod))
            if want != len(pods):
                verb = "Create" if want > len(pods) else "Delete"
                events.record(self.registry, rs, f"Successful{verb}",
                              f"{verb}d {abs(want - len(pods))} pod(s)")

    def replicaset_statuses(self, keys: Iterable[Key]) -> None:
        for rs in self._live(REPLICASET, keys):
            pods = self._owned(POD, rs)
            ready = sum(_ready(p) for p in pods)
            status = _compact({
                "replicas": len(pods), "fullyLabeledReplicas": len(pods), "readyReplicas": ready,
                "availableReplicas": ready, "observedGeneration": metadata(rs).get("generation"),
            }, keep=("replicas",))  # fmt: skip
            self._set_status(REPLICASET, rs, status)

    # ------------------------------------------------------------- statefulsets

    def statefulsets(self, keys: Iterable[Key]) -> None:
        for sts in self._live(STATEFULSET, keys):
            self._statefulset(sts)

    def _revision(self, sts: dict[str, Any]) -> str:
        """Ensure the ControllerRevision of the current template; return its name."""
        template = sts["spec"]["template"]
        pod_hash = template_hash(template)
        name = f"{name_of(sts)}-{pod_hash}"
        namespace = metadata(sts)["namespace"]
        if self.registry.store.get(REVISION_KIND, namespace, name) is None:
            number = 1 + max((int(r.get("revision", 0)) for r in self._owned(REVISION_KIND, sts)),
                             default=0)  # fmt: skip
            revision = {
                "apiVersion": "apps/v1", "kind": "ControllerRevision",
                "metadata": {"name": name, "namespace": namespace,
                             "labels": {**labels_of({"metadata": template.get("metadata", {})}),
                                        "controller.kubernetes.io/hash": pod_hash},
                             "ownerReferences": [controller_ref(sts)]},
                "data": {"spec": {"template": {**clone(template), "$patch": "replace"}}},
                "revision": number,
            }  # fmt: skip
            self.registry.commit(REVISION_KIND, None, revision, MANAGER)
        return name

    def _statefulset(self, sts: dict[str, Any]) -> None:
        spec = sts["spec"]
        want = int(spec.get("replicas", 1))
        revision = self._revision(sts)
        namespace = metadata(sts)["namespace"]
        pods = {name_of(p): p for p in self._owned(POD, sts)}
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        for ordinal in range(want):
            name = f"{name_of(sts)}-{ordinal}"
            if name in pods:
                if ordered and not _ready(pods[name]):
                    return
                continue
            self._claims(sts, ordinal)
            labels = {**spec["template"].get("metadata", {}).get("labels", {}),
                      "controller-revision-hash": revision,
                      "statefulset.kubernetes.io/pod-name": name,
                      "apps.kubernetes.io/pod-index": str(ordinal)}  # fmt: skip
            self._new_pod(sts, name, labels)
            if ordered:
                return
        extra = sorted((p for n, p in pods.items() if int(n.rsplit("-", 1)[1]) >= want),
                       key=lambda p: -int(name_of(p).rsplit("-", 1)[1]))  # fmt: skip
        for pod in extra[:1] if ordered else extra:
            self.registry.delete(POD, namespace, name_of(pod))
        if extra:
            return
        partition = int(spec.get("updateStrategy", {}).get("rollingUpdate", {}).get(
            "partition", 0))  # fmt: skip
        if spec.get("updateStrategy", {}).get("type", "RollingUpdate") != "RollingUpdate":
            return
        if not all(_ready(p) for p in pods.values()):
            return
        stale = [p for n, p in pods.items() if labels_of(p).get("controller-revision-hash")
                 != revision and int(n.rsplit("-", 1)[1]) >= partition]  # fmt: skip
        if stale:
            victim = max(stale, key=lambda p: int(name_of(p).rsplit("-", 1)[1]))
            self.registry.delete(POD, namespace, name_of(victim))

    def _claims(self, sts: dict[str, Any], ordinal: int) -> None:
        namespace = metadata(sts)["namespace"]
        for template in sts["spec"].get("volumeClaimTemplates", []):
            name = f"{name_of(template)}-{name_of(sts)}-{ordinal}"
            if self.registry.store.get(PVC, namespace, name) is not None:
                continue
            claim = {"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": name, "namespace": namespace,
                                  "labels": _selector_labels(sts)},
                     "spec": clone(template.get("spec", {}))}  # fmt: skip
            self.registry.commit(PVC, None, claim, MANAGER)

    def statefulset_statuses(self, keys: Iterable[Key]) -> None:
        for sts in self._live(STATEFULSET, keys):
            revision = f"{name_of(sts)}-{template_hash(sts['spec']['template'])}"
            pods = self._owned(POD, sts)
            want = int(sts["spec"].get("replicas", 1))
            updated = [p for p in pods if labels_of(p).get("controller-revision-hash") == revision]
            ready = sum(_ready(p) for p in pods)
            current = sts.get("status", {}).get("currentRevision") or revision
            if len(updated) == want == ready and len(pods) == want:
                current = revision
            status = _compact({
                "observedGeneration": metadata(sts).get("generation"), "replicas": len(pods),
                "readyReplicas": ready, "availableReplicas": ready,
                "currentReplicas": sum(labels_of(p).get("controller-revision-hash") == current
                                       for p in pods),
                "updatedReplicas": len(updated), "currentRevision": current,
                "updateRevision": revision, "collisionCount": 0,
            }, keep=("replicas", "collisionCount"))  # fmt: skip
            self._set_status(STATEFULSET, sts, status)

    # -------------------------------------------------------------- daemonsets

    def daemonsets(self, keys: Iterable[Key]) -> None:
        for ds in self._live(DAEMONSET, keys):
            self._daemonset(ds)

    def _eligible(self, ds: Mapping[str, Any]) -> list[str]:
        """The nodes a DaemonSet's pod tolerates (sorted names)."""
        probe = {"spec": {"tolerations": _daemon_tolerations(ds["spec"]["template"])}}
        return sorted(name_of(node) for node in self.registry.store.objects(NODE)[0]
                      if all(_tolerates(probe, taint) for taint in
                             node.get("spec", {}).get("taints", [])
                             if taint.get("effect") in ("NoSchedule", "NoExecute")))

    def _daemonset(self, ds: dict[str, Any]) -> None:
        template = ds["spec"]["template"]
        revision = template_hash(template)
        namespace = metadata(ds)["namespace"]
        pods = self._owned(POD, ds)
        wanted = set(self._eligible(ds))
        placed: dict[str, list[dict[str, Any]]] = {}
        for pod in pods:
            placed.setdefault(str(pod["spec"].get("nodeName") or ""), []).append(pod)
        for node, on_node in placed.items():
            if node not in wanted:
                for pod in on_node:
                    self.registry.delete(POD, namespace, name_of(pod))
        for node in sorted(wanted - placed.keys()):
            suffix = "".join(self.registry.rng.choice(_ALPHABET) for _ in range(5))
            labels = {**template.get("metadata", {}).get("labels", {}),
                      "controller-revision-hash": revision, "pod-template-generation":
                      str(metadata(ds).get("generation", 1))}  # fmt: skip
            pod = {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {**clone(template.get("metadata", {})),
                             "name": f"{name_of(ds)}-{suffix}", "namespace": namespace,
                             "labels": labels, "ownerReferences": [controller_ref(ds)]},
                "spec": {**clone(template["spec"]), "nodeName": node,
                         "tolerations": _daemon_tolerations(template)},
            }  # fmt: skip
            self.registry.commit(POD, None, pod, MANAGER, copy=False)
        # RollingUpdate, maxUnavailable 1: replace one stale pod once all are ready.
        current = [p for n, on_node in placed.items() if n in wanted for p in on_node]
        stale = [p for p in current
                 if labels_of(p).get("controller-revision-hash") != revision]  # fmt: skip
        if stale and all(_ready(p) for p in current):
            self.registry.delete(POD, namespace, name_of(min(stale, key=name_of)))

    def daemonset_statuses(self, keys: Iterable[Key]) -> None:
        for ds in self._live(DAEMONSET, keys):
            revision = template_hash(ds["spec"]["template"])
            wanted = set(self._eligible(ds))
            pods = [p for p in self._owned(POD, ds) if p["spec"].get("nodeName") in wanted]
            ready = sum(_ready(p) for p in pods)
            updated = sum(labels_of(p).get("controller-revision-hash") == revision
                          for p in pods)  # fmt: skip
            status = _compact({
                "currentNumberScheduled": len({p["spec"]["nodeName"] for p in pods}),
                "numberMisscheduled": 0, "desiredNumberScheduled": len(wanted),
                "numberReady": ready, "observedGeneration": metadata(ds).get("generation"),
                "updatedNumberScheduled": updated, "numberAvailable": ready,
                "numberUnavailable": max(len(wanted) - ready, 0),
            }, keep=("currentNumberScheduled", "numberMisscheduled", "desiredNumberScheduled",
                     "numberReady"))  # fmt: skip
            self._set_status(DAEMONSET, ds, status)

    # ------------------------------------------------------------ small extras

    def claims(self, keys: Iterable[Key]) -> None:
        """Bind PVCs at once."""
        for claim in self._live(PVC, keys):
            if claim.get("status", {}).get("phase") != "Bound":
                status = {"phase": "Bound", "accessModes": claim["spec"].get("accessModes", []),
                          "capacity": claim["spec"].get("resources", {}).get("requests", {})}
                self._write(PVC, claim, {**claim, "status": status}, "status")

    def services(self, keys: Iterable[Key]) -> None:
        """Give LoadBalancer Services an ingress IP, as a cloud controller would."""
        for svc in self._live(SERVICE, keys):
            if svc["spec"].get("type") == "LoadBalancer" and not svc.get("status", {}).get(
                    "loadBalancer", {}).get("ingress"):  # fmt: skip
                n = next(self._balancer_ips)
                status = {"loadBalancer": {"ingress": [{"ip": f"203.0.113.{n % 250 + 1}",
                                                        "ipMode": "VIP"}]}}  # fmt: skip
                self._write(SERVICE, svc, {**svc, "status": status}, "status")


# AddOrUpdateDaemonPodTolerations (daemonset_util.go): what every daemon pod tolerates.
_DAEMON_TOLERATIONS = (
    ("node.kubernetes.io/not-ready", "NoExecute"),
    ("node.kubernetes.io/unreachable", "NoExecute"),
    ("node.kubernetes.io/disk-pressure", "NoSchedule"),
    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
    ("node.kubernetes.io/pid-pressure", "NoSchedule"),
    ("node.kubernetes.io/unschedulable", "NoSchedule"),
)


def _daemon_tolerations(template: Mapping[str, Any]) -> list[dict[str, Any]]:
    tolerations = [clone(t) for t in template.get("spec", {}).get("tolerations", [])]
    defaults = list(_DAEMON_TOLERATIONS)
    if template.get("spec", {}).get("hostNetwork"):
        defaults.append(("node.kubernetes.io/network-unavailable", "NoSchedule"))
    for key, effect in defaults:
        if not any(t.get("key") == key and t.get("effect") == effect for t in tolerations):
            tolerations.append({"key": key, "operator": "Exists", "effect": effect})
    return tolerations


def _selector_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return dict((obj.get("spec", {}).get("selector") or {}).get("matchLabels") or {})


def _ready(pod: Mapping[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))  # fmt: skip

