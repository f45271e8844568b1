"""Hostile review of `provision dashboard` (branch hostile2)."""

from __future__ import annotations

import json
from typing import Any

from provisioner import dashboard


class Recording:
    def __init__(self) -> None:
        self.applied: list[dict[str, Any]] = []

    def request(self, method: str, path: str, query: Any = None, body: Any = None,
                **_: Any) -> dict[str, Any]:
        self.applied.append(json.loads(body) if isinstance(body, str) else body)
        return {}


def test_without_admin_no_cluster_admin_binding_is_left_in_the_cluster() -> None:
    """`provision dashboard prod.yaml` (read-only, no --admin) still applies the
    ServiceAccount headlamp-admin and its ClusterRoleBinding to cluster-admin, and they
    stay. Anyone who may create pods (or serviceaccounts/token) in namespace headlamp can
    run a pod as headlamp-admin (automountServiceAccountToken: false on the account is
    overridden by the pod spec) and is cluster-admin: a standing privilege the README's
    'nothing long-lived exists to steal' does not cover. The admin account and binding
    should exist only when --admin asks for them (or the token come from the operator's
    own admin credentials)."""
    kube = Recording()
    dashboard.install(kube)
    admin = [o for o in kube.applied if o.get("kind") == "ClusterRoleBinding"
             and o.get("roleRef", {}).get("name") == "cluster-admin"]
    assert admin == [], "a cluster-admin binding is applied by a read-only dashboard run"
