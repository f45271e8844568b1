"""A marker that tells the cluster a restore replaced from the one it replaced.

Before `provision restore` applies, when the old cluster still answers, it writes the
restore's ID into ConfigMap kube-system/provision-restore. The snapshot was taken before,
so the restored cluster (etcd as of the snapshot) does not hold this ID: a later run that
finds the API answering without it knows the cluster came back from the snapshot and must
not be restored again; with it, the old cluster still runs and nothing was restored.
"""

from __future__ import annotations

from typing import Any

from provisioner.kube import Kube, KubeError

NAMESPACE = "kube-system"
NAME = "provision-restore"
KEY = "restore-id"
_PATH = f"/api/v1/namespaces/{NAMESPACE}/configmaps"


def put(api: Any, restore_id: str) -> None:
    """Write the marker (created, or replaced when an earlier restore left one)."""
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": NAME, "namespace": NAMESPACE,
                         "labels": {"app.kubernetes.io/managed-by": "provision"}},
            "data": {KEY: restore_id}}
    kube = Kube(api, timeout=15)
    try:
        kube.request("POST", _PATH, body=body, verb=f"create configmaps in {NAMESPACE}")
    except KubeError as e:
        if e.status != 409:
            raise
        kube.request("PUT", f"{_PATH}/{NAME}", body=body,
                     verb=f"update configmaps in {NAMESPACE}")


def present(api: Any, restore_id: str) -> bool:
    """Whether the cluster answering holds the marker of this restore."""
    found = Kube(api, timeout=15).get_or_none(f"{_PATH}/{NAME}",
                                              verb=f"get configmaps in {NAMESPACE}")
    return bool(((found or {}).get("data") or {}).get(KEY) == restore_id)
