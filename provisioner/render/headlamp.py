"""Headlamp, the optional dashboard add-on (``addons: {headlamp: true}``): our own minimal
manifest, pinned by version and image digest.

The objects follow upstream's in-cluster manifest (headlamp-k8s/headlamp, file
``kubernetes-headlamp.yaml`` at tag v0.30.0, the newest tag of the repository this project
could read: a Service on port 80 to the container's 4466, one replica, ``-in-cluster`` and
``-plugins-dir=/headlamp/plugins``, the probe on ``/``), with what it leaves out: its own
namespace, the image pinned by digest instead of ``latest``, a non-root user (the chart's
``runAsUser: 100``, charts/headlamp/values.yaml at that tag) and no long-lived token
Secret. Headlamp in-cluster acts with the token its user logs in with, so its own service
account gets no role; the two login accounts are `VIEW_ACCOUNT` (ClusterRole ``view``) and
`ADMIN_ACCOUNT` (``cluster-admin``), whose tokens `provision dashboard` asks the
TokenRequest API for, short-lived, one at a time. The admin account and its binding are
only in `objects(admin=True)`: `provision dashboard --admin` applies them and deletes them
when it ends (`admin_objects`), so no cluster-admin account stands in the cluster for
anyone who may create pods in the namespace to borrow.

The release pinned is v0.45.0; its image digest is the multi-platform index digest of
``ghcr.io/headlamp-k8s/headlamp:v0.45.0`` as recorded by a public deployment guide that
pinned it (verified there on 2026-10-05; this machine cannot reach the registry). To move
on: read the new tag's manifest, run ``crane digest ghcr.io/headlamp-k8s/headlamp:<tag>``
and update both constants together.
"""

from __future__ import annotations

from typing import Any

VERSION = "v0.45.0"
DIGEST = "sha256:db3f0e0fc58d358d41daa3fe7fc852437552c7ee873c3645470f7b86a8e0db49"
IMAGE = f"ghcr.io/headlamp-k8s/headlamp:{VERSION}@{DIGEST}"
NAMESPACE = "headlamp"
NAME = "headlamp"
PORT = 4466  # the container's, as upstream's manifest exposes it
VIEW_ACCOUNT = "headlamp-view"
ADMIN_ACCOUNT = "headlamp-admin"
FIELD_MANAGER = "provision-dashboard"

_LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/version": VERSION,
           "app.kubernetes.io/managed-by": "provision"}
_SELECTOR = {"app.kubernetes.io/name": NAME}


def _meta(name: str, namespace: str | None = NAMESPACE) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": dict(_LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _binding(account: str, role: str) -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": _meta(account, None),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": account,
                          "namespace": NAMESPACE}]}


def admin_objects() -> list[dict[str, Any]]:
    """The cluster-admin login account and its binding, in apply order."""
    return [{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(ADMIN_ACCOUNT),
             "automountServiceAccountToken": False},
            _binding(ADMIN_ACCOUNT, "cluster-admin")]


def objects(admin: bool = False) -> list[dict[str, Any]]:
    """Every object of the add-on, in apply order; the admin account only with `admin`."""
    probe = {"httpGet": {"path": "/", "port": PORT, "scheme": "HTTP"},
             "initialDelaySeconds": 10, "timeoutSeconds": 10}
    container = {
        "name": NAME, "image": IMAGE, "imagePullPolicy": "IfNotPresent",
        "args": ["-in-cluster", "-plugins-dir=/headlamp/plugins"],
        "ports": [{"name": "http", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": probe, "livenessProbe": probe,
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"memory": "256Mi"}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": 100, "runAsGroup": 101,
                            "allowPrivilegeEscalation": False,
                            "capabilities": {"drop": ["ALL"]}}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(NAMESPACE, None)},
        # Its token only tells Headlamp where the API is (in-cluster configuration): the
        # account is bound to no role, every request goes with the user's token.
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(VIEW_ACCOUNT),
         "automountServiceAccountToken": False},
        _binding(VIEW_ACCOUNT, "view"),
        *(admin_objects() if admin else []),
        {"apiVersion": "v1", "kind": "Service", "metadata": _meta(NAME),
         "spec": {"selector": dict(_SELECTOR),
                  "ports": [{"name": "http", "port": 80, "targetPort": "http"}]}},
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME),
         "spec": {"replicas": 1, "selector": {"matchLabels": dict(_SELECTOR)},
                  "template": {"metadata": {"labels": dict(_LABELS)},
                               "spec": {"serviceAccountName": NAME,
                                        "nodeSelector": {"kubernetes.io/os": "linux"},
                                        "containers": [container]}}}},
    ]
