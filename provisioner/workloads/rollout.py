"""Waiting for rollouts: watch-based, per app desired / updated / available, with a deadline.

The rules are kubectl rollout status's: a Deployment is done when the controller has seen
its generation, every replica runs the new template, no old replica is left and all updated
replicas are available; a StatefulSet when every replica is ready on the update revision.
A rollout fails on the Deployment's ProgressDeadlineExceeded, on pods stuck in a state that
will not fix itself (image pull errors, crash loops), or at the deadline; the error names the
app, the reason, the pods' waiting reasons and their last log lines.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import AccessDenied, Kube, KubeError
from provisioner.workloads.objects import APP_LABEL

# Waiting reasons that will not clear by waiting longer.
FATAL = {"ErrImagePull", "ImagePullBackOff", "InvalidImageName", "CreateContainerConfigError",
         "CrashLoopBackOff", "CreateContainerError"}
LOG_LINES = 10


class RolloutFailed(ProvisionError):
    """An app did not roll out; the message says why, from the cluster's own words."""


@dataclass(frozen=True)
class Target:
    """One workload to wait for."""

    kind: str  # Deployment or StatefulSet
    name: str
    app: str


@dataclass
class Status:
    """Where a workload's rollout stands."""

    desired: int = 0
    updated: int = 0
    available: int = 0
    done: bool = False
    failure: str = ""
    message: str = "waiting for the controller"


def deployment_status(obj: dict[str, Any]) -> Status:
    """kubectl's Deployment rollout logic, on a plain dict."""
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    desired = int(spec.get("replicas", 1))
    updated = int(status.get("updatedReplicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    total = int(status.get("replicas") or 0)
    result = Status(desired, updated, available)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        result.message = "waiting for the deployment controller to see the new spec"
        return result
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get(
                "reason") == "ProgressDeadlineExceeded":
            result.failure = f"ProgressDeadlineExceeded: {condition.get('message', '')}"
            return result
    if updated < desired:
        result.message = f"{updated} of {desired} updated"
    elif total > updated:
        result.message = f"{total - updated} old replicas pending termination"
    elif available < updated:
        result.message = f"{available} of {updated} updated replicas available"
    else:
        result.done = True
        result.message = "rolled out"
    return result


def statefulset_status(obj: dict[str, Any]) -> Status:
    """kubectl's StatefulSet rollout logic (RollingUpdate), on a plain dict."""
    spec, status, meta = obj.get("spec") or {}, obj.get("status") or {}, obj.get("metadata") or {}
    desired = int(spec.get("replicas", 1))
    ready = int(status.get("readyReplicas") or 0)
    updated = int(status.get("updatedReplicas") or 0)
    result = Status(desired, updated, ready)
    if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 0):
        result.message = "waiting for the statefulset controller to see the new spec"
    elif ready < desired:
        result.message = f"{ready} of {desired} ready"
    elif status.get("updateRevision") and status.get("currentRevision") != status.get(
            "updateRevision") and updated < desired:
        result.message = f"{updated} of {desired} on the new revision"
    else:
        result.done = True
        result.message = "rolled out"
    return result


class Watcher:
    """Watches one kind in one namespace and keeps the latest status of each target."""

    def __init__(self, kube: Kube, namespace: str, kind: str, selector: str,
                 on_change: Callable[[], None]) -> None:
        self.kube, self.namespace, self.kind, self.selector = kube, namespace, kind, selector
        self.objects: dict[str, dict[str, Any]] = {}
        self.on_change = on_change
        self.stop = threading.Event()
        self.error: Exception | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        resource = "deployments" if self.kind == "Deployment" else "statefulsets"
        path = f"/apis/apps/v1/namespaces/{self.namespace}/{resource}"
        while not self.stop.is_set():
            try:
                # Each watch starts without a resourceVersion: the server first sends every
                # current object, so a restart (timeout, 410 Gone) misses nothing.
                for event in self.kube.watch(path, [("labelSelector", self.selector)],
                                             verb=f"watch {resource}.apps"):
                    obj = event.get("object") or {}
                    name = (obj.get("metadata") or {}).get("name", "")
                    if event.get("type") == "DELETED":
                        self.objects.pop(name, None)
                    else:
                        self.objects[name] = obj
                    self.error = None
                    self.on_change()
                    if self.stop.is_set():
                        return
            except Exception as e:  # reported by the waiter, which decides to retry or fail
                self.error = e
                self.on_change()
                time.sleep(1)




def pods_by_app(kube: Kube, namespace: str, apps: set[str]) -> dict[str, list[dict[str, Any]]]:
    """The pods of the given apps, by app: one request however many apps."""
    selector = f"{APP_LABEL} in ({','.join(sorted(apps))})"
    found: dict[str, list[dict[str, Any]]] = {app: [] for app in apps}
    for pod in _pods(kube, namespace, selector):
        app = ((pod.get("metadata") or {}).get("labels") or {}).get(APP_LABEL)
        if app in found:
            found[app].append(pod)
    return found


def _pods(kube: Kube, namespace: str, selector: str) -> list[dict[str, Any]]:
    listing = kube.request("GET", f"/api/v1/namespaces/{namespace}/pods",
                           [("labelSelector", selector)], verb="list pods")
    return list(listing.get("items") or [])


def pod_problems(kube: Kube, namespace: str, app: str,
                 pods: list[dict[str, Any]] | None = None) -> tuple[str, str]:
    """(fatal waiting reasons of the app's pods, last log lines of the first such pod)."""
    if pods is None:
        pods = _pods(kube, namespace, f"{APP_LABEL}={app}")
    reasons: list[str] = []
    logs = ""
    for pod in pods:
        name = (pod.get("metadata") or {}).get("name") or "?"
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            waiting = (status.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") not in FATAL:
                continue
            message = waiting.get("message")
            reasons.append(f"pod {name}: {waiting['reason']}"
                           + (f" ({message})" if message else ""))
            if not logs and name != "?":
                try:
                    logs = kube.text(f"/api/v1/namespaces/{namespace}/pods/{name}/log",
                                     [("container", str(status.get("name") or "")),
                                      ("tailLines", str(LOG_LINES))], verb="get pods/log")
                except KubeError:  # no logs is still a diagnosis: the reasons stand
                    logs = ""
    return "; ".join(reasons), logs


def wait(kube: Kube, namespace: str, targets: Sequence[Target], selector: str, deadline: float,
         report: Callable[[dict[Target, Status]], None], poll_pods_every: float = 3.0,
         clock: Callable[[], float] = time.monotonic) -> dict[Target, Status]:
    """Until every target is rolled out; raise RolloutFailed naming what went wrong."""
    changed = threading.Event()
    kinds = sorted({t.kind for t in targets})
    watchers = {k: Watcher(kube, namespace, k, selector, changed.set) for k in kinds}
    for watcher in watchers.values():
        watcher.thread.start()
    statuses: dict[Target, Status] = {t: Status() for t in targets}
    last_pod_check = clock()
    try:
        while True:
            for target in targets:
                obj = watchers[target.kind].objects.get(target.name)
                if obj is not None:
                    statuses[target] = (deployment_status(obj) if target.kind == "Deployment"
                                        else statefulset_status(obj))
            report(statuses)
            for watcher in watchers.values():
                # Other watch errors are retried until the deadline; a missing permission
                # will not come back by itself.
                if isinstance(watcher.error, AccessDenied):
                    raise watcher.error
            failed = [t for t, s in statuses.items() if s.failure]
            if failed:
                raise _failure(kube, namespace, failed[0], statuses[failed[0]].failure)
            if all(s.done for s in statuses.values()):
                return statuses
            now = clock()
            if now - last_pod_check >= poll_pods_every:
                last_pod_check = now
                pending = [t for t, s in statuses.items() if not s.done]
                pods = pods_by_app(kube, namespace, {t.app for t in pending}) if pending else {}
                for target in pending:
                    reasons, logs = pod_problems(kube, namespace, target.app, pods[target.app])
                    if reasons:
                        raise _failure(kube, namespace, target, reasons, logs)
            if now >= deadline:
                pending = [t for t, s in statuses.items() if not s.done]
                raise _failure(kube, namespace, pending[0],
                               f"not rolled out by the deadline: {statuses[pending[0]].message}")
            changed.wait(timeout=min(1.0, max(deadline - now, 0.05)))
            changed.clear()
    finally:
        for watcher in watchers.values():
            watcher.stop.set()


def _failure(kube: Kube, namespace: str, target: Target, reason: str,
             logs: str | None = None) -> RolloutFailed:
    if logs is None:
        pods, logs = pod_problems(kube, namespace, target.app)
        if pods:
            reason = f"{reason}; {pods}"
    text = f"app {target.app} ({target.kind} {target.name}) failed to roll out: {reason}"
    if logs.strip():
        tail = "\n".join(f"    {line}" for line in logs.rstrip().splitlines()[-LOG_LINES:])
        text += f"\n  last log lines:\n{tail}"
    return RolloutFailed(text)
