"""Pinned versions of the cluster add-ons the first control-plane node installs.

Each is fetched by the node from its project's release (the droplets reach the internet;
the machine running provision may not) and applied with kubectl after `kubeadm init`.
Bump a version here and the next cluster gets it; existing clusters keep what they run.

Some releases need settings for DigitalOcean that their manifests do not carry. Those
add-ons get strategic-merge patches, rendered into a kustomization beside the fetched
manifest and applied with ``kubectl apply -k``: a patch whose object no longer exists in a
new release makes kustomize fail loudly at boot, where a text substitution would silently
do nothing. tests/contract/test_upstream_facts.py holds each upstream fact a patch relies
on, with its source.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

from provisioner.render.markers import marker

CALICO = "v3.32.2"
FLANNEL = "v0.28.9"
DO_CCM = "v0.1.68"
DO_CSI = "v4.16.0"
METRICS_SERVER = "v0.9.0"

_GH = "https://github.com"
_RAW = "https://raw.githubusercontent.com"


@dataclass(frozen=True)
class Patch:
    """A strategic-merge patch of one object of an add-on's manifest, and why."""

    reason: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Addon:
    """One manifest to fetch and apply, in order, with its patches (if any)."""

    name: str
    url: str
    patches: tuple[Patch, ...] = field(default=())


def _env_patch(kind: str, namespace: str, name: str, container: str,
               env: dict[str, str], reason: str) -> Patch:
    """Environment variables added to (or replacing same-named ones of) one container."""
    return Patch(reason, {
        "apiVersion": "apps/v1", "kind": kind,
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": {"containers": [{
            "name": container,
            "env": [{"name": key, "value": value} for key, value in env.items()],
        }]}}},
    })


def address_regex(cidr: str) -> str:
    """An anchored regular expression matching exactly the dotted addresses in `cidr`.

    For flannel's ``--iface-regex``, which it matches against each interface's addresses
    as text (RE2 syntax, which this subset shares with Python's `re`).
    """
    network = ipaddress.IPv4Network(cidr)
    octets = str(network.network_address).split(".")
    whole, partial = divmod(network.prefixlen, 8)
    parts = octets[:whole]
    if partial:
        low = int(octets[whole])
        parts.append("(?:" + "|".join(str(v) for v in range(low, low + 2 ** (8 - partial)))
                     + ")")
    parts += [r"\d{1,3}"] * (4 - len(parts))
    return "^" + r"\.".join(parts) + "$"


def cni(kind: str, vpc_cidr: str) -> Addon:
    """The pod network, always in VXLAN mode (DigitalOcean firewalls pass only UDP tunnels).

    Both plugins would otherwise tunnel over the interface of the default route, eth0 with
    the droplet's public address: pinned to the VPC, node-to-node pod traffic stays private
    and inside the firewall rules for the VPC.
    """
    if kind == "calico":
        return Addon(
            "calico", f"{_RAW}/projectcalico/calico/{CALICO}/manifests/calico-vxlan.yaml",
            (_env_patch("DaemonSet", "kube-system", "calico-node", "calico-node",
                        {"IP_AUTODETECTION_METHOD": f"cidr={vpc_cidr}"},
                        "The node address (the VXLAN endpoint) is the one in the VPC,\n"
                        "not the first interface found (eth0, public)."),))
    return Addon(
        "flannel", f"{_GH}/flannel-io/flannel/releases/download/{FLANNEL}/kube-flannel.yml",
        (_env_patch("DaemonSet", "kube-flannel", "kube-flannel-ds", "kube-flannel",
                    {"FLANNELD_IFACE_REGEX": address_regex(vpc_cidr)},
                    "--iface-regex as its environment variable: the interface whose\n"
                    "address is in the VPC, not the one of the default route (eth0)."),))


def platform(region: str, vpc_id: str | None = None) -> list[Addon]:
    """Cloud controller manager, CSI driver (with its CRDs and snapshot controller), metrics.

    `vpc_id` defaults to the marker Terraform fills with the environment's VPC at apply time.
    """
    csi = (f"{_RAW}/digitalocean/csi-digitalocean/master/deploy/kubernetes/releases/"
           f"csi-digitalocean-{DO_CSI}")
    ccm_env = {"REGION": region, "DO_CLUSTER_VPC_ID": vpc_id or marker("vpc_id")}
    return [
        Addon("digitalocean-ccm", f"{_RAW}/digitalocean/digitalocean-cloud-controller-manager/"
                                  f"master/releases/digitalocean-cloud-controller-manager/"
                                  f"{DO_CCM}.yml",
              (_env_patch("Deployment", "kube-system", "digitalocean-cloud-controller-manager",
                          "digitalocean-cloud-controller-manager", ccm_env,
                          "REGION: otherwise it asks the metadata service, which the guard\n"
                          "refuses to its user. DO_CLUSTER_VPC_ID: the cluster has its own\n"
                          "VPC, without which load balancers cannot be created."),)),
        Addon("csi-crds", f"{csi}/crds.yaml"),
        Addon("csi-driver", f"{csi}/driver.yaml",
              (Patch("The controller asks the metadata service for its droplet id and\n"
                     "region at start (a --region flag would leave its region empty);\n"
                     "the guard blackholes the pod network, so it runs on the host\n"
                     "network, as root, like the node plugin.",
                     {"apiVersion": "apps/v1", "kind": "StatefulSet",
                      "metadata": {"name": "csi-do-controller", "namespace": "kube-system"},
                      "spec": {"template": {"spec": {"hostNetwork": True}}}}),)),
        Addon("csi-snapshot-controller", f"{csi}/snapshot-controller.yaml"),
        Addon("metrics-server", f"{_GH}/kubernetes-sigs/metrics-server/releases/download/"
                                f"{METRICS_SERVER}/components.yaml"),
    ]
