"""Run one command on one node, through the Kubernetes API, and read what it printed.

provision cannot reach a node's local services from the operator's machine (etcd listens
on the VPC behind the firewall), but the API can place a pod anywhere: a pod in
kube-system pinned to the node with ``nodeName`` (no scheduler involved), on the host's
network, tolerating every taint, that runs the command once (``restartPolicy: Never``)
within ``activeDeadlineSeconds``. Its exit code is the container's terminated state; its
output is the pod's log (``pods/log``). The pod is deleted afterwards, whatever happened.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError
from provisioner.node_facts import CONTROL_PLANE_LABEL

NAMESPACE = "kube-system"
POLL = 0.5  # seconds between looks at the pod


class NodeOpError(ProvisionError):
    """The command could not be run on the node (not its own failure: see `Run.code`)."""


@dataclass(frozen=True)
class HostPath:
    """A host file or directory the command sees at the same path, read-only.

    ``kind`` is the hostPath ``type`` the kubelet checks before it starts the container:
    ``File`` (a file must exist there) or ``Directory`` (kubernetes/kubernetes
    pkg/volume/hostpath/host_path.go ``checkTypeInternal``, at commit 9efa0b0228c0)."""

    name: str
    path: str
    kind: str = "Directory"


@dataclass(frozen=True)
class Run:
    """What the command did on the node."""

    node: str
    code: int
    output: str


def ready(node: dict[str, Any]) -> bool:
    """Whether a Node's Ready condition is True."""
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in node.get("status", {}).get("conditions", []))


def control_plane_nodes(api: Any) -> list[dict[str, Any]]:
    """The Ready control-plane Nodes, by name."""
    body = Kube(api).request("GET", "/api/v1/nodes", [("labelSelector", CONTROL_PLANE_LABEL)],
                             verb="list nodes")
    nodes = [n for n in body.get("items", []) if ready(n)]
    return sorted(nodes, key=lambda n: str(n["metadata"]["name"]))


def pod_spec(node: str, image: str, command: Sequence[str], mounts: Sequence[HostPath],
             deadline: int) -> dict[str, Any]:
    """The pod that runs ``command`` once on ``node``."""
    return {
        "nodeName": node,
        "hostNetwork": True,
        "restartPolicy": "Never",
        "activeDeadlineSeconds": deadline,
        "automountServiceAccountToken": False,
        "tolerations": [{"operator": "Exists"}],
        "priorityClassName": "system-node-critical",
        "containers": [{
            "name": "run", "image": image, "imagePullPolicy": "IfNotPresent",
            "command": list(command),
            "volumeMounts": [{"name": m.name, "mountPath": m.path, "readOnly": True}
                             for m in mounts],
        }],
        "volumes": [{"name": m.name, "hostPath": {"path": m.path, "type": m.kind}}
                    for m in mounts],
    }


def run(api: Any, node: str, image: str, command: Sequence[str], *, purpose: str,
        mounts: Sequence[HostPath] = (), deadline: int = 120) -> Run:
    """Run ``command`` in ``image`` on ``node``; its exit code and output.

    ``purpose`` names the pod (``provision-<purpose>-xxxxx``) so an operator who sees it
    knows what it is. Raises NodeOpError when the pod cannot be created, does not finish
    within ``deadline`` seconds, or its log cannot be read.
    """
    kube = Kube(api)
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    body = {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"generateName": f"provision-{purpose}-", "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "provision",
                                    "provision.dev/node-op": purpose}},
            "spec": pod_spec(node, image, command, mounts, deadline)}
    try:
        created = kube.request("POST", pods, body=body, verb="create pods in kube-system")
    except KubeError as e:
        raise NodeOpError(f"cannot start a pod on {node} to {purpose}: {e}") from e
    name = str(created["metadata"]["name"])
    try:
        pod = _wait(kube, f"{pods}/{name}", node, purpose, time.monotonic() + deadline + 30)
        try:
            output = kube.text(f"{pods}/{name}/log", verb="get pods/log in kube-system")
        except KubeError as e:
            raise NodeOpError(f"cannot read what {name} printed on {node}: {e}") from e
        return Run(node, _exit_code(pod), output)
    finally:
        # Should this fail, activeDeadlineSeconds has ended the pod; it only lingers.
        with contextlib.suppress(KubeError):
            kube.request("DELETE", f"{pods}/{name}", verb="delete pods in kube-system")


def _wait(kube: Kube, path: str, node: str, purpose: str, deadline: float) -> dict[str, Any]:
    while True:
        try:
            pod = kube.request("GET", path, verb="get pods in kube-system")
        except KubeError as e:
            raise NodeOpError(f"lost the pod that was to {purpose} on {node}: {e}") from e
        status = pod.get("status", {})
        if status.get("phase") in ("Succeeded", "Failed") and _terminated(pod):
            return pod
        if status.get("phase") == "Failed":  # ended without running (deadline, eviction)
            raise NodeOpError(f"the pod that was to {purpose} on {node} failed: "
                              f"{status.get('reason') or ''} {status.get('message') or ''}"
                              .rstrip())
        if time.monotonic() > deadline:
            statuses = status.get("containerStatuses", [])
            waiting: dict[str, Any] = next((s["state"]["waiting"] for s in statuses
                                            if s.get("state", {}).get("waiting")), {})
            why = waiting.get("reason") or status.get("phase") or "no status"
            raise NodeOpError(f"the pod that was to {purpose} on {node} did not finish in "
                              f"time ({why})")
        time.sleep(POLL)


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    for status in pod.get("status", {}).get("containerStatuses", []):
        terminated = status.get("state", {}).get("terminated")
        if terminated:
            return dict(terminated)
    return {}


def _exit_code(pod: dict[str, Any]) -> int:
    return int(_terminated(pod).get("exitCode", 1))
