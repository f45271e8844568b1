"""Fresh join credentials for a running cluster, made through its API as kubeadm makes them.

kubeadm's credentials expire: the bootstrap token after its ttl (4 h, as provision renders
it), the uploaded control-plane certificates after two hours (their Secret is owned by a
short-lived token). Nodes created later need new ones. Provision holds the CA and the
shared control-plane keys, so it makes them itself, in the formats kubeadm reads
(kubernetes/kubernetes, read at release-1.36's code; the formats are unchanged since 1.15):

* a bootstrap token is a Secret ``kube-system/bootstrap-token-<id>`` of type
  ``bootstrap.kubernetes.io/token`` with ``token-id``, ``token-secret``, ``description``,
  ``expiration`` (RFC 3339 UTC, now + ttl), ``usage-bootstrap-<usage>: "true"`` per usage and
  ``auth-extra-groups`` (comma-separated): staging/src/k8s.io/cluster-bootstrap/token/api/
  types.go and cmd/kubeadm/app/apis/bootstraptoken/v1/utils.go (encodeTokenSecretData);
  a node token has usages signing and authentication and the group
  ``system:bootstrappers:kubeadm:default-node-token`` (kubeadm's defaults and the init
  configuration provision renders);
* the control-plane certificates are the Secret ``kube-system/kubeadm-certs``, one entry
  per file with ``/`` written as ``-`` (ca.crt, ca.key, sa.key, sa.pub, front-proxy-ca.crt,
  front-proxy-ca.key, etcd-ca.crt, etcd-ca.key), each AES-256-GCM under the hex-decoded
  32-byte certificate key, stored as nonce (12 bytes) followed by the sealed bytes, no
  associated data (cmd/kubeadm/app/phases/copycerts/copycerts.go, UploadCerts and
  certsToTransfer; cmd/kubeadm/app/util/crypto/crypto.go, EncryptBytes); the Secret's
  controller ownerReference is a token Secret with only id, secret, the description "Proxy
  for managing TTL for the kubeadm-certs secret" and an expiration two hours on
  (createShortLivedBootstrapToken, constants.DefaultCertTokenDuration), so the garbage
  collector removes the certificates when that token expires.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from provisioner import clock
from provisioner.bootstrap.pki import (
    TOKENS,
    ClusterSecrets,
    new_bootstrap_token,
    new_certificate_key,
    shared_file_name,
)
from provisioner.bootstrap.private_files import private_folder, write_private
from provisioner.bootstrap.tokens import NAMESPACE as NAMESPACE
from provisioner.bootstrap.tokens import NODE_GROUP as NODE_GROUP
from provisioner.bootstrap.tokens import NODE_USAGES as NODE_USAGES
from provisioner.bootstrap.tokens import TOKEN_PREFIX as TOKEN_PREFIX
from provisioner.bootstrap.tokens import TOKEN_TYPE as TOKEN_TYPE
from provisioner.bootstrap.tokens import rfc3339 as rfc3339
from provisioner.bootstrap.tokens import token_secret as token_secret
from provisioner.errors import ProvisionError

if TYPE_CHECKING:
    from provisioner.pipeline.prepare import Prepared

CERTS_SECRET = "kubeadm-certs"
# As rendered into the init configuration (render/cloudinit.py TOKEN_TTL).
TOKEN_TTL = dt.timedelta(hours=4)
CERT_TOKEN_TTL = dt.timedelta(hours=2)  # kubeadm's DefaultCertTokenDuration
NODE_DESCRIPTION = "provision bootstrap token"
CERT_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret"
NONCE_BYTES = 12  # Go's cipher.NewGCM nonce size


class JoinCredentialsError(ProvisionError):
    """The cluster did not take the new join credentials; nothing was applied."""


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encrypt(data: bytes, certificate_key: str) -> bytes:
    """kubeadm's EncryptBytes: nonce || AES-GCM(key, nonce, data), no associated data."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(bytes.fromhex(certificate_key)).encrypt(nonce, data, None)


def certificate_files(secrets: ClusterSecrets) -> dict[str, bytes]:
    """kubeadm's names (certsToTransfer, local etcd) -> PEM."""
    return {"ca.crt": secrets.ca_crt_pem, "ca.key": secrets.ca_key_pem, **secrets.shared}


def certs_secret(secrets: ClusterSecrets, certificate_key: str, owner: dict[str, Any]
                 ) -> dict[str, Any]:
    """``kube-system/kubeadm-certs``, owned (as its controller) by the token Secret ``owner``."""
    meta = owner["metadata"]
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": CERTS_SECRET, "namespace": NAMESPACE, "ownerReferences": [{
                "apiVersion": "v1", "kind": "Secret", "name": meta["name"],
                "uid": meta["uid"], "controller": True, "blockOwnerDeletion": True}]},
            "data": {shared_file_name(name): _b64(encrypt(pem, certificate_key))
                     for name, pem in certificate_files(secrets).items()}}


def _create(kube: Any, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets",
                                           body=body, verb="create secrets in kube-system")
    return created


def _create_or_replace(kube: Any, body: dict[str, Any]) -> dict[str, Any]:
    from provisioner.kube import KubeError

    try:
        return _create(kube, body)
    except KubeError as e:
        if e.status != 409:
            raise
    name = body["metadata"]["name"]
    replaced: dict[str, Any] = kube.request(
        "PUT", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}", body=body,
        verb="update secrets in kube-system")
    return replaced


def refresh(api: Any, prepared: Prepared, say: Callable[[str], None],
            control_plane: bool = True) -> ClusterSecrets:
    """Mint a bootstrap token and, for new control-plane nodes (when provision holds the
    shared keys), re-upload the control-plane certificates under a new key; save both in
    bootstrap.json (0600). Workers need only the token: the keys stay off the API then."""
    from provisioner.kube import Kube, KubeError

    kube = Kube(api, timeout=15)
    now = clock.now()
    current = prepared.secrets
    token = new_bootstrap_token()
    try:
        _create(kube, token_secret(token, TOKEN_TTL, now, NODE_DESCRIPTION, NODE_USAGES,
                                   (NODE_GROUP,)))
        fresh = replace(current, bootstrap_token=token, token_expires=rfc3339(now + TOKEN_TTL))
        if current.shared and control_plane:
            key = new_certificate_key()
            owner = _create(kube, token_secret(new_bootstrap_token(), CERT_TOKEN_TTL, now,
                                               CERT_TOKEN_DESCRIPTION))
            _create_or_replace(kube, certs_secret(current, key, owner))
            fresh = replace(fresh, certificate_key=key,
                            certificate_key_expires=rfc3339(now + CERT_TOKEN_TTL))
    except KubeError as e:
        raise JoinCredentialsError(f"cannot make fresh join credentials on the cluster: {e}; "
                                   "nothing was applied (a token Secret made before the "
                                   "failure expires on its own)") from e
    save(prepared, fresh)
    say("made fresh join credentials for the new nodes (bootstrap token until "
        f"{fresh.token_expires}"
        + (f", control-plane certificates until {fresh.certificate_key_expires})"
           if current.shared and control_plane else ")"))
    return fresh


def save(prepared: Prepared, secrets: ClusterSecrets) -> None:
    """bootstrap.json in the work folder's secrets (the CA files are unchanged)."""
    from provisioner.bootstrap.pki import tokens_json

    folder = prepared.work.secrets
    private_folder(folder)
    write_private(folder / TOKENS, tokens_json(secrets))


def expired(expires: str | None, now: dt.datetime, margin: dt.timedelta) -> bool:
    """Whether a credential saved with ``expires`` is gone (or will be within ``margin``)."""
    if not expires:
        return False
    try:
        until = dt.datetime.fromisoformat(expires.replace("Z", "+00:00"))
    except ValueError:
        return True
    return until <= now + margin
