"""Simulated scheduler + kubelet: pods advance Pending -> Running/Ready, or fail by image.

Failure injection is by image name, so a manifest alone decides the outcome:

* "pullfail" anywhere in an image: the pod stays Pending, the container waiting with
  ErrImagePull, then ImagePullBackOff; logs answer 400 like a real kubelet;
* "crashloop": the pod runs but the container keeps crashing: waiting CrashLoopBackOff,
  restartCount rising every `crash_steps`, lastState terminated with exit code 1, and
  logs ending in a panic;
* "unready": the container runs but its readiness probe never passes.

Commands: `commands` (see etcd.py) may claim a pod whose container runs one command to
completion (restartPolicy Never): once started the pod ends Succeeded or Failed with the
command's exit code in its container's terminated state, and its log is the output.

Scheduling: with no Node objects at all pods run without a nodeName (convenient for
deploy tests); once nodes exist a pod goes to a Ready, untainted (or tolerated),
schedulable node, else it stays Pending with PodScheduled=False/Unschedulable.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog, errors, events, queues
from .meta import clone, metadata, name_of, namespace_of, timestamp
from .registry import Registry

POD = catalog.get("v1", "Pod")
NODE = catalog.get("v1", "Node")
EVENT = catalog.get("v1", "Event")
KUBELET = "kubelet"
SCHEDULER = "kube-scheduler"


def behaviour(pod: Mapping[str, Any]) -> str:
    """"pullfail", "crashloop", "unready" or "ok", from the pod's images."""
    images = " ".join(c.get("image", "") for c in pod.get("spec", {}).get("containers", []))
    for fault in ("pullfail", "crashloop", "unready"):
        if fault in images:
            return fault
    return "ok"


def _condition(kind: str, status: str, reason: str = "", message: str = "") -> dict[str, Any]:
    cond: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None,
                            "lastTransitionTime": timestamp()}  # fmt: skip
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def keep_transition_times(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    """A condition whose status did not change keeps its lastTransitionTime (and the
    object stays byte-identical, so a no-op status write is skipped)."""
    before = {c["type"]: c for c in old}
    for cond in new:
        prev = before.get(cond["type"])
        if prev and prev.get("status") == cond.get("status"):
            for key in ("lastTransitionTime", "lastHeartbeatTime", "lastUpdateTime"):
                if key in prev:
                    cond[key] = prev[key]


@dataclass
class PodState:
    """Per-pod simulation progress (not stored in the API object)."""

    steps: int = 0
    restarts: int = 0
    next_restart: int = 0  # the step of the next crash (back-off doubles, as the kubelet's)
    started: str = ""
    finished: str = ""
    ran: bool = False  # `commands` was asked about this pod
    result: tuple[int, str] | None = None  # (exit code, output) of a command pod


@dataclass
class Kubelet:
    registry: Registry
    start_steps: int = 2
    crash_steps: int = 2
    pods: dict[str, PodState] = field(default_factory=dict)
    logs: dict[tuple[str, str], str] = field(default_factory=dict)
    _ips: Iterator[int] = field(default_factory=lambda: itertools.count(2))
    gate: Callable[[], None] | None = None  # see queues.each
    # A pod's command run to completion on its node: (exit code, output), or None when
    # the pod is not one such (it then runs as a long-lived container).
    commands: Callable[[Mapping[str, Any]], tuple[int, str] | None] | None = None

    # -------------------------------------------------------------------- nodes

    def nodes(self) -> list[dict[str, Any]]:
        return self.registry.store.objects(NODE)[0]

    @staticmethod
    def node_ready(node: Mapping[str, Any]) -> bool:
        return any(c.get("type") == "Ready" and c.get("status") == "True"
                   for c in node.get("status", {}).get("conditions", []))  # fmt: skip

    @staticmethod
    def _tolerates(pod: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
        for tol in pod.get("spec", {}).get("tolerations", []):
            if tol.get("operator") == "Exists" and not tol.get("key"):
                return True
            if tol.get("key") == taint.get("key") and (
                tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", "")
            ) and tol.get("effect", taint.get("effect")) == taint.get("effect"):
                return True
        return False

    def _pick_node(self, pod: Mapping[str, Any], nodes: list[dict[str, Any]]) -> str | None:
        fits = [
            n for n in nodes
            if self.node_ready(n) and not n.get("spec", {}).get("unschedulable")
            and all(self._tolerates(pod, t) for t in n.get("spec", {}).get("taints", [])
                    if t.get("effect") in ("NoSchedule", "NoExecute"))
        ]  # fmt: skip
        if not fits:
            return None
        digest = int(hashlib.sha256(name_of(pod).encode()).hexdigest(), 16)
        return name_of(fits[digest % len(fits)])

    # --------------------------------------------------------------------- pods

    def step(self, keys: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """One pass over the pods at ``keys`` (namespace, name): schedule, advance; the keys
        of pods whose status will still change with passes alone, to look at again."""
        keys = list(keys)
        nodes = self.nodes() if keys else []
        again = []
        for pod in queues.each(self.registry.store, POD, keys, self.gate):  # copied to change
            namespace, name = namespace_of(pod), name_of(pod)
            state = self.pods.setdefault(metadata(pod)["uid"], PodState())
            state.steps += 1
            self._step(pod, state, nodes)
            # Starting takes start_steps passes, a failed pull two more; a crash loop
            # never settles.
            if state.steps < self.start_steps + 2 or behaviour(pod) == "crashloop":
                again.append((namespace, name))
        return again

    def _step(self, pod: dict[str, Any], state: PodState, nodes: list[dict[str, Any]]) -> None:
        if not pod["spec"].get("nodeName") and nodes:
            node = self._pick_node(pod, nodes)
            if node is None:
                self._write_status(pod, self._unschedulable(pod, len(nodes)))
                return
            bound = clone(pod)
            bound["spec"]["nodeName"] = node
            pod = self.registry.commit(POD, pod, bound, SCHEDULER, copy=False)
        self._write_status(pod, self._status(pod, state))

    def _write_status(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        old = pod.get("status", {})
        keep_transition_times(old.get("conditions", []), status.get("conditions", []))
        if status == old:
            return
        self.registry.commit(POD, pod, {**pod, "status": status}, KUBELET,
                             subresource="status", copy=False)

    @staticmethod
    def _unschedulable(pod: Mapping[str, Any], count: int) -> dict[str, Any]:
        message = f"0/{count} nodes are available: {count} node(s) were not ready or schedulable."
        return {"phase": "Pending", "qosClass": "BestEffort", "conditions": [
            _condition("PodScheduled", "False", "Unschedulable", message)]}  # fmt: skip

    def _status(self, pod: Mapping[str, Any], state: PodState) -> dict[str, Any]:
        old = pod.get("status", {})
        status: dict[str, Any] = {"phase": "Pending", "qosClass": "BestEffort",
                                  "startTime": old.get("startTime") or timestamp()}  # fmt: skip
        node = pod["spec"].get("nodeName")
        if node:
            status["hostIP"] = self._node_ip(node)
        containers = pod["spec"].get("containers", [])
        fault = behaviour(pod)
        if state.steps < self.start_steps:
            waiting = {"waiting": {"reason": "ContainerCreating"}}
            status["conditions"] = self._conditions(ready=False, initialized=True)
            status["containerStatuses"] = [self._cstatus(c, waiting, False) for c in containers]
            return status
        if node and self.commands is not None and fault == "ok":
            if not state.ran:
                state.ran, state.result = True, self.commands(pod)
            if state.result is not None:
                state.started = state.started or timestamp()
                state.finished = state.finished or timestamp()
                return status | self._finished(pod, state.result[0], state.started,
                                               state.finished)
        if fault == "pullfail":
            reason = "ErrImagePull" if state.steps == self.start_steps else "ImagePullBackOff"
            statuses = []
            for c in containers:
                message = (f'Back-off pulling image "{c.get("image")}": ErrImagePull: failed to '
                           f'pull and unpack image "{c.get("image")}": not found')  # fmt: skip
                statuses.append(self._cstatus(c, {"waiting": {"reason": reason,
                                                              "message": message}}, False))
            status["conditions"] = self._conditions(ready=False, initialized=True)
            status["containerStatuses"] = statuses
            if state.steps - self.start_steps < 2:  # once on ErrImagePull, once on BackOff
                events.record(self.registry, pod, "Failed" if reason == "ErrImagePull"
                              else "BackOff", statuses[0]["state"]["waiting"]["message"],
                              warning=True, component=KUBELET)  # fmt: skip
            return status
        ip = old.get("podIP") or self._pod_ip()
        status |= {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}]}
        state.started = state.started or timestamp()
        running = {"running": {"startedAt": state.started}}
        if fault == "crashloop":
            if state.steps >= state.next_restart:
                state.restarts += 1
                state.next_restart = state.steps + self.crash_steps * min(2**state.restarts, 32)
                events.record(self.registry, pod, "BackOff", "Back-off restarting failed "
                              f"container {containers[0].get('name')} in pod {name_of(pod)}",
                              warning=True, component=KUBELET)  # fmt: skip
            name = name_of(pod)
            waiting = {"waiting": {"reason": "CrashLoopBackOff", "message": (
                f"back-off {min(10 * 2 ** (state.restarts - 1), 300)}s restarting failed "
                f"container={containers[0].get('name')} pod={name}_{namespace_of(pod)}")}}
            last = {"terminated": {"exitCode": 1, "reason": "Error", "startedAt": state.started,
                                   "finishedAt": timestamp()}}  # fmt: skip
            statuses = [self._cstatus(c, waiting, False, state.restarts, last) for c in containers]
            status["conditions"] = self._conditions(ready=False, initialized=True)
            status["containerStatuses"] = statuses
            return status
        ready = fault != "unready"
        status["conditions"] = self._conditions(ready=ready, initialized=True)
        status["containerStatuses"] = [self._cstatus(c, running, ready) for c in containers]
        return status

    @staticmethod
    def _finished(pod: Mapping[str, Any], code: int, started: str, finished: str
                  ) -> dict[str, Any]:  # fmt: skip
        """The only container ran to completion: phase and terminated state by exit code."""
        container = pod["spec"]["containers"][0]
        reason = "Completed" if code == 0 else "Error"
        terminated = {"exitCode": code, "reason": reason, "startedAt": started,
                      "finishedAt": finished}
        ready = _condition("Ready", "False", "PodCompleted" if code == 0 else "PodFailed")
        return {"phase": "Succeeded" if code == 0 else "Failed",
                "conditions": [_condition("Initialized", "True"), ready,
                               _condition("PodScheduled", "True")],
                "containerStatuses": [Kubelet._cstatus(container, {"terminated": terminated},
                                                       False)]}

    @staticmethod
    def _conditions(*, ready: bool, initialized: bool) -> list[dict[str, Any]]:
        flag = "True" if ready else "False"
        reason = "" if ready else "ContainersNotReady"
        return [
            _condition("PodReadyToStartContainers", "True"),
            _condition("Initialized", "True" if initialized else "False"),
            _condition("Ready", flag, reason),
            _condition("ContainersReady", flag, reason),
            _condition("PodScheduled", "True"),
        ]

    @staticmethod
    def _cstatus(
        container: Mapping[str, Any], state: dict[str, Any], ready: bool, restarts: int = 0,
        last: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        image = container.get("image", "")
        return {
            "name": container.get("name"), "image": image,
            "imageID": f"{image}@sha256:{hashlib.sha256(image.encode()).hexdigest()}"
            if "running" in state or last else "",
            "ready": ready, "started": "running" in state, "restartCount": restarts,
            "state": state, "lastState": last or {},
        }  # fmt: skip

    def _pod_ip(self) -> str:
        n = next(self._ips)
        return f"10.244.{n // 250}.{n % 250 + 2}"

    def _node_ip(self, node: str) -> str:
        obj = self.registry.store.get(NODE, "", node) or {}
        for address in obj.get("status", {}).get("addresses", []):
            if address.get("type") == "InternalIP":
                return str(address["address"])
        return "10.0.0.1"

    # --------------------------------------------------------------------- logs

    def read_log(
        self, namespace: str, name: str, container: str, tail: int | None, previous: bool
    ) -> str:
        """GET pods/<name>/log, with the kubelet's refusals for containers that never ran."""
        pod = self.registry.get(POD, namespace, name)
        names = [c.get("name") for c in pod["spec"].get("containers", [])]
        if not container:
            if len(names) > 1:
                raise errors.bad_request(f"a container name must be specified for pod {name}, "
                                         f"choose one of: [{' '.join(names)}]")  # fmt: skip
            container = str(names[0])
        if container not in names:
            raise errors.bad_request(f"container {container} is not valid for pod {name}")
        waiting = next((s["state"].get("waiting") for s in pod.get("status", {}).get(
            "containerStatuses", []) if s.get("name") == container), None)
        fault = behaviour(pod)
        never_started = ("ContainerCreating", "ErrImagePull", "ImagePullBackOff")
        if not pod.get("status", {}).get("containerStatuses") or (
            waiting and waiting.get("reason") in never_started
        ):
            reason = "trying and failing to pull image" if fault == "pullfail" else (
                "ContainerCreating")
            raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to '
                                     f"start: {reason}")  # fmt: skip
        done = self.pods.get(metadata(pod).get("uid", ""))
        if done is not None and done.result is not None:
            text = done.result[1]  # what the command printed
        else:
            text = next((t for (ns, prefix), t in self.logs.items()
                         if ns == namespace and name.startswith(prefix)), "")  # fmt: skip
            text = text or self._default_log(pod, container, fault)
        lines = text.splitlines(keepends=True)
        return "".join(lines[-tail:] if tail is not None and tail >= 0 else lines)

    def _default_log(self, pod: Mapping[str, Any], container: str, fault: str) -> str:
        image = next((c.get("image") for c in pod["spec"]["containers"]
                      if c.get("name") == container), "")  # fmt: skip
        lines = [f"starting {container} ({image})", "loading configuration from /etc/app",
                 "connected to dependencies"]  # fmt: skip
        if fault == "crashloop":
            lines += ["panic: simulated crash (image contains 'crashloop')", "",
                      "goroutine 1 [running]:", "main.main()", "\t/app/main.go:42 +0x1d",
                      "exit status 2"]  # fmt: skip
        elif fault == "unready":
            lines += ["readiness check failed: dependency not reachable"]
        else:
            lines += ["listening on :8080", "ready"]
        return "".join(f"{line}\n" for line in lines)
