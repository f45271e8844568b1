"""The platform gate: after every node is Ready, the add-ons that make the cluster usable.

Nodes Ready is not a working cluster on DigitalOcean. The kubelets run with
``--cloud-provider=external`` and so register tainted
``node.cloudprovider.kubernetes.io/uninitialized`` (kubernetes
pkg/kubelet/kubelet_node_status.go, ``initialNode``); only the cloud controller manager's
node controller lifts the taint (k8s.io/cloud-provider controllers/node/node_controller.go),
and until it does nothing that does not tolerate it is scheduled: not CoreDNS, not the
CSI driver, not metrics-server, not the apps. A CCM that crash-loops (a bad token, no
VPC id) leaves a cluster whose nodes are all Ready and which can run nothing.

So `up` waits, after the nodes, until no node carries that taint and every add-on is
rolled out, and on a deadline names each add-on still missing with its pods' state and the
last lines of their logs. The objects are the ones the add-on manifests create
(provisioner/render/addons.py; tests/contract/test_upstream_facts.py holds the names):
kubeadm's CoreDNS Deployment, the CNI's DaemonSet, the DigitalOcean CCM Deployment, the CSI
driver's controller StatefulSet and node DaemonSet, and metrics-server's Deployment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.bootstrap.readiness import NotReady, Report
from provisioner.kube import AccessDenied, Kube, KubeError

UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
LOG_LINES = 10  # of each failing pod's log in the timeout message
PODS_SHOWN = 3  # per add-on


@dataclass(frozen=True)
class Workload:
    """One add-on object whose rollout the gate waits for."""

    addon: str
    kind: str  # Deployment, DaemonSet or StatefulSet
    namespace: str
    name: str

    @property
    def path(self) -> str:
        plural = {"Deployment": "deployments", "DaemonSet": "daemonsets",
                  "StatefulSet": "statefulsets"}[self.kind]
        return f"/apis/apps/v1/namespaces/{self.namespace}/{plural}/{self.name}"

    def label(self) -> str:
        return f"{self.addon} ({self.kind} {self.namespace}/{self.name})"


def workloads(cni: str) -> list[Workload]:
    """What the gate waits for, in the order the node applies them (CoreDNS: kubeadm)."""
    network = (Workload("calico", "DaemonSet", "kube-system", "calico-node") if cni == "calico"
               else Workload("flannel", "DaemonSet", "kube-flannel", "kube-flannel-ds"))
    return [
        Workload("CoreDNS", "Deployment", "kube-system", "coredns"),
        network,
        Workload("DigitalOcean cloud controller manager", "Deployment", "kube-system",
                 "digitalocean-cloud-controller-manager"),
        Workload("CSI driver controller", "StatefulSet", "kube-system", "csi-do-controller"),
        Workload("CSI driver node plugin", "DaemonSet", "kube-system", "csi-do-node"),
        Workload("metrics-server", "Deployment", "kube-system", "metrics-server"),
    ]


def rollout(obj: dict[str, Any] | None) -> str:
    """'' when rolled out, else what is missing (as `kubectl rollout status` judges it)."""
    if obj is None:
        return "not created yet"
    meta, spec, status = obj.get("metadata") or {}, obj.get("spec") or {}, obj.get("status") or {}
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
        return "its controller has not seen the latest version yet"
    kind = obj.get("kind")
    if kind == "DaemonSet":
        desired = int(status.get("desiredNumberScheduled") or 0)
        updated = int(status.get("updatedNumberScheduled") or 0)
        available = int(status.get("numberAvailable") or 0)
        if desired == 0:
            return "no node can run its pods yet"
        if updated < desired or available < desired:
            return f"{available}/{desired} pods available"
        return ""
    wanted = 1 if spec.get("replicas") is None else int(spec["replicas"])
    updated = int(status.get("updatedReplicas") or 0)
    ready = int(status.get("availableReplicas" if kind == "Deployment" else "readyReplicas")
                or 0)
    if updated < wanted or ready < wanted:
        return f"{ready}/{wanted} replicas {'available' if kind == 'Deployment' else 'ready'}"
    return ""


def tainted_nodes(kube: Kube) -> list[str]:
    """Nodes the cloud controller manager has not initialised yet."""
    nodes = kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []
    return sorted(str(n["metadata"]["name"]) for n in nodes
                  if any(t.get("key") == UNINITIALIZED
                         for t in (n.get("spec") or {}).get("taints") or []))


def _get(kube: Kube, workload: Workload) -> dict[str, Any] | None:
    try:
        return kube.request("GET", workload.path, verb=f"get {workload.kind.lower()}s")
    except KubeError as e:
        if e.status == 404:
            return None
        raise


@dataclass(frozen=True)
class Pending:
    """What the gate still waits for: tainted nodes, add-ons with what they lack."""

    tainted: tuple[str, ...]
    addons: tuple[tuple[Workload, str], ...]

    def __bool__(self) -> bool:
        return bool(self.tainted or self.addons)

    def summary(self) -> str:
        parts = []
        if self.tainted:
            parts.append(f"{len(self.tainted)} node(s) not initialised by the cloud "
                         "controller manager")
        parts += [f"{w.addon}: {why}" for w, why in self.addons]
        return "; ".join(parts)


def pending(kube: Kube, wanted: list[Workload]) -> Pending:
    """One look at the nodes' taints and every add-on."""
    missing = []
    for workload in wanted:
        why = rollout(_get(kube, workload))
        if why:
            missing.append((workload, why))
    return Pending(tuple(tainted_nodes(kube)), tuple(missing))


def wait_for_platform(api: Any, cni: str, deadline: float, report: Report,
                      interval: float = 3.0, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> None:
    """Until no node is uninitialised and every add-on is rolled out, or the deadline."""
    kube = Kube(api, timeout=10, attempts=3)
    wanted = workloads(cni)
    last = ""
    while True:
        try:
            state = pending(kube, wanted)
        except AccessDenied:
            raise
        except KubeError as e:  # the API flapping (a failover) is not an answer
            if clock() >= deadline:
                raise NotReady(f"the cluster's add-ons could not be read: {e}") from e
            report(f"reading the add-ons failed, retrying: {e}")
            sleep(interval)
            continue
        if not state:
            report(f"add-ons ready: {', '.join(w.addon for w in wanted)}; "
                   "every node initialised by the cloud controller manager")
            return
        summary = state.summary()
        if summary != last:
            report(f"waiting for the add-ons: {summary}")
            last = summary
        if clock() >= deadline:
            raise NotReady(explain(kube, state))
        sleep(interval)


def explain(kube: Kube, state: Pending) -> str:
    """The timeout message: each missing add-on, its pods' state and their last log lines."""
    lines = ["the cluster's add-ons did not come up in time (nodes are Ready, but the "
             "cluster cannot run workloads yet):"]
    if state.tainted:
        lines.append(f"  nodes still tainted {UNINITIALIZED} (the DigitalOcean cloud "
                     f"controller manager lifts it): {', '.join(state.tainted)}")
    for workload, why in state.addons:
        lines.append(f"  {workload.label()}: {why}")
        lines += [f"    {line}" for line in _pods(kube, workload)]
    lines.append("Look at the first control-plane node: `journalctl -u cloud-final` shows "
                 "the add-ons being applied; `kubectl -n kube-system get pods` their state")
    return "\n".join(lines)


def _pods(kube: Kube, workload: Workload) -> list[str]:
    """A few lines per pod of the add-on: phase, waiting reason, restarts, last log lines."""
    try:
        obj = _get(kube, workload)
        if obj is None:
            return []
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        query = [("labelSelector", ",".join(f"{k}={v}" for k, v in sorted(selector.items())))]
        pods = kube.request("GET", f"/api/v1/namespaces/{workload.namespace}/pods", query,
                            verb="list pods").get("items") or []
    except KubeError as e:
        return [f"(its pods could not be listed: {e})"]
    if not pods:
        return ["no pods"]
    lines = []
    for pod in sorted(pods, key=lambda p: str(p["metadata"]["name"]))[:PODS_SHOWN]:
        lines += _pod(kube, workload.namespace, pod)
    if len(pods) > PODS_SHOWN:
        lines.append(f"... and {len(pods) - PODS_SHOWN} more pods")
    return lines


def _pod(kube: Kube, namespace: str, pod: dict[str, Any]) -> list[str]:
    name = str(pod["metadata"]["name"])
    status = pod.get("status") or {}
    node = (pod.get("spec") or {}).get("nodeName")
    head = f"pod {name}{f' on {node}' if node else ''}: {status.get('phase', 'Unknown')}"
    scheduled: dict[str, Any] = next((c for c in status.get("conditions") or []
                                      if c.get("type") == "PodScheduled"), {})
    if scheduled.get("status") == "False":
        return [f"{head}, not scheduled: {scheduled.get('message') or scheduled.get('reason')}"]
    statuses = status.get("containerStatuses") or []
    failing = [s for s in statuses if not s.get("ready")]
    details = []
    for s in failing or statuses[:1]:
        waiting = (s.get("state") or {}).get("waiting") or {}
        text = f"{s.get('name')} " + (f"waiting ({waiting.get('reason')})" if waiting
                                      else "running" if not failing else "not ready")
        details.append(f"{text}, {int(s.get('restartCount') or 0)} restarts")
    lines = [head + (f", {'; '.join(details)}" if details else "")]
    container = str((failing or statuses or [{}])[0].get("name") or "")
    if container:
        try:
            log = kube.text(f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                            [("container", container), ("tailLines", str(LOG_LINES))],
                            verb="get pods/log")
            shown = [line for line in log.splitlines() if line.strip()][-LOG_LINES:]
            lines.append(f"last log lines of {container}:" if shown else "its log is empty")
            lines += [f"  | {line}" for line in shown]
        except KubeError as e:
            lines.append(f"no log: {str(e)[:200]}")
    return lines
