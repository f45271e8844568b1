"""What kubeadm and the controllers around its credentials do, for the simulated world.

The world (tests/e2e/world.py) plays each droplet's cloud-init from the user-data the fake
cloud keeps (its metadata service's copy): the kubeadm configuration provision rendered, with
Terraform's late values spliced in. Written from kubernetes/kubernetes at the versions
tests/unit/test_join_credentials.py cites (release-1.36; these behaviours are unchanged since
1.15), independently of provision's own code (provisioner/bootstrap/join_credentials.py):

* ``kubeadm init --upload-certs``: the bootstraptoken phase creates every ``bootstrapTokens``
  entry of the InitConfiguration as the Secret ``kube-system/bootstrap-token-<id>`` with
  ``expiration`` = now + ``ttl`` (cmd/kubeadm/app/phases/bootstraptoken/node/token.go
  UpdateOrCreateTokens; apis/bootstraptoken/v1/utils.go encodeTokenSecretData); the
  upload-certs phase stores the control-plane certificates it finds in /etc/kubernetes/pki
  in ``kube-system/kubeadm-certs``, each AES-GCM sealed under ``certificateKey`` (nonce
  first), owned by a token Secret whose ttl is two hours (phases/copycerts/copycerts.go
  UploadCerts, createShortLivedBootstrapToken, constants.DefaultCertTokenDuration;
  util/crypto/crypto.go EncryptBytes).
* ``kubeadm join``: token discovery needs the cluster-info signature the bootstrap signer
  makes only for unexpired tokens with ``usage-bootstrap-signing``
  (pkg/controller/bootstrap/bootstrapsigner.go); the TLS bootstrap authenticates with the
  token, which the API server accepts only if its Secret exists, ``token-secret`` matches,
  it is not expired and has ``usage-bootstrap-authentication``
  (plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go). A join with ``controlPlane``
  first downloads ``kubeadm-certs`` and decrypts every entry with its ``certificateKey``
  (copycerts.go DownloadCerts): no Secret, or a key that does not open it, fails the join.
  provision's bootstrap script retries a failed join (templates/scripts/bootstrap.sh.j2).
  Before the TLS bootstrap, ``kubeadm join`` refuses when a Node of its name exists and is
  Ready: "a Node with name %q and status "Ready" already exists in the cluster. You must
  delete the existing Node or change the name of this new joining Node"
  (cmd/kubeadm/app/cmd/phases/join/kubelet.go, runKubeletStartJoinPhase): `ready_node`.
* ``kubeadm init`` on a node whose etcd data dir was restored from a snapshot: its phases
  write through the API server, which serves what etcd holds, so every object of the
  snapshot stays; the bootstraptoken phase creates or updates its token Secret
  (UpdateOrCreateTokens). provision's bootstrap script runs it with
  ``--skip-phases=upload-certs`` and, once it has deleted the snapshot's stale
  control-plane Nodes, ``kubeadm init phase upload-certs``, which creates or updates
  kubeadm-certs (apiclient.CreateOrUpdateSecret): `init` with ``upload_certs=False``,
  then `upload_certs`.
* The token cleaner, which kubeadm turns on in kube-controller-manager
  (``--controllers=*,bootstrapsigner,tokencleaner``: cmd/kubeadm/app/phases/controlplane/
  manifests.go), deletes token Secrets once expired (pkg/controller/bootstrap/tokencleaner.go
  evalSecret; expired means the expiration is before now: cluster-bootstrap's
  secret/util GetExpiration); the garbage collector then deletes ``kubeadm-certs``, which
  the 2 h token owns.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

NAMESPACE = "kube-system"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
CERTS = "kubeadm-certs"
CONTROL_PLANE_LABEL = "node-role.kubernetes.io/control-plane"
CERT_TOKEN_TTL = dt.timedelta(hours=2)
KUBEADM_CONFIG = "/etc/provision/kubeadm.yaml"
RESTORE_ENV = "/etc/provision/restore.env"  # provision's own (templates/cloud-init/node.yaml.j2)
PKI = "/etc/kubernetes/pki/"
# copycerts.go certsToTransfer (local etcd), as the Secret's keys ("/" written as "-").
UPLOADED = ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
            "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key")
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(h|m|s)")


@dataclass(frozen=True)
class NodeConfig:
    """The kubeadm side of one droplet's user-data."""

    init: bool
    token: str
    token_ttl: dt.timedelta | None  # init only
    certificate_key: str | None
    control_plane: bool
    pki: dict[str, bytes] = field(default_factory=dict)  # files written to /etc/kubernetes/pki
    # /etc/provision/restore.env (controller-init only): RESTORE_URL, RESTORE_KEY,
    # RESTORE_SHA256; the URL is empty unless `provision restore` made the droplet.
    restore: dict[str, str] = field(default_factory=dict)


def go_duration(text: str) -> dt.timedelta:
    """Go's time.ParseDuration for the h/m/s forms kubeadm configurations use ("4h0m0s")."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"not a Go duration: {text!r}")
    return dt.timedelta(seconds=sum(float(n) * units[u] for n, u in parts))


def read_user_data(text: str | None) -> NodeConfig | None:
    """The kubeadm configuration cloud-init writes from ``text`` (None: there is none)."""
    if not text:
        return None
    doc = yaml.safe_load(text) or {}
    files = {f.get("path"): f for f in doc.get("write_files") or []}
    config = files.get(KUBEADM_CONFIG)
    if config is None:
        return None
    pki = {path[len(PKI):]: base64.b64decode(f.get("content") or "")
           for path, f in files.items()
           if isinstance(path, str) and path.startswith(PKI) and f.get("encoding") == "b64"}
    restore_file = files.get(RESTORE_ENV) or {}
    restore = dict(line.partition("=")[::2] for line in
                   str(restore_file.get("content") or "").splitlines() if "=" in line)
    for part in yaml.safe_load_all(config["content"]):
        if not isinstance(part, dict):
            continue
        if part.get("kind") == "InitConfiguration":
            token = part["bootstrapTokens"][0]
            return NodeConfig(True, str(token["token"]), go_duration(str(token["ttl"])),
                              part.get("certificateKey"), True, pki,
                              {k.strip(): v.strip() for k, v in restore.items()})
        if part.get("kind") == "JoinConfiguration":
            plane = part.get("controlPlane")
            return NodeConfig(False, str(part["discovery"]["bootstrapToken"]["token"]), None,
                              (plane or {}).get("certificateKey"), plane is not None, pki)
    return None


def _rfc3339(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _token_secret(token: str, expires: dt.datetime, extra: dict[str, str]) -> dict[str, Any]:
    token_id, secret = token.split(".")
    data = {"token-id": token_id, "token-secret": secret, "expiration": _rfc3339(expires),
            **extra}
    return {"apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": NAMESPACE},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


def init(kube: Any, config: NodeConfig, now: dt.datetime, upload_certs: bool = True
         ) -> None:
    """``kubeadm init --upload-certs`` on the API server ``kube`` (a FakeKubeAPI); with
    ``upload_certs`` false, ``kubeadm init --skip-phases=upload-certs``."""
    assert config.token_ttl is not None and config.certificate_key
    _create_or_update(kube, _token_secret(config.token, now + config.token_ttl, {
        "description": "provision bootstrap token", "usage-bootstrap-signing": "true",
        "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}))
    if upload_certs:
        upload(kube, config, now)


def upload(kube: Any, config: NodeConfig, now: dt.datetime) -> None:
    """``kubeadm init phase upload-certs --upload-certs``: kubeadm-certs sealed under the
    configuration's certificateKey, owned by a new 2 h token."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    assert config.certificate_key
    owner_token = f"{os.urandom(3).hex()}.{os.urandom(8).hex()}"
    owner = kube.create(_token_secret(owner_token, now + CERT_TOKEN_TTL, {
        "description": "Proxy for managing TTL for the kubeadm-certs secret"}), "kubeadm")
    aes = AESGCM(bytes.fromhex(config.certificate_key))
    data = {}
    for name in UPLOADED:
        nonce = os.urandom(12)
        sealed = nonce + aes.encrypt(nonce, config.pki[name], None)
        data[name.replace("/", "-")] = base64.b64encode(sealed).decode()
    _create_or_update(kube, {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": CERTS, "namespace": NAMESPACE, "ownerReferences": [{
            "apiVersion": "v1", "kind": "Secret", "name": owner["metadata"]["name"],
            "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}]},
        "data": data})


def _create_or_update(kube: Any, obj: dict[str, Any]) -> None:
    """Create, or replace the one of that name (a restored etcd may hold it)."""
    from tests.fakes.kubeapi import catalog

    rt = catalog.get(obj["apiVersion"], obj["kind"])
    with kube.store.lock:
        old = kube.get(obj["apiVersion"], obj["kind"], obj["metadata"]["name"], NAMESPACE)
        if old is None:
            kube.create(obj, "kubeadm")
        else:
            kube.registry.commit(rt, old, {**obj, "metadata": {
                **obj["metadata"], "uid": old["metadata"]["uid"],
                "resourceVersion": old["metadata"]["resourceVersion"]}}, "kubeadm")


def ready_node(kube: Any, name: str) -> str | None:
    """Why `kubeadm join` of a node named ``name`` stops: a Ready Node of that name."""
    node = kube.get("v1", "Node", name)
    conditions = ((node or {}).get("status") or {}).get("conditions") or []
    if any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions):
        return (f'a Node with name "{name}" and status "Ready" already exists in the '
                "cluster. You must delete the existing Node or change the name of this new "
                "joining Node")
    return None


def _decoded(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _expired(data: dict[str, str], now: dt.datetime) -> bool:
    text = data.get("expiration")
    if not text:
        return False
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) < now


def clean_tokens(kube: Any, now: dt.datetime) -> list[str]:
    """The token cleaner: delete the token Secrets expired at ``now`` (their dependents,
    kubeadm-certs, follow through the garbage collector). Returns the names deleted."""
    from tests.fakes.kubeapi import catalog

    secrets = catalog.get("v1", "Secret")
    gone = []
    for secret in kube.objects("v1", "Secret", NAMESPACE):
        if secret.get("type") == TOKEN_TYPE and _expired(_decoded(secret), now):
            name = secret["metadata"]["name"]
            kube.registry.delete(secrets, NAMESPACE, name)
            gone.append(name)
    return gone


def join_refusal(kube: Any, config: NodeConfig, now: dt.datetime) -> str | None:
    """Why ``kubeadm join`` with ``config`` fails at ``now`` (None: it succeeds)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    token_id, _, secret_part = config.token.partition(".")
    secret = kube.get("v1", "Secret", f"bootstrap-token-{token_id}", NAMESPACE)
    if secret is None or secret.get("type") != TOKEN_TYPE:
        return f"bootstrap token {token_id} is not in the cluster"
    data = _decoded(secret)
    if data.get("token-secret") != secret_part:
        return f"bootstrap token {token_id}: wrong secret"
    if _expired(data, now):
        return f"bootstrap token {token_id} expired at {data['expiration']}"
    for usage in ("signing", "authentication"):
        if data.get(f"usage-bootstrap-{usage}") != "true":
            return f"bootstrap token {token_id} is not for {usage}"
    if not config.control_plane:
        return None
    certs = kube.get("v1", "Secret", CERTS, NAMESPACE)
    if certs is None:
        return "kubeadm-certs is not in the cluster (expired or never uploaded)"
    try:
        aes = AESGCM(bytes.fromhex(config.certificate_key or ""))
        for blob in (certs.get("data") or {}).values():
            raw = base64.b64decode(blob)
            aes.decrypt(raw[:12], raw[12:], None)
    except (InvalidTag, ValueError):
        return "kubeadm-certs does not open with this node's certificate key"
    return None
