"""The cluster secrets sealed with a key from the environment, to be kept beside remote state.

AES-256-GCM (``cryptography``'s AEAD) with a random 96-bit nonce per seal. The associated
data binds the sealed copy to its environment and to the CA fingerprint written in clear
beside it, so a copy moved to another environment, or a fingerprint edited, fails to open
like a wrong key or a flipped bit does. The fingerprint (kubeadm's discovery hash, public)
is in clear so a run can compare CAs before it needs the key to restore anything.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
from dataclasses import dataclass
from typing import Any

from provisioner.bootstrap.pki import ClusterSecrets, SecretsError, check_pair
from provisioner.errors import UsageError

KEY_VAR = "PROVISION_SECRETS_KEY"
FORMAT = "provision-cluster-secrets/1"
MAKE_KEY = "make one with `openssl rand -base64 32` and keep it in your secret store"

NONCE_BYTES = 12  # GCM's recommended IV length (NIST SP 800-38D)

@dataclass(frozen=True)
class SealedCopy:
    """An envelope as stored: clear metadata and the sealed secrets."""

    environment: str
    ca_cert_hash: str
    key_id: str
    nonce: bytes
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return (json.dumps({
            "format": FORMAT,
            "environment": self.environment,
            "ca_cert_hash": self.ca_cert_hash,
            "cipher": "AES-256-GCM",
            "key_id": self.key_id,
            "nonce": base64.b64encode(self.nonce).decode(),
            "ciphertext": base64.b64encode(self.ciphertext).decode(),
        }, indent=2) + "\n").encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> SealedCopy:
        try:
            doc: Any = json.loads(data)
            if not isinstance(doc, dict) or doc.get("format") != FORMAT:
                raise ValueError("not a provision secrets envelope")
            nonce = base64.b64decode(doc["nonce"], validate=True)
            if len(nonce) != NONCE_BYTES:  # AES-GCM would raise ValueError on its own
                raise ValueError("the nonce is not the one provision writes")
            return cls(str(doc["environment"]), str(doc["ca_cert_hash"]), str(doc["key_id"]),
                       nonce, base64.b64decode(doc["ciphertext"], validate=True))
        except (ValueError, KeyError, TypeError, binascii.Error) as e:
            raise SecretsError(f"{where} is not a sealed copy of cluster secrets written by "
                               "provision (damaged or replaced); restore it from the "
                               "bucket's versions or a backup") from e


def key_from_environment(why: str) -> bytes:
    """The 32-byte key in ``PROVISION_SECRETS_KEY`` (base64); its value is never shown."""
    text = os.environ.get(KEY_VAR, "").strip()
    if not text:
        raise UsageError(f"{KEY_VAR} is not set; it is needed {why} ({MAKE_KEY})")
    try:
        key = base64.b64decode(text.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        key = b""
    if len(key) != 32:
        raise UsageError(f"{KEY_VAR} is not 32 bytes in base64 ({MAKE_KEY})")
    return key


def key_id(key: bytes) -> str:
    """A short public name for a key, to tell "wrong key" from "altered copy"."""
    return hashlib.sha256(b"provision-secrets-key-id\0" + key).hexdigest()[:16]


def _associated_data(environment: str, ca_cert_hash: str) -> bytes:
    return f"{FORMAT}\0{environment}\0{ca_cert_hash}".encode()


def seal(secrets: ClusterSecrets, environment: str, key: bytes) -> SealedCopy:
    """Encrypt ``secrets`` for ``environment`` under ``key``."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    plain = json.dumps({
        "ca_crt": secrets.ca_crt_pem.decode(),
        "ca_key": secrets.ca_key_pem.decode(),
        "bootstrap_token": secrets.bootstrap_token,
        "certificate_key": secrets.certificate_key,
        # The other shared control-plane keys (absent in copies of clusters built before).
        "shared": {name: pem.decode() for name, pem in secrets.shared.items()},
        "bootstrap_token_expires": secrets.token_expires,
        "certificate_key_expires": secrets.certificate_key_expires,
        "backup_key": secrets.backup_key.decode() if secrets.backup_key else None,
    }).encode()
    nonce = os.urandom(NONCE_BYTES)
    fingerprint = secrets.ca_cert_hash
    sealed = AESGCM(key).encrypt(nonce, plain, _associated_data(environment, fingerprint))
    return SealedCopy(environment, fingerprint, key_id(key), nonce, sealed)


def unseal(copy: SealedCopy, environment: str, key: bytes, where: str) -> ClusterSecrets:
    """Decrypt and check a sealed copy; refuse a wrong key, another environment, a change."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if copy.environment != environment:
        raise SecretsError(f"{where} holds the secrets of environment {copy.environment!r}, "
                           f"not {environment!r}; check state.key in the environment file")
    if copy.key_id != key_id(key):
        raise SecretsError(f"{KEY_VAR} is not the key {where} was sealed with (key id "
                           f"{copy.key_id}, yours {key_id(key)}); use that key")
    try:
        plain = AESGCM(key).decrypt(copy.nonce, copy.ciphertext,
                                    _associated_data(copy.environment, copy.ca_cert_hash))
    except InvalidTag as e:
        raise SecretsError(f"{where} fails its integrity check: it was altered or damaged "
                           "after provision sealed it; restore it from the bucket's versions "
                           "or a backup") from e
    doc = json.loads(plain)
    secrets = ClusterSecrets(doc["ca_crt"].encode(), doc["ca_key"].encode(),
                             doc["bootstrap_token"], doc["certificate_key"],
                             {name: str(pem).encode()
                              for name, pem in (doc.get("shared") or {}).items()},
                             doc.get("bootstrap_token_expires"),
                             doc.get("certificate_key_expires"),
                             str(doc["backup_key"]).encode() if doc.get("backup_key") else None)
    check_pair(secrets.ca_crt_pem, secrets.ca_key_pem, f"{where} (ca.crt)", f"{where} (ca.key)")
    return secrets
