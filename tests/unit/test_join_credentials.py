"""Fresh join credentials in exactly the formats kubeadm reads and writes.

Facts (kubernetes/kubernetes, read at the stored versions of these files, formats unchanged
since 1.15 through release-1.36):
- staging/src/k8s.io/cluster-bootstrap/token/api/types.go: a token Secret is named
  ``bootstrap-token-<id>``, type ``bootstrap.kubernetes.io/token``, data keys ``token-id``,
  ``token-secret``, ``expiration`` (RFC 3339), ``description``, ``auth-extra-groups``
  (comma-separated) and ``usage-bootstrap-<usage>`` = "true";
- cmd/kubeadm/app/apis/bootstraptoken/v1/utils.go (encodeTokenSecretData): expiration is
  now + TTL in UTC, time.RFC3339;
- cmd/kubeadm/app/phases/copycerts/copycerts.go: ``kubeadm-certs`` in kube-system, one entry
  per file of certsToTransfer with "/" replaced by "-", owned (NewControllerRef) by a token
  Secret whose description is "Proxy for managing TTL for the kubeadm-certs secret" and TTL
  DefaultCertTokenDuration (2 h), with no usages or groups;
- cmd/kubeadm/app/util/crypto/crypto.go: EncryptBytes = nonce (GCM's 12 bytes) followed by
  gcm.Seal(data), AES under the hex-decoded key, no associated data.
"""

from __future__ import annotations

import base64
import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provisioner.bootstrap import join_credentials as jc
from provisioner.bootstrap.pki import make_secrets, read_secrets
from provisioner.kube import Kube, client_for
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import clock
from tests.support.secrets_folder import prepared_with_secrets

NOW = dt.datetime(2026, 3, 7, 3, 0, 12, tzinfo=dt.UTC)
KUBEADM_CERT_NAMES = {"ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
                      "front-proxy-ca.key", "etcd-ca.crt", "etcd-ca.key"}


def _decrypt(blob: bytes, key_hex: str) -> bytes:
    """kubeadm's DecryptBytes, written with the low-level cipher API (not AESGCM)."""
    nonce, sealed = blob[:12], blob[12:]
    decryptor = Cipher(algorithms.AES(bytes.fromhex(key_hex)),
                       modes.GCM(nonce, sealed[-16:])).decryptor()
    return decryptor.update(sealed[:-16]) + decryptor.finalize()


def _data(secret: dict[str, object]) -> dict[str, str]:
    data = secret["data"]
    assert isinstance(data, dict)
    return {k: base64.b64decode(v).decode() for k, v in data.items()}


def test_node_token_secret_is_kubeadms() -> None:
    secret = jc.token_secret("abcdef.0123456789abcdef", jc.TOKEN_TTL, NOW, jc.NODE_DESCRIPTION,
                             jc.NODE_USAGES, (jc.NODE_GROUP,))
    assert secret["type"] == "bootstrap.kubernetes.io/token"
    assert secret["metadata"] == {"name": "bootstrap-token-abcdef", "namespace": "kube-system"}
    assert _data(secret) == {
        "token-id": "abcdef", "token-secret": "0123456789abcdef",
        "description": "provision bootstrap token", "expiration": "2026-03-07T07:00:12Z",
        "usage-bootstrap-signing": "true", "usage-bootstrap-authentication": "true",
        "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token"}


def test_certificate_owner_token_has_no_usage() -> None:
    secret = jc.token_secret("zyxwvu.0123456789abcdef", jc.CERT_TOKEN_TTL, NOW,
                             jc.CERT_TOKEN_DESCRIPTION)
    assert _data(secret) == {
        "token-id": "zyxwvu", "token-secret": "0123456789abcdef",
        "description": "Proxy for managing TTL for the kubeadm-certs secret",
        "expiration": "2026-03-07T05:00:12Z"}


def test_kubeadm_certs_decrypt_with_an_independent_implementation() -> None:
    secrets = make_secrets("prod")
    key = "0f" * 32
    owner = {"metadata": {"name": "bootstrap-token-zyxwvu", "uid": "u-1"}}
    secret = jc.certs_secret(secrets, key, owner)
    assert secret["metadata"]["name"] == "kubeadm-certs"
    assert secret["metadata"]["ownerReferences"] == [{
        "apiVersion": "v1", "kind": "Secret", "name": "bootstrap-token-zyxwvu", "uid": "u-1",
        "controller": True, "blockOwnerDeletion": True}]
    data = {k: base64.b64decode(v) for k, v in secret["data"].items()}
    assert set(data) == KUBEADM_CERT_NAMES
    expected = {"ca.crt": secrets.ca_crt_pem, "ca.key": secrets.ca_key_pem,
                **{name.replace("/", "-"): pem for name, pem in secrets.shared.items()}}
    assert {name: _decrypt(blob, key) for name, blob in data.items()} == expected
    assert len({blob[:12] for blob in data.values()}) == len(data), "a nonce per entry"


def test_refresh_through_the_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """refresh() creates both tokens and kubeadm-certs on a (fake) API server; deleting the
    owner token (what the token cleaner does at expiry) takes kubeadm-certs with it."""
    clock.pin(monkeypatch, NOW)
    folder = tmp_path / "secrets"
    prepared = prepared_with_secrets(folder)
    before = prepared.secrets
    said: list[str] = []
    with FakeKubeAPI() as kube:
        api = client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))
        fresh = jc.refresh(api, prepared, said.append)  # type: ignore[arg-type]
        token_id = fresh.bootstrap_token.split(".")[0]
        node = kube.get("v1", "Secret", f"bootstrap-token-{token_id}", "kube-system")
        assert node is not None
        assert _data(node)["token-secret"] == fresh.bootstrap_token.split(".")[1]
        certs = kube.get("v1", "Secret", "kubeadm-certs", "kube-system")
        assert certs is not None
        blob = base64.b64decode(certs["data"]["sa.key"])
        assert _decrypt(blob, fresh.certificate_key) == before.shared["sa.key"]
        owner = certs["metadata"]["ownerReferences"][0]["name"]
        owner_secret = kube.get("v1", "Secret", owner, "kube-system")
        assert owner_secret is not None
        assert _data(owner_secret)["expiration"] == "2026-03-07T05:00:12Z"
        Kube(api).request("DELETE", f"/api/v1/namespaces/kube-system/secrets/{owner}")
        kube.wait_for(lambda: kube.get("v1", "Secret", "kubeadm-certs", "kube-system") is None)
    assert fresh.bootstrap_token != before.bootstrap_token
    assert fresh.certificate_key != before.certificate_key
    assert (fresh.token_expires, fresh.certificate_key_expires) == (
        "2026-03-07T07:00:12Z", "2026-03-07T05:00:12Z")
    saved = read_secrets(folder)
    assert saved is not None and saved.bootstrap_token == fresh.bootstrap_token
    assert saved.token_expires == fresh.token_expires
    assert (folder / "bootstrap.json").stat().st_mode & 0o777 == 0o600
    assert fresh.bootstrap_token not in " ".join(said), "secrets never in output"

