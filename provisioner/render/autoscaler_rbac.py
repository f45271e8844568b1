"""The RBAC of node autoscaling: the service's and the cluster-autoscaler's grants.

Upstream, at the pinned tag (kubernetes/autoscaler ``cluster-autoscaler-<version>``):
cluster-autoscaler/cloudprovider/externalgrpc/examples/cluster-autoscaler-manifests/
cluster-autoscaler.yaml and the Helm chart's templates/clusterrole.yaml.
"""

from __future__ import annotations

from typing import Any

from provisioner.render.autoscaler import CLUSTER_AUTOSCALER, NAMESPACE, SERVICE
from provisioner.render.autoscaler import meta as _meta


def _rbac_service() -> list[dict[str, Any]]:
    """The service: bootstrap-token Secrets in kube-system (create only), nothing else (it
    finds its droplets by tag through the DigitalOcean API, never through Nodes)."""
    sa = {"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(SERVICE, NAMESPACE)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _meta(f"{SERVICE}-bootstrap-tokens", "kube-system"),
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(f"{SERVICE}-bootstrap-tokens", "kube-system"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": f"{SERVICE}-bootstrap-tokens"},
         "subjects": [sa]},
    ]


# Objects earlier versions applied that no longer exist in the render: `up` deletes them.
RETIRED = (("ClusterRoleBinding", f"{SERVICE}-nodes"), ("ClusterRole", f"{SERVICE}-nodes"))


def _rbac_cluster_autoscaler() -> list[dict[str, Any]]:
    """As upstream's externalgrpc example gives it (see the module docstring), its Role and
    bindings in provision-system (its ``--namespace``), the ClusterRole's name prefixed so a
    cluster-autoscaler the user runs elsewhere keeps its own."""
    name = f"provision-{CLUSTER_AUTOSCALER}"
    sa = {"kind": "ServiceAccount", "name": CLUSTER_AUTOSCALER, "namespace": NAMESPACE}
    read = ["watch", "list", "get"]
    rules = [
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": [CLUSTER_AUTOSCALER],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services",
                                          "replicationcontrollers", "persistentvolumeclaims",
                                          "persistentvolumes"], "verbs": read},
        {"apiGroups": ["extensions"], "resources": ["replicasets", "daemonsets"],
         "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
         "verbs": ["watch", "list"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets", "replicasets", "daemonsets"],
         "verbs": read},
        # volumeattachments: the scheduler's volume plugins it simulates with list and watch
        # them; upstream's Helm chart grants it (charts/cluster-autoscaler/templates/
        # clusterrole.yaml at the pinned tag), its older externalgrpc example does not.
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes",
                                                        "csidrivers", "csistoragecapacities",
                                                        "volumeattachments"],
         "verbs": read},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resourceNames": [CLUSTER_AUTOSCALER],
         "resources": ["leases"], "verbs": ["get", "update"]},
    ]
    role_rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"],
         "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
         "verbs": ["delete", "get", "update", "watch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta(name), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name}, "subjects": [sa]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE), "rules": role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": CLUSTER_AUTOSCALER}, "subjects": [sa]},
    ]


def objects() -> list[dict[str, Any]]:
    """Both ServiceAccounts and their grants, in apply order."""
    return [*_rbac_service(), *_rbac_cluster_autoscaler()]
