"""Contract tests for tests/data/kubeadm-v1beta4.schema.json.

The schema is hand-written from "kubeadm Configuration (v1beta4)"
(https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/). These tests prove it
accepts the documented example configurations and realistic documents, and that it is strict:
misspelt fields, v1beta3-style maps and malformed values are rejected.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

SCHEMA_PATH = Path(__file__).parent.parent / "data" / "kubeadm-v1beta4.schema.json"

# Open on purpose (documented in the schema); everything else must be strict.
OPEN_DEFS = {"KubeletConfiguration", "KubeProxyConfiguration"}

TOKEN = "abcdef.0123456789abcdef"
CA_HASH = "sha256:" + "0f" * 32
CERT_KEY = "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204"


@cache
def schema() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return loaded


@cache
def validator() -> Draft202012Validator:
    return Draft202012Validator(schema())


def _walk(errors: Iterator[ValidationError]) -> Iterator[ValidationError]:
    for err in errors:
        yield err
        yield from _walk(iter(err.context or []))


def failures(doc: Any) -> list[ValidationError]:
    """All errors, including the ones nested in oneOf/anyOf contexts."""
    return list(_walk(validator().iter_errors(doc)))


def assert_valid(doc: Any) -> None:
    errors = sorted(validator().iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
    )


def assert_rejected(doc: Any, path: tuple[Any, ...], validator_kw: str, text: str = "") -> None:
    """The document fails, and fails for the expected reason at the expected place."""
    errors = failures(doc)
    assert errors, "document unexpectedly validated"
    hits = [
        e
        for e in errors
        if tuple(e.absolute_path) == path and e.validator == validator_kw and text in e.message
    ]
    assert hits, "expected {} at {} ({!r}); got:\n{}".format(
        validator_kw,
        "/".join(map(str, path)) or "<root>",
        text,
        "\n".join(
            f"  {'/'.join(map(str, e.absolute_path)) or '<root>'} [{e.validator}] {e.message}"
            for e in errors
        ),
    )


def docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d is not None]


# --------------------------------------------------------------------------- documented examples
# Transcribed from the "fully populated example" and the "Kubeadm join configuration types"
# example on the kubeadm Configuration (v1beta4) reference page.
REFERENCE_INIT_EXAMPLE = """
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "9a08jv.c0izixklcxtmnze7"
  description: "kubeadm bootstrap token"
  ttl: "24h"
- token: "783bde.3f89s0fje9f38fhf"
  description: "another bootstrap token"
  usages:
  - authentication
  - signing
  groups:
  - system:bootstrappers:kubeadm:default-node-token
nodeRegistration:
  name: "ec2-10-100-0-1"
  criSocket: "unix:///var/run/containerd/containerd.sock"
  taints:
  - key: "kubeadmNode"
    value: "someValue"
    effect: "NoSchedule"
  kubeletExtraArgs:
  - name: "v"
    value: "5"
  ignorePreflightErrors:
  - IsPrivilegedUser
  imagePullPolicy: "IfNotPresent"
  imagePullSerial: true
localAPIEndpoint:
  advertiseAddress: "10.100.0.1"
  bindPort: 6443
certificateKey: "e6a2eb8581237ab72a4f494f30285ec12a9694d750b9785706a83bfcbbbd2204"
skipPhases:
- preflight
timeouts:
  controlPlaneComponentHealthCheck: "60s"
  kubernetesAPICall: "40s"
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
etcd:
  # one of local or external
  local:
    imageRepository: "registry.k8s.io"
    imageTag: "3.2.24"
    dataDir: "/var/lib/etcd"
    extraArgs:
    - name: "listen-client-urls"
      value: "http://10.100.0.1:2379"
    extraEnvs:
    - name: "SOME_VAR"
      value: "SOME_VALUE"
    serverCertSANs:
    - "ec2-10-100-0-1.compute-1.amazonaws.com"
    peerCertSANs:
    - "10.100.0.1"
networking:
  serviceSubnet: "10.96.0.0/16"
  podSubnet: "10.244.0.0/24"
  dnsDomain: "cluster.local"
kubernetesVersion: "v1.21.0"
controlPlaneEndpoint: "10.100.0.1:6443"
apiServer:
  extraArgs:
  - name: "authorization-mode"
    value: "Node,RBAC"
  extraEnvs:
  - name: "SOME_VAR"
    value: "SOME_VALUE"
  extraVolumes:
  - name: "some-volume"
    hostPath: "/etc/some-path"
    mountPath: "/etc/some-pod-path"
    readOnly: false
    pathType: File
  certSANs:
  - "10.100.1.1"
  - "ec2-10-100-0-1.compute-1.amazonaws.com"
controllerManager:
  extraArgs:
  - name: "node-cidr-mask-size"
    value: "20"
  extraVolumes:
  - name: "some-volume"
    hostPath: "/etc/some-path"
    mountPath: "/etc/some-pod-path"
    readOnly: false
    pathType: File
scheduler:
  extraArgs:
  - name: "address"
    value: "10.100.0.1"
  extraVolumes:
  - name: "some-volume"
    hostPath: "/etc/some-path"
    mountPath: "/etc/some-pod-path"
    readOnly: false
    pathType: File
certificatesDir: "/etc/kubernetes/pki"
imageRepository: "registry.k8s.io"
clusterName: "example-cluster"
encryptionAlgorithm: "ECDSA-P256"
dns:
  disabled: true # disable CoreDNS
proxy:
  disabled: true # disable kube-proxy
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# kubelet specific options here
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
# kube-proxy specific options here
"""

REFERENCE_JOIN_EXAMPLE = """
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: some-address:6443
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: true
  tlsBootstrapToken: abcdef.0123456789abcdef
"""

# --------------------------------------------------------------------------- realistic documents
# What an HA-cluster renderer would emit: first control plane, a joining control plane, a worker.
HA_INIT = f"""
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- token: "{TOKEN}"
  ttl: "2h0m0s"
  usages: [signing, authentication]
  groups: [system:bootstrappers:kubeadm:default-node-token]
certificateKey: "{CERT_KEY}"
localAPIEndpoint:
  advertiseAddress: 10.110.0.2
  bindPort: 6443
nodeRegistration:
  name: cp-1
  criSocket: unix:///run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  taints:
  - key: node-role.kubernetes.io/control-plane
    effect: NoSchedule
  kubeletExtraArgs:
  - name: node-ip
    value: 10.110.0.2
  - name: cloud-provider
    value: external
skipPhases: [addon/kube-proxy]
patches:
  directory: /etc/kubernetes/patches
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 1m0s
  etcdAPICall: 2m0s
  tlsBootstrap: 5m0s
  discovery: 5m0s
  upgradeManifests: 5m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
clusterName: prod
kubernetesVersion: v1.33.2
controlPlaneEndpoint: api.prod.example.com:6443
certificateValidityPeriod: 8760h0m0s
caCertificateValidityPeriod: 87600h0m0s
encryptionAlgorithm: RSA-3072
networking:
  podSubnet: 10.244.0.0/16,fd00:10:244::/56
  serviceSubnet: 10.96.0.0/12,fd00:10:96::/112
  dnsDomain: cluster.local
apiServer:
  certSANs: [api.prod.example.com, 203.0.113.10, 10.110.0.2]
  extraArgs:
  - name: audit-log-path
    value: /var/log/kubernetes/audit.log
  - name: enable-admission-plugins
    value: NodeRestriction
controllerManager:
  extraArgs:
  - name: bind-address
    value: 0.0.0.0
scheduler:
  extraArgs:
  - name: bind-address
    value: 0.0.0.0
etcd:
  local:
    dataDir: /var/lib/etcd
    extraArgs:
    - name: listen-metrics-urls
      value: http://0.0.0.0:2381
featureGates:
  ControlPlaneKubeletLocalMode: true
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
serverTLSBootstrap: true
shutdownGracePeriod: 30s
shutdownGracePeriodCriticalPods: 10s
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
"""

HA_JOIN_CONTROL_PLANE = f"""
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: api.prod.example.com:6443
    token: {TOKEN}
    caCertHashes:
    - {CA_HASH}
controlPlane:
  certificateKey: {CERT_KEY}
  localAPIEndpoint:
    advertiseAddress: 10.110.0.3
    bindPort: 6443
nodeRegistration:
  name: cp-2
  kubeletExtraArgs:
  - name: node-ip
    value: 10.110.0.3
timeouts:
  discovery: 10m0s
"""

WORKER_JOIN_FILE_DISCOVERY = f"""
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
caCertPath: /etc/kubernetes/pki/ca.crt
discovery:
  file:
    kubeConfigPath: /etc/kubernetes/discovery.conf
  tlsBootstrapToken: {TOKEN}
nodeRegistration:
  name: worker-1
  taints: []
  kubeletExtraArgs:
  - name: node-ip
    value: "fd00:10:110::4"
"""

# Modelled on the shape of `kubeadm config print init-defaults` / `join-defaults` for v1beta4:
# empty component structs, "taints: null" and fully spelled-out durations.
PRINT_DEFAULTS_SHAPE = """
apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
bootstrapTokens:
- groups:
  - system:bootstrappers:kubeadm:default-node-token
  token: abcdef.0123456789abcdef
  ttl: 24h0m0s
  usages:
  - signing
  - authentication
localAPIEndpoint:
  advertiseAddress: 1.2.3.4
  bindPort: 6443
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
  name: node
  taints: null
timeouts:
  controlPlaneComponentHealthCheck: 4m0s
  discovery: 5m0s
  etcdAPICall: 2m0s
  kubeletHealthCheck: 4m0s
  kubernetesAPICall: 1m0s
  tlsBootstrap: 5m0s
  upgradeManifests: 5m0s
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
apiServer: {}
caCertificateValidityPeriod: 87600h0m0s
certificateValidityPeriod: 8760h0m0s
certificatesDir: /etc/kubernetes/pki
clusterName: kubernetes
controllerManager: {}
dns: {}
encryptionAlgorithm: RSA-2048
etcd:
  local:
    dataDir: /var/lib/etcd
imageRepository: registry.k8s.io
kubernetesVersion: 1.33.0
networking:
  dnsDomain: cluster.local
  serviceSubnet: 10.96.0.0/12
proxy: {}
scheduler: {}
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: JoinConfiguration
caCertPath: /etc/kubernetes/pki/ca.crt
discovery:
  bootstrapToken:
    apiServerEndpoint: kube-apiserver:6443
    token: abcdef.0123456789abcdef
    unsafeSkipCAVerification: true
  tlsBootstrapToken: abcdef.0123456789abcdef
nodeRegistration:
  criSocket: unix:///var/run/containerd/containerd.sock
  imagePullPolicy: IfNotPresent
  imagePullSerial: true
  name: node
  taints: null
timeouts:
  discovery: 5m0s
"""


def _one(text: str, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in docs(text) if d["kind"] == kind]
    return copy.deepcopy(doc)


# --------------------------------------------------------------------------- schema hygiene
def test_schema_is_a_valid_draft_2020_12_schema() -> None:
    Draft202012Validator.check_schema(schema())
    assert schema()["$schema"] == "https://json-schema.org/draft/2020-12/schema"


def test_every_kubeadm_object_is_strict() -> None:
    """additionalProperties: false on every object with properties, except the two open ones."""
    loose: list[str] = []

    def visit(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if where.split("/")[2:3] and where.split("/")[2] in OPEN_DEFS:
                return
            is_object = node.get("type") == "object" and "properties" in node
            if is_object and node.get("additionalProperties") is not False:
                loose.append(where)
            for key, value in node.items():
                visit(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                visit(value, f"{where}/{i}")

    visit(schema()["$defs"], "#/$defs")
    assert not loose, f"objects without additionalProperties: false: {loose}"
    for name in OPEN_DEFS:
        assert "additionalProperties allowed" in schema()["$defs"][name]["description"]


def test_every_definition_names_its_reference_section() -> None:
    for name, definition in schema()["$defs"].items():
        assert "Reference:" in definition["description"], name


def test_api_version_and_kind_are_required() -> None:
    assert_rejected({"kind": "InitConfiguration"}, (), "required", "'apiVersion'")
    assert_rejected({"apiVersion": "kubeadm.k8s.io/v1beta4"}, (), "required", "'kind'")
    for name in ("InitConfiguration", "ClusterConfiguration", "JoinConfiguration"):
        assert {"apiVersion", "kind"} <= set(schema()["$defs"][name]["required"])


# --------------------------------------------------------------------------- positives
@pytest.mark.parametrize(
    "text",
    [REFERENCE_INIT_EXAMPLE, REFERENCE_JOIN_EXAMPLE],
    ids=["reference-init-multidoc", "reference-join"],
)
def test_reference_examples_validate(text: str) -> None:
    parsed = docs(text)
    assert parsed
    for doc in parsed:
        assert_valid(doc)


@pytest.mark.parametrize(
    "text",
    [HA_INIT, HA_JOIN_CONTROL_PLANE, WORKER_JOIN_FILE_DISCOVERY, PRINT_DEFAULTS_SHAPE],
    ids=["ha-init-multidoc", "join-control-plane", "join-worker-file-discovery", "defaults-shape"],
)
def test_realistic_documents_validate(text: str) -> None:
    for doc in docs(text):
        assert_valid(doc)


def test_minimal_documents_validate() -> None:
    assert_valid({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "InitConfiguration"})
    assert_valid({"apiVersion": "kubeadm.k8s.io/v1beta4", "kind": "ClusterConfiguration"})


def test_external_etcd_validates() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["etcd"] = {
        "external": {
            "endpoints": ["https://10.0.0.10:2379", "https://10.0.0.11:2379"],
            "caFile": "/etc/kubernetes/pki/etcd/ca.crt",
            "certFile": "/etc/kubernetes/pki/apiserver-etcd-client.crt",
            "keyFile": "/etc/kubernetes/pki/apiserver-etcd-client.key",
        }
    }
    assert_valid(doc)


def test_reset_and_upgrade_configurations_validate() -> None:
    assert_valid(
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "ResetConfiguration",
            "force": True,
            "cleanupTmpDir": True,
            "unmountFlags": ["MNT_DETACH"],
        }
    )
    assert_valid(
        {
            "apiVersion": "kubeadm.k8s.io/v1beta4",
            "kind": "UpgradeConfiguration",
            "apply": {"kubernetesVersion": "v1.34.0", "forceUpgrade": True, "etcdUpgrade": True},
            "node": {"certificateRenewal": True},
            "timeouts": {"upgradeManifests": "10m"},
        }
    )


def test_kubelet_configuration_is_open_but_typed() -> None:
    doc = _one(HA_INIT, "KubeletConfiguration")
    doc["someFieldAddedInAFutureRelease"] = {"x": 1}
    assert_valid(doc)
    doc["cgroupDriver"] = "systemd-ish"
    assert_rejected(doc, ("cgroupDriver",), "enum")


# --------------------------------------------------------------------------- negatives
def test_misspelt_control_plane_endpoint_is_rejected() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["controlPlaneEndPoint"] = doc.pop("controlPlaneEndpoint")
    assert_rejected(doc, (), "additionalProperties", "controlPlaneEndPoint")


def test_misspelt_nested_field_is_rejected() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    doc["discovery"]["bootstrapToken"]["caCertHash"] = doc["discovery"]["bootstrapToken"].pop(
        "caCertHashes"
    )
    assert_rejected(doc, ("discovery", "bootstrapToken"), "additionalProperties", "caCertHash")


def test_v1beta3_style_extra_args_map_is_rejected() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["apiServer"]["extraArgs"] = {"authorization-mode": "Node,RBAC"}
    assert_rejected(doc, ("apiServer", "extraArgs"), "type", "'array'")


def test_v1beta3_style_kubelet_extra_args_map_is_rejected() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["nodeRegistration"]["kubeletExtraArgs"] = {"node-ip": "10.110.0.2"}
    assert_rejected(doc, ("nodeRegistration", "kubeletExtraArgs"), "type", "'array'")


def test_extra_arg_value_must_be_a_string() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["controllerManager"]["extraArgs"] = [{"name": "node-cidr-mask-size", "value": 24}]
    assert_rejected(doc, ("controllerManager", "extraArgs", 0, "value"), "type", "'string'")


def test_extra_arg_name_must_not_carry_dashes() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["nodeRegistration"]["kubeletExtraArgs"] = [{"name": "--node-ip", "value": "10.0.0.1"}]
    assert_rejected(doc, ("nodeRegistration", "kubeletExtraArgs", 0, "name"), "pattern")


def test_bad_taint_effect_is_rejected() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["nodeRegistration"]["taints"][0]["effect"] = "NoScheduled"
    assert_rejected(doc, ("nodeRegistration", "taints", 0, "effect"), "enum")


def test_taint_without_effect_is_rejected() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    del doc["nodeRegistration"]["taints"][0]["effect"]
    assert_rejected(doc, ("nodeRegistration", "taints", 0), "required", "'effect'")


@pytest.mark.parametrize(
    "token",
    [
        "abcdef0123456789abcdef",
        "ABCDEF.0123456789abcdef",
        "abcde.0123456789abcdef",
        "abcdef.012345",
    ],
    ids=["no-dot", "upper-case", "short-id", "short-secret"],
)
def test_bad_bootstrap_token_format_is_rejected(token: str) -> None:
    init = _one(HA_INIT, "InitConfiguration")
    init["bootstrapTokens"][0]["token"] = token
    assert_rejected(init, ("bootstrapTokens", 0, "token"), "pattern")

    join = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    join["discovery"]["bootstrapToken"]["token"] = token
    assert_rejected(join, ("discovery", "bootstrapToken", "token"), "pattern")


def test_bad_ca_cert_hash_is_rejected() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    doc["discovery"]["bootstrapToken"]["caCertHashes"] = ["md5:0123"]
    assert_rejected(doc, ("discovery", "bootstrapToken", "caCertHashes", 0), "pattern")


def test_bad_certificate_key_is_rejected() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    doc["controlPlane"]["certificateKey"] = CERT_KEY[:-2]
    assert_rejected(doc, ("controlPlane", "certificateKey"), "pattern")


def test_token_discovery_needs_ca_pinning_or_explicit_skip() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    del doc["discovery"]["bootstrapToken"]["caCertHashes"]
    assert_rejected(doc, ("discovery", "bootstrapToken"), "anyOf")


def test_token_discovery_needs_host_and_port() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    doc["discovery"]["bootstrapToken"]["apiServerEndpoint"] = "api.prod.example.com"
    assert_rejected(doc, ("discovery", "bootstrapToken", "apiServerEndpoint"), "pattern")


def test_discovery_is_required_and_exclusive() -> None:
    doc = _one(HA_JOIN_CONTROL_PLANE, "JoinConfiguration")
    no_discovery = copy.deepcopy(doc)
    del no_discovery["discovery"]
    assert_rejected(no_discovery, (), "required", "'discovery'")

    both = copy.deepcopy(doc)
    both["discovery"]["file"] = {"kubeConfigPath": "/etc/kubernetes/discovery.conf"}
    assert_rejected(both, ("discovery",), "oneOf")


def test_local_and_external_etcd_are_exclusive() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["etcd"]["external"] = {"endpoints": ["https://10.0.0.10:2379"]}
    assert_rejected(doc, ("etcd",), "not")


@pytest.mark.parametrize(
    ("where", "field"),
    [
        (("apiServer",), "timeoutForControlPlane"),
        (("discovery",), "timeout"),
    ],
    ids=["apiServer.timeoutForControlPlane", "discovery.timeout"],
)
def test_v1beta3_timeout_fields_are_rejected(where: tuple[str, ...], field: str) -> None:
    kind = "ClusterConfiguration" if where == ("apiServer",) else "JoinConfiguration"
    doc = _one(HA_INIT if kind == "ClusterConfiguration" else HA_JOIN_CONTROL_PLANE, kind)
    target = doc
    for key in where:
        target = target[key]
    target[field] = "4m0s"
    assert_rejected(doc, where, "additionalProperties", field)


def test_unknown_timeout_field_and_bad_duration_are_rejected() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["timeouts"]["controlPlaneHealthCheck"] = "4m"
    assert_rejected(doc, ("timeouts",), "additionalProperties", "controlPlaneHealthCheck")

    doc = _one(HA_INIT, "InitConfiguration")
    doc["timeouts"]["kubeletHealthCheck"] = "four minutes"
    assert_rejected(doc, ("timeouts", "kubeletHealthCheck"), "pattern")


def test_bad_encryption_algorithm_is_rejected() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["encryptionAlgorithm"] = "ECDSA"
    assert_rejected(doc, ("encryptionAlgorithm",), "enum")


def test_ttl_and_expires_are_exclusive() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["bootstrapTokens"][0]["expires"] = "2030-01-02T15:04:05Z"
    assert_rejected(doc, ("bootstrapTokens", 0), "not")


def test_bad_subnet_and_endpoint_are_rejected() -> None:
    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["networking"]["podSubnet"] = "10.244.0.0"
    assert_rejected(doc, ("networking", "podSubnet"), "pattern")

    doc = _one(HA_INIT, "ClusterConfiguration")
    doc["controlPlaneEndpoint"] = "https://api.prod.example.com:6443"
    assert_rejected(doc, ("controlPlaneEndpoint",), "pattern")


def test_wrong_api_version_and_unknown_kind_are_rejected() -> None:
    doc = _one(HA_INIT, "InitConfiguration")
    doc["apiVersion"] = "kubeadm.k8s.io/v1beta3"
    assert_rejected(doc, ("apiVersion",), "enum")

    doc = _one(HA_INIT, "InitConfiguration")
    doc["kind"] = "MasterConfiguration"
    assert_rejected(doc, ("kind",), "enum")

    kubelet_with_kubeadm_version = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "KubeletConfiguration",
    }
    assert_rejected(kubelet_with_kubeadm_version, ("apiVersion",), "const")
