"""The cluster side of etcd backups: the agents' Secret and their record (kube-system).

Shared contract of issue 15 (README, "Backups"):

* Secret ``kube-system/provision-backup``: ``access-key-id``, ``secret-access-key`` (the
  Spaces key) and ``recipient.pem`` (the public key snapshots are encrypted to). `up`
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


def store_access(api: Any, access_key: str, secret_key: str, recipient_pem: bytes) -> None:
    """Apply the agents' Secret (declaratively: a changed key or recipient replaces it)."""
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET, "namespace": NAMESPACE, "labels": LABELS},
            "stringData": {"access-key-id": access_key, "secret-access-key": secret_key,
                           "recipient.pem": recipient_pem.decode("ascii")}}
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
    try:
        found = Kube(api, timeout=15).request("GET", f"{_RECORD_PATH}/{RECORD}",
                                              verb=f"get configmaps in {NAMESPACE}")
    except KubeError as e:
        if e.status == 404:
            return None
        raise
    data = found.get("data") or {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def request_snapshot(api: Any, at: str) -> None:
    """Write ``requested-at`` (a merge patch of that key only; creates the record if absent)."""
    ensure_record(api)
    Kube(api, timeout=15).request(
        "PATCH", f"{_RECORD_PATH}/{RECORD}", [("fieldManager", MANAGER)],
        {"data": {"requested-at": at}}, "application/merge-patch+json",
        verb=f"patch configmaps in {NAMESPACE}")
