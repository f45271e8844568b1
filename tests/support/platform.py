"""The cluster add-ons as the first control-plane node's cloud-init leaves them, for the fake.

Each object carries only the facts the platform gate and the simulated scheduler depend
on: kind, namespace, name, selector labels, tolerations, host networking, replicas. Where
they come from (at the versions pinned in provisioner/render/addons.py):

* CoreDNS: kubeadm's ``cmd/kubeadm/app/phases/addons/dns/manifests.go``: Deployment
  kube-system/coredns, 2 replicas, ``k8s-app: kube-dns``, tolerating ``CriticalAddonsOnly``
  and the control-plane taint only (so it waits for the CCM to initialise a node).
* calico v3.32.2 ``manifests/calico-vxlan.yaml``: DaemonSet kube-system/calico-node,
  ``k8s-app: calico-node``, host network, tolerating every NoSchedule and NoExecute taint.
* flannel v0.28.9 ``kube-flannel.yml``: DaemonSet kube-flannel/kube-flannel-ds,
  ``app: flannel``, host network, tolerating every NoSchedule taint.
* digitalocean-cloud-controller-manager v0.1.68
  ``releases/digitalocean-cloud-controller-manager/v0.1.68.yml``: Deployment
  kube-system/digitalocean-cloud-controller-manager, 1 replica,
  ``app: digitalocean-cloud-controller-manager``, host network, tolerating
  ``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule``, ``CriticalAddonsOnly``
  and the (control-plane and master) NoSchedule taints.
* csi-digitalocean v4.16.0 ``deploy/kubernetes/releases/csi-digitalocean-v4.16.0/
  driver.yaml``: StatefulSet kube-system/csi-do-controller (``app: csi-do-controller``,
  container ``csi-do-plugin`` among others) and DaemonSet kube-system/csi-do-node
  (``app: csi-do-node``, host network); neither has tolerations.
* metrics-server v0.9.0 ``components.yaml``: Deployment kube-system/metrics-server,
  ``k8s-app: metrics-server``, no tolerations.

`images` overrides a workload's image by name: the fake kubelet takes its failure modes
from images (``crashloop``, ``pullfail``, ``unready``: tests/fakes/kubeapi/kubelet.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.fakes.kubeapi.server import FakeKubeAPI

CCM_LABELS = {"app": "digitalocean-cloud-controller-manager"}
_EVERYTHING = [{"operator": "Exists", "effect": "NoSchedule"},
               {"operator": "Exists", "effect": "NoExecute"}]
_CONTROL_PLANE = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
_CRITICAL = {"key": "CriticalAddonsOnly", "operator": "Exists"}


def _workload(kind: str, namespace: str, name: str, labels: dict[str, str], image: str,
              container: str, tolerations: list[dict[str, Any]], host_network: bool = False,
              replicas: int | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"selector": {"matchLabels": labels}, "template": {
        "metadata": {"labels": labels},
        "spec": {"containers": [{"name": container, "image": image}],
                 "tolerations": tolerations, **({"hostNetwork": True} if host_network else {})},
    }}
    if replicas is not None:
        spec["replicas"] = replicas
    if kind == "StatefulSet":
        spec["serviceName"] = "csi-do"
    return {"apiVersion": "apps/v1", "kind": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": labels},
            "spec": spec}


def addon_objects(cni: str) -> list[tuple[str, dict[str, Any]]]:
    """(name, object) of every add-on workload, in the order the node applies them."""
    network = (_workload("DaemonSet", "kube-system", "calico-node", {"k8s-app": "calico-node"},
                         "docker.io/calico/node:v3.32.2", "calico-node",
                         [*_EVERYTHING, _CRITICAL], host_network=True)
               if cni == "calico" else
               _workload("DaemonSet", "kube-flannel", "kube-flannel-ds", {"app": "flannel"},
                         "ghcr.io/flannel-io/flannel:v0.28.9", "kube-flannel",
                         [{"operator": "Exists", "effect": "NoSchedule"}], host_network=True))
    return [
        ("coredns", _workload("Deployment", "kube-system", "coredns", {"k8s-app": "kube-dns"},
                              "registry.k8s.io/coredns/coredns:v1.12.1", "coredns",
                              [_CRITICAL, _CONTROL_PLANE], replicas=2)),
        (str(network["metadata"]["name"]), network),
        ("digitalocean-cloud-controller-manager", _workload(
            "Deployment", "kube-system", "digitalocean-cloud-controller-manager", CCM_LABELS,
            "digitalocean/digitalocean-cloud-controller-manager:v0.1.68",
            "digitalocean-cloud-controller-manager",
            [{"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true",
              "effect": "NoSchedule"}, _CRITICAL,
             {"key": "node-role.kubernetes.io/master", "effect": "NoSchedule"}, _CONTROL_PLANE],
            host_network=True, replicas=1)),
        ("csi-do-controller", _workload(
            "StatefulSet", "kube-system", "csi-do-controller", {"app": "csi-do-controller"},
            "digitalocean/do-csi-plugin:v4.16.0", "csi-do-plugin", [], replicas=1)),
        ("csi-do-node", _workload(
            "DaemonSet", "kube-system", "csi-do-node", {"app": "csi-do-node"},
            "digitalocean/do-csi-plugin:v4.16.0", "csi-do-plugin", [], host_network=True)),
        ("metrics-server", _workload(
            "Deployment", "kube-system", "metrics-server", {"k8s-app": "metrics-server"},
            "registry.k8s.io/metrics-server/metrics-server:v0.9.0", "metrics-server", [],
            replicas=1)),
    ]


def run_cloud_controller(kube: FakeKubeAPI) -> None:
    """Let the fake's cloud node controller work while the CCM's pod is Ready."""
    kube.controllers.cloud_nodes.selector = ("kube-system", CCM_LABELS)


def install(kube: FakeKubeAPI, cni: str = "calico", images: Mapping[str, str] | None = None,
            skip: tuple[str, ...] = ()) -> list[str]:
    """Create the add-ons (all but `skip`) as `kubectl apply` on the node would; their names."""
    run_cloud_controller(kube)
    if cni != "calico" and kube.get("v1", "Namespace", "kube-flannel") is None:
        kube.create({"apiVersion": "v1", "kind": "Namespace",
                     "metadata": {"name": "kube-flannel"}})
    created = []
    for name, obj in addon_objects(cni):
        if name in skip:
            continue
        if images and name in images:
            obj["spec"]["template"]["spec"]["containers"][0]["image"] = images[name]
        kube.create(obj, manager="kubectl-client-side-apply")
        created.append(name)
    return created


def install_one(kube: FakeKubeAPI, name: str, cni: str = "calico") -> None:
    """Create one add-on later (a slow `kubectl apply`)."""
    obj = dict(addon_objects(cni))[name]
    kube.create(obj, manager="kubectl-client-side-apply")
