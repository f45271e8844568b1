"""Pinned versions of the cluster add-ons the first control-plane node installs.

Each is fetched by the node (the droplets reach the internet; the machine running provision
may not) and applied with kubectl after `kubeadm init`. Every file the node downloads is one
row of `PINS`: a path in the project's git repository at a release tag, served by GitHub's
raw file host under ``refs/tags/`` (a tag, never a branch), with the SHA-256 of the file's
content at that tag. The node checks the digest before it uses the file and stops, naming
the add-on, when it differs: a moved tag or a tampered download never reaches the cluster.

The digests were computed from the upstream repositories at those tags (``git show
TAG:PATH | sha256sum``: a raw file served at a tag is the git blob's content). Release
assets built at release time are not in git and cannot be checked that way, so the pins
are files that are: flannel's manifest in its Documentation/ folder, and metrics-server's
kustomize sources, which the node builds the way its release does (`kubectl kustomize
manifests/overlays/release`, its Makefile's `release-manifests`). To bump a version, read
the files at the new tag, recompute their digests and update the row; the contract tests
(tests/contract/test_addon_pins.py, test_upstream_facts.py) fail until both agree.

Some releases need settings for DigitalOcean that their manifests do not carry. Those
add-ons get strategic-merge patches, rendered into a kustomization beside the fetched
manifest and applied with ``kubectl apply -k``: a patch whose object no longer exists in a
new release makes kustomize fail loudly at boot, where a text substitution would silently
do nothing. tests/contract/test_upstream_facts.py holds each upstream fact a patch relies
on, with its source.
"""

from __future__ import annotations

import ipaddress
import posixpath
from dataclasses import dataclass, field
from typing import Any

from provisioner.render.markers import marker

# v3.32.1, not v3.32.2: the newest Calico tag whose files could be read and digested here.
CALICO = "v3.32.1"
FLANNEL = "v0.28.9"
DO_CCM = "v0.1.68"
DO_CSI = "v4.16.0"
METRICS_SERVER = "v0.9.0"

_RAW = "https://raw.githubusercontent.com"
_CALICO_REPO = "projectcalico/calico"
_FLANNEL_REPO = "flannel-io/flannel"
_CCM_REPO = "digitalocean/digitalocean-cloud-controller-manager"
_CSI_REPO = "digitalocean/csi-digitalocean"
_CSI_DIR = f"deploy/kubernetes/releases/csi-digitalocean-{DO_CSI}"
_METRICS_REPO = "kubernetes-sigs/metrics-server"


@dataclass(frozen=True)
class Pin:
    """One upstream file the node downloads: a path at a tag, and its content's SHA-256."""

    addon: str
    version: str  # the git tag
    repo: str  # owner/name on GitHub
    path: str  # in the repository, at the tag
    sha256: str

    @property
    def url(self) -> str:
        """The file at the tag; ``refs/tags/`` keeps a same-named branch from shadowing it."""
        return f"{_RAW}/{self.repo}/refs/tags/{self.version}/{self.path}"


# Every file any environment's nodes download. One row per file; see the module docstring
# for how each digest was obtained.
PINS: tuple[Pin, ...] = (
    Pin("calico", CALICO, _CALICO_REPO, "manifests/calico-vxlan.yaml",
        "c2ab4f9a4ecde01d66e6f040d6745cd7f174d5ded573164c809ffb9f40a9d566"),
    Pin("flannel", FLANNEL, _FLANNEL_REPO, "Documentation/kube-flannel.yml",
        "e875824be2f552b45711dbda91af81b17eb961d00025d914d9fef18fad8f09c0"),
    Pin("digitalocean-ccm", DO_CCM, _CCM_REPO,
        f"releases/digitalocean-cloud-controller-manager/{DO_CCM}.yml",
        "7b35a90b045d4af4b6b0502c30ad561f2eef5bf0d27a24d9f8a286e6b4055866"),
    Pin("csi-crds", DO_CSI, _CSI_REPO, f"{_CSI_DIR}/crds.yaml",
        "68be80400f0a25de6ec18ff4a265dac2786e1394c0fb3925b610a0a2f01b4efe"),
    Pin("csi-driver", DO_CSI, _CSI_REPO, f"{_CSI_DIR}/driver.yaml",
        "0d0aff7b4a6b207d38d4c46417b4bd3647905ab07a191fdcddce01cc172aae44"),
    Pin("csi-snapshot-controller", DO_CSI, _CSI_REPO, f"{_CSI_DIR}/snapshot-controller.yaml",
        "c05ab3640a70cc253a4f43cf300d6014b52e7f02d9e15a79dada66dbaa7cf361"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO,
        "manifests/overlays/release/kustomization.yaml",
        "f14383467e9cf7373a549c780dc978452ba17fc81dcfc7bda83df1d507a2c3d1"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO,
        "manifests/components/release/kustomization.yaml",
        "430dacf41dba61318180d03b24954347cecc3e52cd8640acf7b114c90194ce60"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO, "manifests/base/kustomization.yaml",
        "31dca97d3a1505d8577f41ef09feca37e51ebfa881fa0b5f1782e3a960abc713"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO, "manifests/base/apiservice.yaml",
        "03266df7891b56dfffebb855a031b524ed20c6736846417ccd491dd91c6c0ec3"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO, "manifests/base/deployment.yaml",
        "18970227f17d0c6cb8e7a4a1cdde847117703afd3b0777badf8a006cfea252c2"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO, "manifests/base/rbac.yaml",
        "510be174d47ae7d05ae6908ccb7ca7111008f18b5d1a920ebc6de6582c23b854"),
    Pin("metrics-server", METRICS_SERVER, _METRICS_REPO, "manifests/base/service.yaml",
        "1ce19a57f4769906255c3410a38a01fb0f803e21976ce160f506a90638cbb5c7"),
)


def pins(addon: str) -> tuple[Pin, ...]:
    """The files of one add-on, in table order (the first holds its objects)."""
    found = tuple(p for p in PINS if p.addon == addon)
    if not found:
        raise KeyError(f"no pinned files for add-on {addon!r}")
    return found


@dataclass(frozen=True)
class Patch:
    """A strategic-merge patch of one object of an add-on's manifest, and why."""

    reason: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Addon:
    """One add-on to fetch and apply, in order, with its patches (if any).

    A one-file add-on is that manifest. A several-file one is a kustomize tree, laid out
    under the add-on's folder as in the repository below `root`, and applied from `entry`
    (a folder of that tree holding a kustomization.yaml).
    """

    name: str
    files: tuple[Pin, ...]
    patches: tuple[Patch, ...] = field(default=())
    root: str = ""
    entry: str = ""

    def __post_init__(self) -> None:
        if len(self.files) > 1 and (self.patches or not self.entry):
            raise ValueError(f"{self.name}: a kustomize tree needs an entry and no patches")

    def layout(self, pin: Pin) -> str:
        """Where `pin` goes, relative to the add-on's folder (several-file add-ons)."""
        return posixpath.relpath(pin.path, self.root) if self.root else pin.path


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
            "calico", pins("calico"),
            (_env_patch("DaemonSet", "kube-system", "calico-node", "calico-node",
                        {"IP_AUTODETECTION_METHOD": f"cidr={vpc_cidr}"},
                        "The node address (the VXLAN endpoint) is the one in the VPC,\n"
                        "not the first interface found (eth0, public)."),))
    return Addon(
        "flannel", pins("flannel"),
        (_env_patch("DaemonSet", "kube-flannel", "kube-flannel-ds", "kube-flannel",
                    {"FLANNELD_IFACE_REGEX": address_regex(vpc_cidr)},
                    "--iface-regex as its environment variable: the interface whose\n"
                    "address is in the VPC, not the one of the default route (eth0)."),))


def platform(region: str, vpc_id: str | None = None) -> list[Addon]:
    """Cloud controller manager, CSI driver (with its CRDs and snapshot controller), metrics.

    `vpc_id` defaults to the marker Terraform fills with the environment's VPC at apply time.
    """
    ccm_env = {"REGION": region, "DO_CLUSTER_VPC_ID": vpc_id or marker("vpc_id")}
    return [
        Addon("digitalocean-ccm", pins("digitalocean-ccm"),
              (_env_patch("Deployment", "kube-system", "digitalocean-cloud-controller-manager",
                          "digitalocean-cloud-controller-manager", ccm_env,
                          "REGION: otherwise it asks the metadata service, which the guard\n"
                          "refuses to its user. DO_CLUSTER_VPC_ID: the cluster has its own\n"
                          "VPC, without which load balancers cannot be created."),)),
        Addon("csi-crds", pins("csi-crds")),
        Addon("csi-driver", pins("csi-driver"),
              (Patch("The controller asks the metadata service for its droplet id and\n"
                     "region at start (a --region flag would leave its region empty);\n"
                     "the guard blackholes the pod network, so it runs on the host\n"
                     "network, as root, like the node plugin.",
                     {"apiVersion": "apps/v1", "kind": "StatefulSet",
                      "metadata": {"name": "csi-do-controller", "namespace": "kube-system"},
                      "spec": {"template": {"spec": {"hostNetwork": True}}}}),)),
        Addon("csi-snapshot-controller", pins("csi-snapshot-controller")),
        # What the release's components.yaml is built from, built the same way on the node.
        Addon("metrics-server", pins("metrics-server"), root="manifests",
              entry="overlays/release"),
    ]
