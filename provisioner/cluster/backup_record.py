"""The cluster side of etcd backups: the agents' Secret and their record (kube-system).

Shared contract of issue 15 (README, "Etcd backups"):

* Secret ``kube-system/provision-backup``: ``access-key-id``, ``secret-access-key`` (the
  Spaces key), ``recipient.pem`` (the public key snapshots are encrypted to) and
  ``settings.json`` (the schedule, bucket and retention of the file's ``backups:``). `up`
  applies it (server-side apply, field manager ``provision``); the agents read it.
* ConfigMap ``kube-system/provision-etcd-backup``: the record. `up` creates it empty when
  absent and never writes the agents' keys; `provision backup` writes ``requested-at``; the
  agent writes ``last-snapshot-at``, ``-key``, ``-node``, ``-bytes``, ``last-daily-day``,
  and ``last-error``/``last-error-at`` on failure.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.kube import Kube, KubeError

NAMESPACE = "kube-system"
SECRET = "provision-backup"
RECORD = "provision-etcd-backup"
MANAGER = "provision"
LABELS = {"app.kubernetes.io/managed-by": "provision"}
_RECORD_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def store_access(api: Any, access_key: str, secret_key: str, recipient_pem: bytes,
                 settings: dict[str, object] | None = None) -> None:
    """Apply the agents' Secret (declaratively: a changed key or recipient replaces it).

    ``settings.json`` carries the file's schedule, bucket and retention: the agents read it
    over the copy cloud-init wrote at boot, so a changed ``backups:`` reaches running nodes
    (their user-data is never applied again)."""
    data = {"access-key-id": access_key, "secret-access-key": secret_key,
            "recipient.pem": recipient_pem.decode("ascii")}
    if settings:
        data["settings.json"] = json.dumps(settings, sort_keys=True)
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET, "namespace": NAMESPACE, "labels": LABELS},
            "stringData": data}
    Kube(api, timeout=15).request(
        "PATCH", f"/api/v1/namespaces/{NAMESPACE}/secrets/{SECRET}",
        [("fieldManager", MANAGER), ("force", "true")], json.dumps(body),
        "application/apply-patch+yaml", verb=f"patch secrets in {NAMESPACE}")


def ensure_record(api: Any) -> bool:
    """Create the empty record unless it exists (the agent's keys are never overwritten);
    True when it was created."""
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": RECORD, "namespace": NAMESPACE, "labels": LABELS}}
    try:
        Kube(api, timeout=15).request("POST", _RECORD_PATH, [("fieldManager", MANAGER)], body,
                                      verb=f"create configmaps in {NAMESPACE}")
    except KubeError as e:
        if e.status == 409:  # AlreadyExists: the agents' record, left as it is
            return False
        raise
    return True


def read_record(api: Any) -> dict[str, str] | None:
    """The record's data (empty when nothing was recorded yet), or None when it is absent."""
    found = Kube(api, timeout=15).get_or_none(f"{_RECORD_PATH}/{RECORD}",
                                              verb=f"get configmaps in {NAMESPACE}")
    if found is None:
        return None
    data = found.get("data") or {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


AGENT_ANNOTATION = "provision.dev/etcd-backup-agent"  # the agent marks its own Node
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


def without_agent(api: Any) -> list[str]:
    """Control-plane Nodes whose backup agent never reported: made before ``backups:`` was
    set (user-data is applied once, at creation) or by an older provision, or still in
    their first minutes. Only the etcd leader's agent snapshots, and any node may lead."""
    body = Kube(api, timeout=15).request("GET", "/api/v1/nodes", [("labelSelector",
                                         CONTROL_PLANE)], verb="list nodes")
    return sorted(str(n["metadata"]["name"]) for n in body.get("items", [])
                  if (n["metadata"].get("annotations") or {}).get(AGENT_ANNOTATION) != "1")


def request_snapshot(api: Any, at: str) -> None:
    """Write ``requested-at`` (a merge patch of that key only; creates the record if absent)."""
    ensure_record(api)
    Kube(api, timeout=15).request(
        "PATCH", f"{_RECORD_PATH}/{RECORD}", [("fieldManager", MANAGER)],
        {"data": {"requested-at": at}}, "application/merge-patch+json",
        verb=f"patch configmaps in {NAMESPACE}")
