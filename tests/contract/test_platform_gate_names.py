"""The platform gate waits for the objects the add-on manifests really create.

Names, kinds and namespaces as read at the pinned tags (tests/contract/test_upstream_facts.py
holds the ones its patches rely on): digitalocean-cloud-controller-manager v0.1.68
`releases/digitalocean-cloud-controller-manager/v0.1.68.yml` (Deployment
kube-system/digitalocean-cloud-controller-manager); csi-digitalocean v4.16.0
`deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml` (StatefulSet
kube-system/csi-do-controller, DaemonSet kube-system/csi-do-node); calico v3.32.1
`manifests/calico-vxlan.yaml` (DaemonSet kube-system/calico-node); flannel v0.28.9
`kube-flannel.yml` (DaemonSet kube-flannel/kube-flannel-ds); metrics-server v0.9.0
`components.yaml` (Deployment kube-system/metrics-server); kubeadm
`cmd/kubeadm/app/phases/addons/dns/manifests.go` (Deployment kube-system/coredns).
"""

from __future__ import annotations

from provisioner.bootstrap.platform import workloads
from provisioner.render import addons
from tests.contract.test_upstream_facts import CALICO_NODE, CCM, CSI_CONTROLLER, FLANNEL
from tests.support.platform import addon_objects


def _objects(cni: str) -> list[tuple[str, str, str]]:
    return [(w.kind, w.namespace, w.name) for w in workloads(cni)]


def test_the_gate_names_the_upstream_objects() -> None:
    for fact in (CCM, CSI_CONTROLLER, CALICO_NODE):
        assert fact[:3] in _objects("calico"), fact
    assert FLANNEL[:3] in _objects("flannel")
    assert ("DaemonSet", "kube-system", "csi-do-node") in _objects("calico")
    assert ("Deployment", "kube-system", "metrics-server") in _objects("calico")
    assert ("Deployment", "kube-system", "coredns") in _objects("calico")
    assert (addons.DO_CCM, addons.DO_CSI, addons.CALICO, addons.FLANNEL,
            addons.METRICS_SERVER) == ("v0.1.68", "v4.16.0", "v3.32.1", "v0.28.9", "v0.9.0")


def test_the_simulated_add_ons_are_the_ones_the_gate_waits_for() -> None:
    for cni in ("calico", "flannel"):
        simulated = [(o["kind"], o["metadata"]["namespace"], o["metadata"]["name"])
                     for _, o in addon_objects(cni)]
        assert simulated == _objects(cni)
