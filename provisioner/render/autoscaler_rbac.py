"""The RBAC of node autoscaling: the service's and the cluster-autoscaler's grants.

Upstream, at the pinned tag (kubernetes/autoscaler ``cluster-autoscaler-<version>``):
cluster-autoscaler/cloudprovider/externalgrpc/examples/cluster-autoscaler-manifests/
cluster-autoscaler.yaml and the Helm chart's templates/clusterrole.yaml.
"""

from __future__ import annotations

from typing import Any

from provisioner.config.model import Environment
from provisioner.render.autoscaler import (
    CLUSTER_AUTOSCALER,
    NAMESPACE,
    SERVICE,
    cluster_autoscaler_release,
)
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


def _minor(release: str) -> int:
    return int(release.split(".")[1])


def cluster_autoscaler_rules(release: str) -> list[dict[str, Any]]:
    """The cluster-autoscaler's ClusterRole rules at ``release``.

    Upstream's Helm chart at the same tag (charts/cluster-autoscaler/templates/
    clusterrole.yaml; under cluster-autoscaler/ from 1.35) is the reference, with its
    cloud-provider-specific rules (coreweave, kwok, clusterapi, PSP) left out and these
    differences, each checked in the cluster-autoscaler's code at the tag:

    * nodes ``create``/``delete``: 1.33 and 1.34's chart grants them to every provider,
      1.35's only to kwok (and delete to huaweicloud); no code outside cloudprovider/
      creates or deletes a Node, so none of the pinned versions gets them;
    * ``configmaps`` cluster-wide read: granted in provision-system only, by the Role
      below (clusterstate/utils/status.go and the priority expander's
      NewConfigMapListerForNamespace read only ``--namespace``);
    * 1.36's ``podtemplates`` and ``provisioningrequests``: read only by the
      ProvisioningRequest support (builder/clients.go), which runs with
      ``--enable-provisioning-requests`` (default false, config/flags/flags.go), unset here.
    """
    read = ["watch", "list", "get"]
    rules: list[dict[str, Any]] = [
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": [CLUSTER_AUTOSCALER],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
    ]
    if _minor(release) >= 35:
        # DRA is locked on from 1.35 (config/flags/flags.go ``enable-dynamic-resource-
        # allocation``): simulator/dynamicresources/provider/provider.go lists these on the
        # shared informer factory and builder/autoscaler.go waits for every informer to
        # sync, so without them the pod hangs at "Waiting for caches to sync".
        rules.append({"apiGroups": ["resource.k8s.io"],
                      "resources": ["resourceslices", "deviceclasses", "resourceclaims"],
                      "verbs": read})
    rules += [
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services",
                                          "replicationcontrollers", "persistentvolumeclaims",
                                          "persistentvolumes"], "verbs": read},
        {"apiGroups": ["batch"], "resources": ["jobs", "cronjobs"], "verbs": read},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"],
         "verbs": ["get", "list", "patch", "watch"]},
        {"apiGroups": ["extensions"], "resources": ["replicasets", "daemonsets"],
         "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
         "verbs": ["watch", "list"]},
        {"apiGroups": ["apps"], "resources": ["daemonsets", "replicasets", "statefulsets"],
         "verbs": read},
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes",
                                                        "csidrivers", "csistoragecapacities",
                                                        "volumeattachments"],
         "verbs": read},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resourceNames": [CLUSTER_AUTOSCALER],
         "resources": ["leases"], "verbs": ["get", "update"]},
    ]
    return rules


def _rbac_cluster_autoscaler(release: str) -> list[dict[str, Any]]:
    """Its ClusterRole (cluster_autoscaler_rules), Role and bindings in provision-system
    (its ``--namespace``), the ClusterRole's name prefixed so a cluster-autoscaler the user
    runs elsewhere keeps its own."""
    name = f"provision-{CLUSTER_AUTOSCALER}"
    sa = {"kind": "ServiceAccount", "name": CLUSTER_AUTOSCALER, "namespace": NAMESPACE}
    rules = cluster_autoscaler_rules(release)
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


def objects(env: Environment) -> list[dict[str, Any]]:
    """Both ServiceAccounts and their grants, in apply order."""
    return [*_rbac_service(),
            *_rbac_cluster_autoscaler(cluster_autoscaler_release(env))]
