"""Where an upgrade stands, read from the cluster itself: the only record a rerun needs.

Per node: its kubelet's version (``status.nodeInfo.kubeletVersion``), the upgrade agent's
annotations (request, result, presence: ``provision.dev/upgrade*``, named in
provisioner/agents/node_upgrade.py, the contract's home) and, on a control-plane node, the
image tags of the kubelet's mirror pods of kubeadm's static pods (``kube-apiserver-<node>``
etc. in kube-system, annotation ``kubernetes.io/config.mirror``), which ``kubeadm upgrade
apply|node`` changes by rewriting the static pod manifests.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from provisioner.agents.node_upgrade import AGENT, CONTRACT, REQUEST, RESULT
from provisioner.kube import Kube
from provisioner.node_facts import CONTROL_PLANE_LABEL

COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
# "<version>/components" or "<version>/kubelet": the last check provision saw pass on the
# node, so a rerun after a stop between an answer and its check makes that check, once.
CHECKED = "provision.dev/upgrade-checked"
CORDONED = "provision.dev/upgrade-cordoned"  # cordoned by an upgrade, uncordoned after it
MIRROR = "kubernetes.io/config.mirror"
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def version_key(text: str) -> tuple[int, int, int] | None:
    """``v1.36.3`` (or ``1.36.3``, or an image tag ``v1.36.3``) as numbers; None otherwise."""
    found = _VERSION.match(text or "")
    if not found:
        return None
    major, minor, patch = (int(g) for g in found.groups())
    return major, minor, patch


def plain(text: str) -> str:
    """``v1.36.3`` -> ``1.36.3``."""
    return text.removeprefix("v")


@dataclass(frozen=True)
class Message:
    """A request or a result annotation, parsed (None fields when absent or unreadable)."""

    id: str
    raw: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.raw.get("ok") is True

    @property
    def version(self) -> str:
        return str(self.raw.get("version") or "")

    @property
    def step(self) -> str:
        return str(self.raw.get("step") or "")


def _message(text: object) -> Message | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("id"), str):
        return None
    return Message(value["id"], value)


@dataclass(frozen=True)
class NodeState:
    """One Node as an upgrade sees it."""

    name: str
    control_plane: bool
    ready: bool
    kubelet: str  # plain, e.g. 1.35.8
    cordoned: bool
    agent: bool  # the upgrade agent has announced itself
    request: Message | None
    result: Message | None
    components: dict[str, str] = field(default_factory=dict)  # component -> plain version
    checked: str = ""  # CHECKED
    held: bool = False  # cordoned by an upgrade (CORDONED), to be uncordoned by it

    @property
    def pending(self) -> Message | None:
        """The request the agent has not answered yet."""
        if self.request is None:
            return None
        if self.result is not None and self.result.id == self.request.id:
            return None
        return self.request

    def answer(self, request_id: str) -> Message | None:
        return self.result if self.result is not None and self.result.id == request_id \
            else None

    def apiserver(self) -> str:
        return self.components.get("kube-apiserver", "")


def _ready(node: dict[str, Any]) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in (node.get("status") or {}).get("conditions") or [])


def _tag(pod: dict[str, Any], component: str) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        image = str(container.get("image") or "")
        if container.get("name") == component and ":" in image:
            return plain(image.rsplit(":", 1)[1])
    return ""


def components(kube: Kube) -> dict[str, dict[str, str]]:
    """Node -> component -> version, from the mirror pods of the control-plane static pods."""
    found: dict[str, dict[str, str]] = {}
    pods = kube.request("GET", "/api/v1/namespaces/kube-system/pods",
                        [("labelSelector", "tier=control-plane")],
                        verb="list pods in kube-system").get("items") or []
    for pod in pods:
        meta = pod.get("metadata") or {}
        component = str((meta.get("labels") or {}).get("component") or "")
        node = str((pod.get("spec") or {}).get("nodeName") or "")
        if component in COMPONENTS and MIRROR in (meta.get("annotations") or {}) and node:
            found.setdefault(node, {})[component] = _tag(pod, component)
    return found


def read(kube: Kube) -> list[NodeState]:
    """Every Node's state, control planes first, each group by name."""
    items = kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []
    static = components(kube)
    nodes = []
    for item in items:
        meta = item.get("metadata") or {}
        notes = meta.get("annotations") or {}
        name = str(meta.get("name") or "")
        nodes.append(NodeState(
            name=name,
            control_plane=CONTROL_PLANE_LABEL in (meta.get("labels") or {}),
            ready=_ready(item),
            kubelet=plain(str(((item.get("status") or {}).get("nodeInfo") or {})
                              .get("kubeletVersion") or "")),
            cordoned=bool((item.get("spec") or {}).get("unschedulable")),
            agent=notes.get(AGENT) == CONTRACT,
            request=_message(notes.get(REQUEST)),
            result=_message(notes.get(RESULT)),
            components=static.get(name, {}),
            checked=str(notes.get(CHECKED) or ""),
            held=CORDONED in notes,
        ))
    return sorted(nodes, key=lambda n: (not n.control_plane, n.name))


def current(nodes: list[NodeState]) -> tuple[str, str]:
    """The cluster's lowest kubelet and lowest API server versions ("" when unknown)."""
    def lowest(values: list[str]) -> str:
        known = [v for v in values if version_key(v)]
        return min(known, key=lambda v: version_key(v) or (0, 0, 0)) if known else ""

    return (lowest([n.kubelet for n in nodes]),
            lowest([n.apiserver() for n in nodes if n.control_plane]))
