"""mTLS between the cluster-autoscaler and provision's autoscaler service.

The externalgrpc README recommends mTLS: an unauthenticated call creates or deletes
droplets. provision makes a CA of its own for this one link (not the cluster CA: its key
never leaves the work folder's secrets, and this one signs nothing Kubernetes trusts), a
server certificate for the Service's DNS name the cloud-config dials, and a client
certificate for the cluster-autoscaler. All are kept in ``secrets/autoscaler/`` (0700,
files 0600) with the rest of the environment's custody, made once and reused, so every
`up` applies the same Secrets; a leaf within 30 days of its end is made again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from provisioner.bootstrap.private_files import private_folder, write_private_files
from provisioner.errors import UsageError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

FOLDER = "autoscaler"
LEAF_DAYS = 730
RENEW_DAYS = 30
CA_DAYS = 3650


@dataclass(frozen=True)
class Pair:
    """A certificate and its key (PEM)."""

    cert: bytes
    key: bytes = field(repr=False)


@dataclass(frozen=True)
class LinkTLS:
    """The CA and both ends of the link."""

    ca: Pair
    server: Pair
    client: Pair


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _issue(subject: str, days: int, ca: Pair | None, dns: list[str] | None = None,
           server: bool = False) -> Pair:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec as curves
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = curves.generate_private_key(curves.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = dt.datetime.now(dt.UTC)
    public = key.public_key()
    if ca is None:
        issuer, signer = name, key
    else:
        issuer_cert = x509.load_pem_x509_certificate(ca.cert)
        issuer = issuer_cert.subject
        loaded = serialization.load_pem_private_key(ca.key, password=None)
        if not isinstance(loaded, curves.EllipticCurvePrivateKey):
            raise ValueError("the autoscaler link's CA key is not the EC key provision made")
        signer = loaded
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer)
               .public_key(public).serial_number(x509.random_serial_number())
               .not_valid_before(now - dt.timedelta(minutes=5))
               .not_valid_after(now + dt.timedelta(days=days)))
    if ca is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=0),
                                        critical=True)
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, key_encipherment=False,
            content_commitment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    else:
        builder = builder.add_extension(x509.BasicConstraints(ca=False, path_length=None),
                                        critical=True)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if dns:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), critical=False)
    cert = builder.sign(signer, hashes.SHA256())
    return Pair(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _read(folder: Path, name: str) -> Pair | None:
    try:
        return Pair((folder / f"{name}.crt").read_bytes(), (folder / f"{name}.key").read_bytes())
    except OSError:
        return None


def _fresh(pair: Pair | None, ca: Pair) -> bool:
    """Signed by ``ca`` and valid for more than RENEW_DAYS."""
    from cryptography import x509

    if pair is None:
        return False
    try:
        cert = x509.load_pem_x509_certificate(pair.cert)
        issuer = x509.load_pem_x509_certificate(ca.cert)
    except ValueError:
        return False
    left = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return cert.issuer == issuer.subject and left > dt.timedelta(days=RENEW_DAYS)


def ensure(secrets_folder: Path, server_names: list[str]) -> LinkTLS:
    """The link's CA and certificates, made (or renewed) and kept in the secrets folder."""
    folder = secrets_folder / FOLDER
    private_folder(folder)
    ca = _read(folder, "ca")
    made: dict[str, Pair] = {}
    if ca is None:
        ca = made["ca"] = _issue("provision-autoscaler-ca", CA_DAYS, None)
    server, client = _read(folder, "server"), _read(folder, "client")
    try:
        if "ca" in made or not _fresh(server, ca):
            server = made["server"] = _issue(server_names[0], LEAF_DAYS, ca, server_names,
                                             server=True)
        if "ca" in made or not _fresh(client, ca):
            client = made["client"] = _issue("cluster-autoscaler", LEAF_DAYS, ca)
    except ValueError as e:  # a damaged ca.crt / ca.key: never replaced behind the user
        raise UsageError(f"cannot use the autoscaler link's CA in {folder} ({e}); delete "
                         "that folder (provision makes a new CA and certificates, applied "
                         "by the next `provision up`)") from e
    if made:
        files = {}
        for name, pair in made.items():
            files[folder / f"{name}.crt"] = pair.cert
            files[folder / f"{name}.key"] = pair.key
        write_private_files(files)
    assert server is not None and client is not None
    return LinkTLS(ca, server, client)
