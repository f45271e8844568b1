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
from provisioner.errors import UsageError, WorkdirError
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

    try:
        ca_cert = x509.load_pem_x509_certificate(secrets.ca_crt_pem)
        ca_key = serialization.load_pem_private_key(secrets.ca_key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise WorkdirError("the cluster CA in the work folder (secrets/ca.crt, secrets/ca.key) "
                           "cannot be read; restore both from a backup: a new CA would not "
                           "match the running cluster") from e
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
    """The work folder's kubeconfig, made (or remade for a new endpoint) as needed.

    It is derived entirely from the CA in the work folder, so one that cannot be read
    (damaged, not UTF-8, not a kubeconfig) is simply made again.
    """
    if path.is_file():
        try:
            current = yaml.safe_load(path.read_bytes().decode("utf-8"))
            server = current["clusters"][0]["cluster"]["server"]
            if server == f"https://{endpoint}:6443":
                return path
        except (yaml.YAMLError, ValueError, KeyError, IndexError, TypeError, OSError):
            pass
    write(path, build(cluster, endpoint, secrets))
    return path


def rename(document: dict[str, Any], name: str) -> dict[str, Any]:
    """The same kubeconfig with its cluster and context called ``name``, its user ``name-admin``."""
    user = f"{name}-admin"
    return {
        **document,
        "clusters": [{**document["clusters"][0], "name": name}],
        "users": [{**document["users"][0], "name": user}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": user}}],
        "current-context": name,
    }


def _signed_by(user: dict[str, Any], ca_pem: bytes) -> bool:
    """Whether a kubeconfig user's client certificate was issued by this cluster's CA."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(
            base64.b64decode(user["user"]["client-certificate-data"]))
        cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_pem))
    except Exception:  # anything not a certificate from our CA is not ours
        return False
    return True


def _ours(section: str, entry: dict[str, Any], mine: dict[str, Any], ca_pem: bytes) -> bool:
    """Whether an existing entry of the same name was written for this cluster (by us)."""
    if section == "clusters":
        cluster = entry.get("cluster")
        return isinstance(cluster, dict) and cluster.get(
            "certificate-authority-data") == mine["cluster"]["certificate-authority-data"]
    if section == "users":
        return _signed_by(entry, ca_pem)
    return bool(entry.get("context") == mine["context"])


def _describe(section: str, entry: dict[str, Any]) -> str:
    body = entry.get(section[:-1])
    fields = body if isinstance(body, dict) else {}
    if section == "contexts":
        return (f"context {entry['name']!r} (cluster {fields.get('cluster')!r}, "
                f"user {fields.get('user')!r})")
    if section == "clusters":
        return f"cluster {entry['name']!r} (server {fields.get('server')!r})"
    return f"user {entry['name']!r}"


def _load_existing(target: Path) -> dict[str, Any]:
    existing: dict[str, Any] = {"apiVersion": "v1", "kind": "Config", "clusters": [],
                                "users": [], "contexts": []}
    if not target.exists():
        return existing
    invalid = f"{target} is not a valid kubeconfig; not touching it (fix it, or point " \
              "KUBECONFIG at another file)"
    if not target.is_file():
        raise UsageError(f"{target} is not a regular file; not touching it")
    try:
        loaded = yaml.safe_load(target.read_bytes().decode("utf-8")) or {}
    except (yaml.YAMLError, ValueError) as e:
        raise UsageError(invalid) from e
    except OSError as e:
        raise UsageError(f"cannot read {target}: {e.strerror}") from e
    if not isinstance(loaded, dict):
        raise UsageError(invalid)
    existing.update(loaded)
    for section in ("clusters", "users", "contexts"):
        entries = existing.get(section) or []
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and isinstance(e.get("name"), str) for e in entries):
            raise UsageError(f"{target}: {section} is not a list of named entries; "
                             "not touching it")
        existing[section] = entries
    return existing


def merge_into(target: Path, document: dict[str, Any], ca_pem: bytes,
               force: bool = False) -> Path:
    """Add or update this cluster's entries in a kubeconfig file, keeping everything else.

    An entry of the same name that this cluster's CA did not produce belongs to something
    else: it is replaced only with ``force``. A symlinked kubeconfig is written through to
    its target, atomically and 0600. Returns the file written.
    """
    real = Path(os.path.realpath(target))
    existing = _load_existing(real)
    conflicts: list[str] = []
    for section in ("clusters", "users", "contexts"):
        mine = document[section][0]
        for entry in existing[section]:
            # A context naming our cluster and user is someone else's when those are.
            if entry["name"] == mine["name"] and (
                    not _ours(section, entry, mine, ca_pem)
                    or (section == "contexts" and conflicts)):
                conflicts.append(_describe(section, entry))
    if conflicts and not force:
        raise UsageError(f"{target} already has " + ", ".join(conflicts) + ", not made for "
                         "this cluster; choose other names with --context-name NAME, or "
                         "replace them with --force")
    for section in ("clusters", "users", "contexts"):
        names = {e["name"] for e in document[section]}
        existing[section] = [e for e in existing[section] if e["name"] not in names] + document[
            section]
    existing.setdefault("current-context", document["current-context"])
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"cannot create {real.parent}: {e.strerror}") from e
    write(real, existing)  # atomic (temporary file + rename beside it), 0600 from the start
    return real
