"""The admin kubeconfig, signed locally with the cluster CA provision made.

No round trip to a node is needed: the CA is ours, so provision signs a client certificate
for the ``kubeadm:cluster-admins`` group (bound to cluster-admin by ``kubeadm init``) and
writes a kubeconfig for the API endpoint, 0600, in the work folder.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path
from typing import Any

import yaml

from provisioner.bootstrap.pki import ClusterSecrets
from provisioner.errors import ProvisionError, UsageError
from provisioner.render.writer import write_file

ADMIN_GROUP = "kubeadm:cluster-admins"
CLIENT_DAYS = 365


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def sign_admin(secrets: ClusterSecrets, user: str) -> tuple[bytes, bytes]:
    """A client certificate and key for ``user`` in the cluster-admins group."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ca_cert = x509.load_pem_x509_certificate(secrets.ca_crt_pem)
    ca_key = serialization.load_pem_private_key(secrets.ca_key_pem, password=None)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, ADMIN_GROUP),
                                 x509.NameAttribute(NameOID.COMMON_NAME, user)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CLIENT_DAYS))
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True,
                                     key_cert_sign=False, crl_sign=False,
                                     content_commitment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False,
                                     decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM,
                                serialization.PrivateFormat.TraditionalOpenSSL,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def build(cluster: str, endpoint: str, secrets: ClusterSecrets) -> dict[str, Any]:
    """A kubeconfig document with one cluster, user and context, all named after ``cluster``."""
    cert, key = sign_admin(secrets, f"{cluster}-admin")
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {
            "server": f"https://{endpoint}:6443",
            "certificate-authority-data": _b64(secrets.ca_crt_pem)}}],
        "users": [{"name": f"{cluster}-admin", "user": {
            "client-certificate-data": _b64(cert), "client-key-data": _b64(key)}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster,
                                                   "user": f"{cluster}-admin"}}],
        "current-context": cluster,
        "preferences": {},
    }


def write(path: Path, document: dict[str, Any]) -> None:
    """Write a kubeconfig, 0600 from the first byte."""
    write_file(path, yaml.safe_dump(document, sort_keys=False), mode=0o600)


def ensure(path: Path, cluster: str, endpoint: str, secrets: ClusterSecrets) -> Path:
    """The work folder's kubeconfig, made (or remade for a new endpoint) as needed."""
    if path.is_file():
        try:
            current = yaml.safe_load(path.read_text())
            server = current["clusters"][0]["cluster"]["server"]
            if server == f"https://{endpoint}:6443":
                return path
        except (yaml.YAMLError, KeyError, IndexError, TypeError):
            pass
    write(path, build(cluster, endpoint, secrets))
    return path


def merge_into(target: Path, document: dict[str, Any]) -> None:
    """Add or replace this cluster's entries in a kubeconfig file, keeping everything else."""
    existing: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                                "users": [], "contexts": []}
    if target.is_file():
        try:
            loaded = yaml.safe_load(target.read_text()) or {}
        except yaml.YAMLError as e:
            raise UsageError(f"{target} is not a valid kubeconfig; not touching it") from e
        if not isinstance(loaded, dict):
            raise UsageError(f"{target} is not a valid kubeconfig; not touching it")
        existing.update(loaded)
    for section in ("clusters", "users", "contexts"):
        entries = existing.get(section) or []
        if not isinstance(entries, list):
            raise UsageError(f"{target}: {section} is not a list; not touching it")
        names = {e["name"] for e in document[section]}
        existing[section] = [e for e in entries if e.get("name") not in names] + document[section]
    existing.setdefault("current-context", document["current-context"])
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write(target, existing)
        os.chmod(target, 0o600)
    except OSError as e:
        raise ProvisionError(f"cannot write {target}: {e.strerror}") from e
