"""What a Node object says about its machine: role, kubelet, cordon and the failover agent.

`status` shows these facts and `check` judges them. The failover agent on each
control-plane node writes four annotations on its own Node: keepalived's VRRP state, what
it found of keepalived, the instant of its last pass and the fingerprint of the token it
runs with (``ANNOTATION_*`` in provisioner/agents/failover.py, the one home of those names:
the contract between the agent and provision). This module reads the first three (rotate
reads the fourth); a node without them has no agent reporting.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

# The agent is standalone (the standard library only), so importing it stays light.
from provisioner.agents.failover import ANNOTATION_CHECKED, ANNOTATION_KEEPALIVED, ANNOTATION_STATE

# kubeadm labels control-plane Nodes with it (nodeops and rotate select them by it).
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
# keepalived's last notified state: MASTER, BACKUP, FAULT or STOPPED.
VRRP_STATE = ANNOTATION_STATE
# active, restarted or failed: what the agent found of keepalived on its last pass.
KEEPALIVED = ANNOTATION_KEEPALIVED
# RFC 3339 UTC instant of the agent's last pass (its systemd timer: analysis.live.timer_period()).
CHECKED_AT = ANNOTATION_CHECKED


@dataclass(frozen=True)
class NodeFacts:
    """One Node as status and check use it."""

    name: str
    control_plane: bool
    ready: bool
    kubelet: str
    cordoned: bool
    vrrp_state: str | None
    keepalived: str | None
    checked_at: dt.datetime | None


def parse_instant(text: object) -> dt.datetime | None:
    """An RFC 3339 instant (``2026-03-07T03:00:00Z``) as an aware datetime, else None."""
    if not isinstance(text, str) or not text:
        return None
    try:
        instant = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return instant if instant.tzinfo is not None else None


def facts(node: dict[str, Any]) -> NodeFacts:
    """The facts of one Node object as the API returns it."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    notes = meta.get("annotations") or {}
    status = node.get("status") or {}
    conditions = status.get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return NodeFacts(
        name=str(meta.get("name") or "?"),
        control_plane=CONTROL_PLANE_LABEL in labels,
        ready=ready,
        kubelet=str((status.get("nodeInfo") or {}).get("kubeletVersion") or ""),
        # `kubectl cordon` sets spec.unschedulable (kubectl/pkg/drain/cordon.go).
        cordoned=bool((node.get("spec") or {}).get("unschedulable")),
        vrrp_state=notes.get(VRRP_STATE) or None,
        keepalived=notes.get(KEEPALIVED) or None,
        checked_at=parse_instant(notes.get(CHECKED_AT)),
    )


def list_nodes(kube: Any) -> list[NodeFacts]:
    """Every Node's facts, sorted by name, from one LIST (``kube`` is a provisioner.kube.Kube)."""
    items = kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []
    return sorted((facts(item) for item in items), key=lambda n: n.name)
