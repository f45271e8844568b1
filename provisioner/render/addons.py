"""Pinned versions of the cluster add-ons the first control-plane node installs.

Each is fetched by the node from its project's release (the droplets reach the internet;
the machine running provision may not) and applied with kubectl after `kubeadm init`.
Bump a version here and the next cluster gets it; existing clusters keep what they run.
"""

from __future__ import annotations

from dataclasses import dataclass

CALICO = "v3.32.2"
FLANNEL = "v0.28.9"
DO_CCM = "v0.1.68"
DO_CSI = "v4.16.0"
METRICS_SERVER = "v0.9.0"

_GH = "https://github.com"
_RAW = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Addon:
    """One manifest to fetch and apply, in order."""

    name: str
    url: str


def cni(kind: str) -> Addon:
    """The pod network, always in VXLAN mode (DigitalOcean firewalls pass only UDP tunnels)."""
    if kind == "calico":
        return Addon("calico", f"{_RAW}/projectcalico/calico/{CALICO}/manifests/calico-vxlan.yaml")
    return Addon("flannel", f"{_GH}/flannel-io/flannel/releases/download/{FLANNEL}/"
                            "kube-flannel.yml")


def platform() -> list[Addon]:
    """Cloud controller manager, CSI driver (with its CRDs and snapshot controller), metrics."""
    csi = (f"{_RAW}/digitalocean/csi-digitalocean/master/deploy/kubernetes/releases/"
           f"csi-digitalocean-{DO_CSI}")
    return [
        Addon("digitalocean-ccm", f"{_RAW}/digitalocean/digitalocean-cloud-controller-manager/"
                                  f"master/releases/digitalocean-cloud-controller-manager/"
                                  f"{DO_CCM}.yml"),
        Addon("csi-crds", f"{csi}/crds.yaml"),
        Addon("csi-driver", f"{csi}/driver.yaml"),
        Addon("csi-snapshot-controller", f"{csi}/snapshot-controller.yaml"),
        Addon("metrics-server", f"{_GH}/kubernetes-sigs/metrics-server/releases/download/"
                                f"{METRICS_SERVER}/components.yaml"),
    ]
