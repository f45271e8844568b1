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
from dataclasses import dataclass, field, replace
from pathlib import Path

from provisioner.bootstrap.private_files import private_folder, write_private, write_private_files
from provisioner.bootstrap.tokens import new_bootstrap_token as new_bootstrap_token
from provisioner.errors import UsageError, WorkdirError

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
    # The other keys every control-plane node must share (SHARED_FILES, kubeadm's names ->
    # PEM). Empty for a cluster whose first node made them itself (before provision did):
    # provision can then re-upload no control-plane certificates.
    shared: dict[str, bytes] = field(default_factory=dict)
    # When the cluster stops accepting bootstrap_token / the uploaded certificates (RFC 3339
    # UTC), once provision minted them through the API (join_credentials.py); None before.
    token_expires: str | None = None
    certificate_key_expires: str | None = None
    # The private half of the key etcd backups are encrypted to (PEM, RSA 3072), made when
    # the environment file asks for backups (backup_keys.py); None until then.
    backup_key: bytes | None = None

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
        """The module's ``bootstrap_secrets``: the late-bound values user-data references.

        Shared keys the folder lacks are empty: only the first node's init user-data uses
        them, which such a cluster (initialised before provision held them) never renders
        for a new droplet.
        """
        values = {
            "bootstrap_token": self.bootstrap_token,
            "certificate_key": self.certificate_key,
            "ca_cert_hash": self.ca_cert_hash,
            "ca_crt_b64": base64.b64encode(self.ca_crt_pem).decode(),
            "ca_key_b64": base64.b64encode(self.ca_key_pem).decode(),
        }
        for name, marker in SHARED_MARKERS.items():
            values[marker] = base64.b64encode(self.shared.get(name, b"")).decode()
        # Only `provision restore` fills these. (Imported here: render imports this module.)
        from provisioner.render.markers import RESTORE_VALUES

        values.update(dict.fromkeys(RESTORE_VALUES, ""))
        return values


# The keys kubeadm would otherwise generate on the first control-plane node and every other
# one downloads from kubeadm-certs (cmd/kubeadm/app/phases/copycerts/copycerts.go,
# certsToTransfer, with the names of cmd/kubeadm/app/constants/constants.go). kubeadm init
# uses such files when it finds them in /etc/kubernetes/pki (phases/certs/certs.go:
# "Using the existing "sa" key", and an existing CA is loaded, not made again).
SHARED_FILES = ("sa.key", "sa.pub", "front-proxy-ca.crt", "front-proxy-ca.key",
                "etcd/ca.crt", "etcd/ca.key")
# Each one's late-bound value in user-data (render/markers.py SECRET_VALUES).
SHARED_MARKERS = {"sa.key": "sa_key_b64", "sa.pub": "sa_pub_b64",
                  "front-proxy-ca.crt": "front_proxy_ca_crt_b64",
                  "front-proxy-ca.key": "front_proxy_ca_key_b64",
                  "etcd/ca.crt": "etcd_ca_crt_b64", "etcd/ca.key": "etcd_ca_key_b64"}


def shared_file_name(name: str) -> str:
    """Where a shared key lives in the secrets folder (kubeadm's name, '/' as '-')."""
    return name.replace("/", "-")


def new_certificate_key() -> str:
    """The AES-256 key kubeadm encrypts uploaded control-plane certificates with (hex)."""
    return secrets.token_hex(32)


def new_ca(cluster: str, common_name: str = "kubernetes") -> tuple[bytes, bytes]:
    """A self-signed CA (RSA 2048, as kubeadm makes by default): (cert PEM, key PEM)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
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
BACKUP_KEY = "backup-recipient.key"

# What an operator can do when the files on disk are not a usable CA; said with every refusal.
RECOVERY = ("restore the secrets folder from your backup; or, with remote state "
            "(state.backend: spaces), delete the folder and run again with "
            "PROVISION_SECRETS_KEY set, which restores it from the encrypted copy beside the "
            "state. provision never makes a new CA over an existing one: the cluster "
            "would reject everything it signs")


class SecretsError(UsageError):
    """The secrets on disk (or their stored copy) cannot be used; nothing was changed."""


def new_shared_keys(cluster: str) -> dict[str, bytes]:
    """The service-account key pair and the front-proxy and etcd CAs, as kubeadm names them
    (its common names: "front-proxy-ca", "etcd-ca"; phases/certs/certlist.go)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    front_crt, front_key = new_ca(cluster, "front-proxy-ca")
    etcd_crt, etcd_key = new_ca(cluster, "etcd-ca")
    return {
        "sa.key": sa.private_bytes(serialization.Encoding.PEM,
                                   serialization.PrivateFormat.TraditionalOpenSSL,
                                   serialization.NoEncryption()),
        "sa.pub": sa.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo),
        "front-proxy-ca.crt": front_crt, "front-proxy-ca.key": front_key,
        "etcd/ca.crt": etcd_crt, "etcd/ca.key": etcd_key,
    }


def make_secrets(cluster: str) -> ClusterSecrets:
    """A new CA, shared keys and join credentials, in memory (see :func:`save_secrets`)."""
    cert_pem, key_pem = new_ca(cluster)
    return ClusterSecrets(cert_pem, key_pem, new_bootstrap_token(), new_certificate_key(),
                          new_shared_keys(cluster))


def with_shared_keys(secrets: ClusterSecrets, cluster: str) -> ClusterSecrets:
    """``secrets`` with new shared keys: only for a cluster that does not exist yet."""
    return replace(secrets, shared=new_shared_keys(cluster))


def tokens_json(secrets: ClusterSecrets) -> bytes:
    """bootstrap.json: the join credentials and, once minted through the API, their expiry."""
    values: dict[str, str] = {"bootstrap_token": secrets.bootstrap_token,
                              "certificate_key": secrets.certificate_key}
    if secrets.token_expires:
        values["bootstrap_token_expires"] = secrets.token_expires
    if secrets.certificate_key_expires:
        values["certificate_key_expires"] = secrets.certificate_key_expires
    return json.dumps(values, indent=2).encode()


def save_secrets(folder: Path, secrets: ClusterSecrets) -> None:
    """Write every file at once (all data on disk before any rename), 0600 in 0700."""
    private_folder(folder)
    files = {folder / TOKENS: tokens_json(secrets),
             folder / CA_CRT: secrets.ca_crt_pem,
             folder / CA_KEY: secrets.ca_key_pem}
    files.update({folder / shared_file_name(name): pem for name, pem in secrets.shared.items()})
    if secrets.backup_key is not None:
        files[folder / BACKUP_KEY] = secrets.backup_key
    write_private_files(files)


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


def _read_tokens(path: Path) -> tuple[str, str, str | None, str | None]:
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
    expires = values.get("bootstrap_token_expires")
    key_expires = values.get("certificate_key_expires")
    return (token, key, expires if isinstance(expires, str) else None,
            key_expires if isinstance(key_expires, str) else None)


def _read_shared(folder: Path) -> dict[str, bytes]:
    """The shared keys: all of them, or none (a folder from before provision held them)."""
    paths = {name: folder / shared_file_name(name) for name in SHARED_FILES}
    present = [name for name, path in paths.items() if path.exists()]
    if not present:
        return {}
    if len(present) != len(paths):
        missing = ", ".join(str(paths[n]) for n in SHARED_FILES if n not in present)
        raise SecretsError(f"{missing} missing beside the other shared control-plane keys: "
                           f"{RECOVERY}")
    shared = {name: path.read_bytes() for name, path in paths.items()}
    empty = [str(paths[n]) for n, pem in shared.items() if not pem.strip()]
    if empty:
        raise SecretsError(f"{empty[0]} is empty: {RECOVERY}")
    for path in paths.values():
        if path.stat().st_mode & 0o077:
            path.chmod(0o600)
    return shared


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
        expires: str | None = None
        key_expires: str | None = None
        if tokens.exists():
            token, cert_key, expires, key_expires = _read_tokens(tokens)
        else:
            token, cert_key = new_bootstrap_token(), new_certificate_key()
            write_private(tokens, json.dumps({"bootstrap_token": token,
                                              "certificate_key": cert_key}, indent=2).encode())
        for path in (ca_crt, ca_key, tokens):
            if path.stat().st_mode & 0o077:
                path.chmod(0o600)
        shared = _read_shared(folder)
        backup_key = _read_backup_key(folder / BACKUP_KEY)
    except OSError as e:
        raise WorkdirError(f"cannot read cluster secrets in {folder}: {e.strerror}") from e
    return ClusterSecrets(cert_pem, key_pem, token, cert_key, shared, expires, key_expires,
                          backup_key)


def _read_backup_key(path: Path) -> bytes | None:
    """The backup recipient's private key, checked to be one; None when there is none."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    if not path.exists():
        return None
    pem = path.read_bytes()
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as e:
        raise SecretsError(f"{path} is not an unencrypted PEM private key: restore it from "
                           "your backup (without it no snapshot taken so far can be opened)"
                           ) from e
    if not isinstance(key, rsa.RSAPrivateKey):
        raise SecretsError(f"{path} is not an RSA key: restore it from your backup")
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return pem


def ensure_secrets(folder: Path, cluster: str) -> ClusterSecrets:
    """The secrets in ``folder`` (0700), checked; a new CA only when it holds none."""
    private_folder(folder)
    found = read_secrets(folder)
    if found is not None:
        return found
    made = make_secrets(cluster)
    save_secrets(folder, made)
    return made
