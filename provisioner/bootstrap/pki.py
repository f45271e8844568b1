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
import re
import secrets
import string
from dataclasses import dataclass
from pathlib import Path

from provisioner.bootstrap.private_files import private_folder, write_private, write_private_files
from provisioner.errors import UsageError, WorkdirError

_TOKEN_ALPHABET = string.ascii_lowercase + string.digits
_TOKEN_RE = re.compile(r"[a-z0-9]{6}\.[a-z0-9]{16}")
_CERT_KEY_RE = re.compile(r"[0-9a-f]{64}")
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


CA_CRT = "ca.crt"
CA_KEY = "ca.key"
TOKENS = "bootstrap.json"

# What an operator can do when the files on disk are not a usable CA; said with every refusal.
RECOVERY = ("restore the secrets folder from your backup; or, with remote state "
            "(state.backend: spaces), delete the folder and run again with "
            "PROVISION_SECRETS_KEY set, which restores it from the encrypted copy beside the "
            "state. provision never makes a new CA over an existing one: the cluster "
            "would reject everything it signs")


class SecretsError(UsageError):
    """The secrets on disk (or their stored copy) cannot be used; nothing was changed."""


def make_secrets(cluster: str) -> ClusterSecrets:
    """A new CA and new join credentials, in memory (see :func:`save_secrets`)."""
    cert_pem, key_pem = new_ca(cluster)
    return ClusterSecrets(cert_pem, key_pem, new_bootstrap_token(), new_certificate_key())


def _tokens_json(secrets: ClusterSecrets) -> bytes:
    return json.dumps({"bootstrap_token": secrets.bootstrap_token,
                       "certificate_key": secrets.certificate_key}, indent=2).encode()


def save_secrets(folder: Path, secrets: ClusterSecrets) -> None:
    """Write the three files at once (all data on disk before any rename), 0600 in 0700."""
    private_folder(folder)
    write_private_files({folder / TOKENS: _tokens_json(secrets),
                         folder / CA_CRT: secrets.ca_crt_pem,
                         folder / CA_KEY: secrets.ca_key_pem})


def check_pair(cert_pem: bytes, key_pem: bytes, cert_name: str, key_name: str) -> None:
    """Refuse a CA whose certificate or key is unreadable, or whose key is another's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as e:
        what = "is empty" if not cert_pem.strip() else "is not a PEM certificate"
        raise SecretsError(f"{cert_name} {what}: {RECOVERY}") from e
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as e:
        what = "is empty" if not key_pem.strip() else "is not an unencrypted PEM private key"
        raise SecretsError(f"{key_name} {what}: {RECOVERY}") from e
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        raise SecretsError(f"{key_name} is not the key of {cert_name} (they come from two "
                           f"different CAs): {RECOVERY}")


def _read_tokens(path: Path) -> tuple[str, str]:
    try:
        values = json.loads(path.read_bytes())
    except ValueError as e:
        raise SecretsError(f"{path} is not JSON; delete it and run again (new join tokens "
                           "are made; nothing on the cluster depends on the old ones)") from e
    token = values.get("bootstrap_token") if isinstance(values, dict) else None
    key = values.get("certificate_key") if isinstance(values, dict) else None
    if not (isinstance(token, str) and _TOKEN_RE.fullmatch(token)
            and isinstance(key, str) and _CERT_KEY_RE.fullmatch(key)):
        raise SecretsError(f"{path}: bootstrap_token or certificate_key is missing or malformed; "
                           "delete the file and run again (new join tokens are made)")
    return token, key


def read_secrets(folder: Path) -> ClusterSecrets | None:
    """The secrets in ``folder``, checked; None when it holds no CA at all.

    A certificate without its key (or a key without its certificate), an empty or
    unreadable file, or a pair from two CAs is refused, naming the file. Lost join tokens
    alone are made again: kubeadm uses them only while a node joins.
    """
    ca_crt, ca_key, tokens = folder / CA_CRT, folder / CA_KEY, folder / TOKENS
    try:
        have_crt, have_key = ca_crt.exists(), ca_key.exists()
        if not have_crt and not have_key:
            return None
        if have_crt != have_key:
            present, missing = (ca_crt, ca_key) if have_crt else (ca_key, ca_crt)
            raise SecretsError(f"{missing} is missing but {present} exists: {RECOVERY}")
        cert_pem, key_pem = ca_crt.read_bytes(), ca_key.read_bytes()
        check_pair(cert_pem, key_pem, str(ca_crt), str(ca_key))
        if tokens.exists():
            token, cert_key = _read_tokens(tokens)
        else:
            token, cert_key = new_bootstrap_token(), new_certificate_key()
            write_private(tokens, json.dumps({"bootstrap_token": token,
                                              "certificate_key": cert_key}, indent=2).encode())
        for path in (ca_crt, ca_key, tokens):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
    except OSError as e:
        raise WorkdirError(f"cannot read cluster secrets in {folder}: {e.strerror}") from e
    return ClusterSecrets(cert_pem, key_pem, token, cert_key)


def ensure_secrets(folder: Path, cluster: str) -> ClusterSecrets:
    """The secrets in ``folder`` (0700), checked; a new CA only when it holds none."""
    private_folder(folder)
    found = read_secrets(folder)
    if found is not None:
        return found
    made = make_secrets(cluster)
    save_secrets(folder, made)
    return made
