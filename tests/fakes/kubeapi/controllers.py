"""The control loop: every `step_delay` seconds, one deterministic reconcile pass.

A pass runs, in order: Deployment rollouts (ReplicaSets), ReplicaSets (pods),
StatefulSets (pods, PVCs), DaemonSets (a pod per node), the kubelet (scheduling, pod
status), then the ReplicaSet, Deployment, StatefulSet and DaemonSet statuses, then PVC
binding, LoadBalancer IPs and the cloud node controller (cloudnodes.py). Each of them
looks only at the objects on its work queue (queues.py): what changed since its last
turn, earlier steps of the same pass included, and what it asked to see again. The whole
pass holds the store lock, so API clients see either the state before or after a pass
(unless the passes defer to the API's requests: `busy`, see `run_once`).

A new Deployment is Available after about `start_steps + 2` passes, so with the default
50 ms step a rollout takes a few hundred milliseconds: long enough for a client to see
"Waiting for deployment ... rollout to finish", short enough for tests. `pause()` stops
the loop (state frozen), `run_once()` then advances it by hand, one pass at a time.
"""

from __future__ import annotations

import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from . import catalog
from . import queues as q
from .cloudnodes import CloudNodes, uninitialized_taint
from .disruption import Disruption
from .kubelet import Kubelet, keep_transition_times
from .meta import clone, timestamp
from .registry import Registry
from .workloads import Workloads

NODE = catalog.get("v1", "Node")

_READY = {
    True: ("True", "KubeletReady", "kubelet is posting ready status"),
    False: ("False", "KubeletNotReady", "container runtime network not ready: NetworkReady=false "
            "reason:NetworkPluginNotReady message:Network plugin returns error: cni plugin not "
            "initialized"),
    None: ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status."),
}  # fmt: skip


class Controllers:
    """Background reconcile loop plus the node helpers."""

    def __init__(self, registry: Registry, *, step_delay: float = 0.05, time_scale: float = 0.01,
                 start_steps: int = 2, crash_steps: int = 2) -> None:  # fmt: skip
        self.registry = registry
        self.step_delay = step_delay
        self.cpu_seconds = 0.0  # CPU time of the loop's passes (thread time)
        # Before each pass the loop waits while this says the API server is busy, for at
        # most `defer_limit` s (None: never waits). See FakeKubeAPI(defer_controllers=).
        self.busy: Callable[[], bool] | None = None
        self.defer_limit = 2.0
        self._deadline = 0.0
        self.queues = q.WorkQueues(registry.store)
        registry.store.subscribe(self.queues.note, None)
        self.kubelet = Kubelet(registry, start_steps=start_steps, crash_steps=crash_steps)
        self.workloads = Workloads(registry, time_scale=time_scale)
        self.kubelet.gate = self.workloads.gate = self._gate
        self.cloud_nodes = CloudNodes(registry)
        # Budgets' status and the pod garbage collector: recomputed after pods, budgets
        # or nodes changed (a flag, not a queue: one pass looks at all of them).
        self.disruption = Disruption(registry)
        self._disrupted = True
        registry.store.subscribe(self._note_disruption, None)
        self.passes = 0
        self.errors: list[str] = []  # tracebacks of failed passes (tests assert it is empty)
        self._running = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        registry.on_delete.append(self._forget)

    @property
    def time_scale(self) -> float:
        """Real seconds per simulated second (progressDeadlineSeconds, backoffs)."""
        return self.workloads.time_scale

    @time_scale.setter
    def time_scale(self, value: float) -> None:
        self.workloads.time_scale = value

    # ----------------------------------------------------------------- the loop

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._running.set()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="fake-kube-ctrl")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def pause(self) -> None:
        """Freeze the simulated cluster (API writes still work; nothing reconciles)."""
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def _loop(self) -> None:
        while not self._stop.wait(self.step_delay):
            self._running.wait()
            if self._stop.is_set():
                return
            try:
                self._loop_pass()
            except Exception as exc:  # a bug in the fake: keep the loop alive, keep the error
                self.errors.append(f"{type(exc).__name__}: {exc}\n{traceback.format_exc()}")

    def _loop_pass(self) -> None:
        self._deadline = time.monotonic() + self.defer_limit
        self._gate()
        before = time.thread_time()
        try:
            self.run_once()
        finally:
            self.cpu_seconds += time.thread_time() - before

    def _gate(self) -> None:
        """With `busy` set: wait while the API server is busy, until the pass's deadline."""
        if self.busy is None:
            return
        while self.busy() and time.monotonic() < self._deadline and not self._stop.is_set():
            time.sleep(0.001)

    def run_once(self, passes: int = 1) -> None:
        """Advance the simulation by `passes` reconcile passes (synchronously).

        A pass holds the store lock throughout, unless `busy` is set: then each object is
        reconciled under the lock on its own and the pass waits between objects while the
        API is busy, so a pass that started in a lull does not stall the next burst.
        """
        for _ in range(passes):
            with contextlib.nullcontext() if self.busy else self.registry.store.lock:
                w, take = self.workloads, self.queues.take
                w.deployments(take(q.DEPLOYMENTS))
                w.replicasets(take(q.REPLICASETS))
                w.statefulsets(take(q.STATEFULSETS))
                w.daemonsets(take(q.DAEMONSETS))
                starting = self.kubelet.step(take(q.PODS))
                w.replicaset_statuses(take(q.REPLICASET_STATUS))
                rolling = w.deployment_statuses(take(q.DEPLOYMENT_STATUS))
                w.statefulset_statuses(take(q.STATEFULSET_STATUS))
                w.daemonset_statuses(take(q.DAEMONSET_STATUS))
                w.claims(take(q.CLAIMS))
                w.services(take(q.SERVICES))
                self.cloud_nodes.step(take(q.CLOUD_NODES))
                if self._disrupted:
                    self._disrupted = False
                    self.disruption.step()
                for key in starting:
                    self.queues.add(q.PODS, key)
                for key in rolling:
                    self.queues.add(q.DEPLOYMENT_STATUS, key)
                self.passes += 1

    def _note_disruption(self, event: Any) -> None:
        if event.rt.kind in ("Pod", "Node", "PodDisruptionBudget"):
            self._disrupted = True

    def _forget(self, rt: catalog.ResourceType, obj: Mapping[str, Any]) -> None:
        uid = obj.get("metadata", {}).get("uid", "")
        self.kubelet.pods.pop(uid, None)
        self.workloads.progress.pop(uid, None)

    # -------------------------------------------------------------------- nodes

    def add_node(
        self, name: str, *, ready: bool | None = True, reason: str | None = None,
        message: str | None = None, control_plane: bool = False,
        labels: Mapping[str, str] | None = None, kubelet_version: str = "v1.37.1",
        address: str | None = None, external_cloud_provider: bool = False,
        provider_id: str | None = None,
    ) -> dict[str, Any]:
        """Create a Node as a joining kubelet would (Ready unless told otherwise).

        `provider_id`: the kubelet's ``--provider-id`` (``digitalocean://<droplet id>``);
        by default a made-up droplet id per Node.

        `external_cloud_provider`: as a kubelet with ``--cloud-provider=external``, which
        registers with the uninitialized taint until the cloud node controller lifts it.
        """
        count = len(self.registry.store.objects(NODE)[0])
        all_labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                      "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                      "beta.kubernetes.io/arch": "amd64"}  # fmt: skip
        spec: dict[str, Any] = {"podCIDR": f"10.244.{count}.0/24",
                                "podCIDRs": [f"10.244.{count}.0/24"],
                                "providerID": provider_id
                                or f"digitalocean://{400000000 + count}"}  # fmt: skip
        if control_plane:
            all_labels["node-role.kubernetes.io/control-plane"] = ""
            all_labels["node.kubernetes.io/exclude-from-external-load-balancers"] = ""
            spec["taints"] = [{"key": "node-role.kubernetes.io/control-plane",
                               "effect": "NoSchedule"}]  # fmt: skip
        if external_cloud_provider:
            spec.setdefault("taints", []).append(uninitialized_taint())
        all_labels.update(labels or {})
        resources = {"cpu": "2", "memory": "4025360Ki", "pods": "110",
                     "ephemeral-storage": "81106868Ki", "hugepages-2Mi": "0"}  # fmt: skip
        node = {
            "apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": all_labels, "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
            "spec": spec,
            "status": {
                "conditions": self._node_conditions([], ready, reason, message),
                "addresses": [{"type": "InternalIP", "address": address or f"10.0.0.{count + 2}"},
                              {"type": "Hostname", "address": name}],
                "capacity": resources, "allocatable": dict(resources),
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "kubeletVersion": kubelet_version, "kubeProxyVersion": kubelet_version,
                    "containerRuntimeVersion": "containerd://1.7.24", "operatingSystem": "linux",
                    "architecture": "amd64", "osImage": "Ubuntu 24.04.1 LTS",
                    "kernelVersion": "6.8.0-51-generic", "machineID": f"{count:032x}",
                    "systemUUID": f"{count:08x}-0000-0000-0000-000000000000",
                    "bootID": f"{count:08x}-0000-0000-0000-000000000001",
                },
            },
        }  # fmt: skip
        created = self.registry.commit(NODE, None, node, "kubelet")
        # The kubelet registers, then reports status; both are visible to clients.
        with_status = clone(created)
        with_status["status"] = node["status"]
        return self.registry.commit(NODE, created, with_status, "kubelet", subresource="status")

    def set_node_ready(self, name: str, ready: bool | None, *, reason: str | None = None,
                       message: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Flip the Ready condition (None = Unknown, as when the kubelet stops reporting);
        a node that is not Ready gets the node.kubernetes.io/not-ready taint."""
        with self.registry.store.lock:
            old = self.registry.get(NODE, "", name)
            new = clone(old)
            conditions = self._node_conditions(old["status"].get("conditions", []), ready,
                                               reason, message)  # fmt: skip
            new["status"]["conditions"] = conditions
            self.registry.commit(NODE, old, new, "kubelet", subresource="status")
            current = self.registry.get(NODE, "", name)
            tainted = clone(current)
            taints = [t for t in tainted["spec"].get("taints", [])
                      if not t["key"].startswith("node.kubernetes.io/")]  # fmt: skip
            if ready is not True:
                key = "not-ready" if ready is False else "unreachable"
                taints.append({"key": f"node.kubernetes.io/{key}", "effect": "NoSchedule",
                               "timeAdded": timestamp()})  # fmt: skip
            tainted["spec"]["taints"] = taints
            if not taints:
                tainted["spec"].pop("taints")
            return self.registry.commit(NODE, current, tainted, "kube-controller-manager")

    @staticmethod
    def _node_conditions(old: list[dict[str, Any]], ready: bool | None, reason: str | None,
                         message: str | None) -> list[dict[str, Any]]:  # fmt: skip
        now = timestamp()
        status, default_reason, default_message = _READY[ready]
        pressure = "Unknown" if ready is None else "False"
        conditions = [
            {"type": kind, "status": pressure, "lastHeartbeatTime": now,
             "lastTransitionTime": now, "reason": why, "message": text}
            for kind, why, text in (
                ("MemoryPressure", "KubeletHasSufficientMemory",
                 "kubelet has sufficient memory available"),
                ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            )
        ]  # fmt: skip
        conditions.append({"type": "Ready", "status": status, "lastHeartbeatTime": now,
                           "lastTransitionTime": now, "reason": reason or default_reason,
                           "message": message or default_message})  # fmt: skip
        keep_transition_times(old, conditions)
        for cond in conditions:
            cond["lastHeartbeatTime"] = now
        return conditions
