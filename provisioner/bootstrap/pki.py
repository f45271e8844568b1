"""The cluster's CA and join credentials, made in Python before any droplet exists.

Making them here (not with Terraform's tls/random providers, not on the first node) means
the discovery hash is known in advance, every node can join without a round trip, the admin
kubeconfig can be signed locally, and no secret lands in Terraform configuration.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from provisioner.errors import WorkdirError

_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
CA_YEARS = 10


@dataclass(frozen=True)
class ClusterSecrets:
    """Everything a node needs to join, plus the CA that signs the cluster."""

    ca_crt_pem: bytes
    ca_key_pem: bytes
    bootstrap_token: str
    certificate_key: str

    @property
    def ca_cert_hash(self) -> str:
        """kubeadm's discovery pin: SHA-256 of the CA's SubjectPublicKeyInfo."""
        from cryptography import x509
        from cryptography.hazmat.primitives import serialization

        cert = x509.load_pem_x509_certificate(self.ca_crt_pem)
        spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                              serialization.PublicFormat.SubjectPublicKeyInfo)
        return "sha256:" + hashlib.sha256(spki).hexdigest()

    def terraform_values(self) -> dict[str, str]:
        """The module's ``bootstrap_secrets``: the late-bound values user-data references."""
        return {
            "bootstrap_token": self.bootstrap_token,
            "certificate_key": self.certificate_key,
            "ca_cert_hash": self.ca_cert_hash,
            "ca_crt_b64": base64.b64encode(self.ca_crt_pem).decode(),
            "ca_key_b64": base64.b64encode(self.ca_key_pem).decode(),
        }


def new_bootstrap_token() -> str:
    """A kubeadm bootstrap token, ``[a-z0-9]{6}.[a-z0-9]{16}``."""
    pick = secrets.choice
    return ("".join(pick(_TOKEN_ALPHABET) for _ in range(6)) + "."
            + "".join(pick(_TOKEN_ALPHABET) for _ in range(16)))


def new_certificate_key() -> str:
    """The AES-256 key kubeadm encrypts uploaded control-plane certificates with (hex)."""
    return secrets.token_hex(32)


def new_ca(cluster: str) -> tuple[bytes, bytes]:
    """A self-signed cluster CA (RSA 2048, as kubeadm makes by default): (cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubernetes"),
                      x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, cluster)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365 * CA_YEARS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                     key_cert_sign=True, crl_sign=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the first byte: no window in which another user could read it.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def ensure_secrets(folder: Path, cluster: str) -> ClusterSecrets:
    """Load the environment's secrets from ``folder`` (0700), making any that are missing."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o700)
        ca_crt, ca_key = folder / "ca.crt", folder / "ca.key"
        tokens = folder / "bootstrap.json"
        if not ca_key.exists():
            cert_pem, key_pem = new_ca(cluster)
            _write_private(ca_key, key_pem)
            ca_crt.unlink(missing_ok=True)
            _write_private(ca_crt, cert_pem)
        if not tokens.exists():
            _write_private(tokens, json.dumps({
                "bootstrap_token": new_bootstrap_token(),
                "certificate_key": new_certificate_key(),
            }, indent=2).encode())
        for path in (ca_crt, ca_key, tokens):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        values = json.loads(tokens.read_text())
        return ClusterSecrets(ca_crt.read_bytes(), ca_key.read_bytes(),
                              values["bootstrap_token"], values["certificate_key"])
    except (OSError, ValueError, KeyError) as e:
        raise WorkdirError(f"cannot prepare cluster secrets in {folder}: {e}") from e
