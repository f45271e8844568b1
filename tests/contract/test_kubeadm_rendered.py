"""The kubeadm configuration inside every rendered cloud-config passes the strict v1beta4 schema."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from tests.support.rendering import DATA, materialize, rendered

pytestmark = pytest.mark.oracle
CASES = [(name, path) for name in ("production", "staging")
         for path in sorted(rendered(name)) if path.startswith("cloud-init/")]


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(json.loads((DATA / "kubeadm-v1beta4.schema.json").read_text()))


def kubeadm_documents(example: str, path: str) -> list[dict[str, Any]]:
    """The kubeadm file cloud-init writes, as the node reads it after filling its own IP."""
    cloud_config = yaml.safe_load(materialize(rendered(example)[path], boot=True))
    files = {f["path"]: f for f in cloud_config["write_files"]}
    text = files["/etc/provision/kubeadm.yaml"]["content"]
    return [d for d in yaml.safe_load_all(text) if d]


def problems(document: dict[str, Any]) -> list[str]:
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator().iter_errors(document)]


@pytest.mark.parametrize(("example", "path"), CASES)
def test_kubeadm_documents_are_valid_v1beta4(example: str, path: str) -> None:
    documents = kubeadm_documents(example, path)
    for document in documents:
        assert problems(document) == [], document["kind"]
    kinds = [d["kind"] for d in documents]
    if path.endswith("controller-init.yaml"):
        assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration"]
    else:
        assert kinds == ["JoinConfiguration"]


def test_init_configuration_carries_endpoint_sans_and_networks() -> None:
    init, cluster, _ = kubeadm_documents("production", "cloud-init/controller-init.yaml")
    assert cluster["controlPlaneEndpoint"] == "203.0.113.10:6443"
    assert "203.0.113.10" in cluster["apiServer"]["certSANs"]
    assert cluster["networking"] == {"podSubnet": "10.244.0.0/16",
                                     "serviceSubnet": "10.96.0.0/12",
                                     "dnsDomain": "cluster.local"}
    assert cluster["kubernetesVersion"] == "v1.36.2"
    assert init["localAPIEndpoint"]["advertiseAddress"] == "10.10.0.5"
    args = {a["name"]: a["value"] for a in init["nodeRegistration"]["kubeletExtraArgs"]}
    assert args["node-ip"] == "10.10.0.5"
    assert args["provider-id"] == "digitalocean://424242"


def test_joins_pin_the_ca_and_controllers_carry_the_certificate_key() -> None:
    (join,) = kubeadm_documents("production", "cloud-init/controller-join.yaml")
    assert join["discovery"]["bootstrapToken"]["caCertHashes"][0].startswith("sha256:")
    assert len(join["controlPlane"]["certificateKey"]) == 64
    (worker,) = kubeadm_documents("production", "cloud-init/worker-general.yaml")
    assert "controlPlane" not in worker
    args = {a["name"]: a["value"] for a in worker["nodeRegistration"]["kubeletExtraArgs"]}
    assert args["node-labels"] == "tier=general"


def test_schema_rejects_a_misspelt_field_in_our_output() -> None:
    """The oracle bites on our own document, not only on hand-made ones."""
    (join,) = kubeadm_documents("production", "cloud-init/worker-general.yaml")
    join["discovery"]["bootstrapToken"]["apiServerEndPoint"] = join["discovery"][
        "bootstrapToken"].pop("apiServerEndpoint")
    assert problems(join)


def test_kubelets_request_serving_certificates_from_the_cluster_ca() -> None:
    """kubeadm documentation, "Certificate Management with kubeadm", section "Enabling
    signed kubelet serving certificates": ``serverTLSBootstrap: true`` in the
    KubeletConfiguration given to ``kubeadm init`` (kubeadm stores it in the
    kubelet-config ConfigMap every joining node reads) makes each kubelet request its
    serving certificate through a kubernetes.io/kubelet-serving CSR, which the
    controller manager signs with the cluster CA once approved; approving is left to
    the cluster (provision's approver, provisioner/agents/csr_approver.py)."""
    for example in ("production", "staging"):
        *_, kubelet = kubeadm_documents(example, "cloud-init/controller-init.yaml")
        assert kubelet["kind"] == "KubeletConfiguration"
        assert kubelet["serverTLSBootstrap"] is True
        assert kubelet["rotateCertificates"] is True
