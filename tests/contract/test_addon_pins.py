"""The add-on files the first control-plane node downloads are exactly the pinned ones.

Each row of ``provisioner.render.addons.PINS`` names a file in an upstream repository at a
release tag and the SHA-256 of its content there. The digests were computed from the
repositories themselves (``git show TAG:PATH | sha256sum``; GitHub's raw file host serves a
path at a ref as that git blob's bytes):

* projectcalico/calico v3.32.1, manifests/calico-vxlan.yaml (v3.32.2 was not available to
  read; v3.32.1 is the newest release tag that was)
* flannel-io/flannel v0.28.9, Documentation/kube-flannel.yml (the release asset
  kube-flannel.yml is built at release time: Makefile `kubectl kustomize
  ./Documentation/kustomization/kube-flannel/`, .github/workflows/release.yml uploads it;
  it is not in git, so its digest cannot be known in advance)
* digitalocean/digitalocean-cloud-controller-manager v0.1.68,
  releases/digitalocean-cloud-controller-manager/v0.1.68.yml
* digitalocean/csi-digitalocean v4.16.0, deploy/kubernetes/releases/csi-digitalocean-v4.16.0/
  crds.yaml, driver.yaml, snapshot-controller.yaml
* kubernetes-sigs/metrics-server v0.9.0, manifests/{overlays/release, components/release,
  base}: the release's components.yaml is built from these at release time (Makefile
  `release-manifests`: `kubectl kustomize manifests/overlays/release`), so the node fetches
  them and builds it the same way with `kubectl apply -k`.

These tests check the rendered bootstrap script of the examples against that table: every
download is a table row with its digest, no row is left out, and nothing is fetched from a
branch or a "latest" path.
"""

from __future__ import annotations

import re

import pytest
import yaml

from provisioner.render import addons
from provisioner.render.cloudinit import ADDONS_DIR
from tests.support.rendering import example, materialize, rendered, written

BOOTSTRAP = "/usr/local/sbin/provision-bootstrap"
# `fetch_verified NAME URL SHA256 \` + newline + `"$ADDONS_DIR/"DEST`, as rendered.
FETCH = re.compile(r'^  fetch_verified (\S+) (\S+) (\S+) \\\n    "\$ADDONS_DIR/"(\S+)$', re.M)
RAW = "https://raw.githubusercontent.com"
# Upstream tags of the pinned releases (each project tags releases as v<semver>).
TAG = re.compile(r"^v\d+\.\d+\.\d+\Z")
CNI_PINS = {"calico": "flannel", "flannel": "calico"}  # the CNI an example does NOT use


def user_data(name: str) -> dict[str, str]:
    """role file -> the cloud-config text a droplet of that role receives."""
    return {path: materialize(text) for path, text in rendered(name).items()
            if path.startswith("cloud-init/")}


def bootstrap(name: str, role: str = "controller-init") -> str:
    config = yaml.safe_load(user_data(name)[f"cloud-init/{role}.yaml"])
    (script,) = [written(f) for f in config["write_files"] if f["path"] == BOOTSTRAP]
    return str(script)


def fetches(name: str) -> list[tuple[str, str, str, str]]:
    """(add-on, URL, sha256, destination) of every download, in script order."""
    return FETCH.findall(bootstrap(name))


def fetch_addons_body(script: str) -> str:
    return script.split("\nfetch_addons() {\n", 1)[1].split("\n}\n", 1)[0]


def test_the_table_holds_tagged_paths_with_real_sha256_digests() -> None:
    """Every row: a release tag equal to its add-on's version constant, a raw URL at
    ``refs/tags/<tag>`` (a branch of the same name cannot shadow it), a 64-hex digest."""
    versions = {"calico": addons.CALICO, "flannel": addons.FLANNEL,
                "digitalocean-ccm": addons.DO_CCM, "csi-crds": addons.DO_CSI,
                "csi-driver": addons.DO_CSI, "csi-snapshot-controller": addons.DO_CSI,
                "metrics-server": addons.METRICS_SERVER}
    assert {p.addon for p in addons.PINS} == set(versions)
    for pin in addons.PINS:
        assert TAG.match(pin.version), pin
        assert pin.version == versions[pin.addon], pin
        assert pin.url == f"{RAW}/{pin.repo}/refs/tags/{pin.version}/{pin.path}", pin
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256), pin
    assert len({p.url for p in addons.PINS}) == len(addons.PINS), "a file is pinned twice"
    assert len({p.sha256 for p in addons.PINS}) == len(addons.PINS), "a digest is reused"


@pytest.mark.parametrize("name", ["production", "staging"])
def test_the_script_fetches_exactly_the_pinned_files_with_their_digests(name: str) -> None:
    cni = example(name).kubernetes.cni
    expected = {(p.addon, p.url, p.sha256) for p in addons.PINS
                if p.addon != CNI_PINS[cni]}
    found = fetches(name)
    assert {(a, u, s) for a, u, s, _ in found} == expected
    assert len(found) == len(expected), "a file is fetched twice"
    assert found[0][0] == cni, "the pod network comes first: CNI_MANIFEST is its file"


@pytest.mark.parametrize("name", ["production", "staging"])
def test_nothing_is_fetched_from_a_branch_or_latest(name: str) -> None:
    for path, text in user_data(name).items():
        for url in re.findall(r"https?://[^\s'\"]+", text):
            for banned in ("/master/", "/main/", "latest", "/releases/download/",
                           "/refs/heads/"):
                assert banned not in url, f"{path}: {url}"
    body = fetch_addons_body(bootstrap(name))
    urls = re.findall(r"https?://\S+", body)
    assert urls and set(urls) == {u for _, u, _, _ in fetches(name)}
    assert "curl" not in body, "every add-on download goes through fetch_verified"
    script = bootstrap(name)
    # curl appears only where it may: fetch_verified, the apt keys, the metadata service,
    # and the restore's snapshot copy (its presigned URL from restore.env, read on stdin).
    for line in script.splitlines():
        if "curl " in line and not line.lstrip().startswith("#"):
            assert ('"$url"' in line or "Release.key" in line or "/gpg" in line
                    or '"$METADATA/$1"' in line or '-K - -o "$w/enc"' in line), line


def test_metrics_server_tree_keeps_upstream_layout_and_is_applied_from_its_overlay() -> None:
    """metrics-server v0.9.0: manifests/overlays/release/kustomization.yaml has resources
    `../../base` and components `../../components/release`; base/kustomization.yaml lists
    apiservice.yaml, deployment.yaml, rbac.yaml, service.yaml. The files keep their paths
    below manifests/, so those relative references resolve on the node."""
    dests = {d for a, _, _, d in fetches("production") if a == "metrics-server"}
    folder = next(d.split("/", 1)[0] for d in dests)
    assert {d.split("/", 1)[1] for d in dests} == {
        "overlays/release/kustomization.yaml", "components/release/kustomization.yaml",
        "base/kustomization.yaml", "base/apiservice.yaml", "base/deployment.yaml",
        "base/rbac.yaml", "base/service.yaml"}
    script = bootstrap("production")
    applied = re.search(r"for source in (.*); do", script)
    assert applied and f"{folder}/overlays/release" in applied.group(1).split()
    assert f'install -d -m 0700 "$ADDONS_DIR/"{folder}/components/release' in script
    assert ADDONS_DIR in script


@pytest.mark.parametrize("name", ["production", "staging"])
def test_containerd_is_pinned_and_held_with_the_kubernetes_packages(name: str) -> None:
    """containerd/containerd RELEASES.md ("Kubernetes Support", read at 301026e): 1.36 ->
    2.3.0+, 2.2.0+. The package is installed as the repository's build of that upstream
    version and held, like kubelet, kubeadm and kubectl."""
    script = bootstrap(name)
    assert f"readonly CONTAINERD_VERSION={addons_containerd()}\n" in script
    assert 'package_version containerd.io "$CONTAINERD_VERSION"' in script
    install = re.search(r"apt_get install -y (\"containerd\.io=[^\n]*\n[^\n]*)", script)
    assert install and '"containerd.io=$containerd_pkg"' in install.group(1)
    assert "apt_get install -y containerd.io " not in script
    assert "apt-mark hold kubelet kubeadm kubectl containerd.io" in script


def addons_containerd() -> str:
    from provisioner.render.packages import CONTAINERD

    major, minor, _ = (int(x) for x in CONTAINERD.split("."))
    # Recommended for the examples' Kubernetes 1.36 by containerd's table: 2.2.0+ or 2.3.0+.
    assert (major, minor) in {(2, 2), (2, 3)}
    return CONTAINERD
