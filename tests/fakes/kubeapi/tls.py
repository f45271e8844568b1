"""Certificates for serving HTTPS: a throwaway CA, a server cert for 127.0.0.1/localhost,
client certificates for client-cert authentication, and the server's SSL context.

ECDSA P-256 keys: generated in milliseconds and accepted by kubectl (Go) and by the
Python client (OpenSSL). Tests that need the product's own cluster CA pass its
certificate and key to `FakeKubeAPI(tls=True, cert_pem=..., key_pem=...)` instead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass(frozen=True)
class TLSMaterial:
    """PEM bytes: the CA (cert and key, to issue client certs) and a server cert/key."""

    ca_pem: bytes
    ca_key_pem: bytes
    cert_pem: bytes
    key_pem: bytes


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


def _issue(
    subject: x509.Name, issuer: x509.Name, public_key: ec.EllipticCurvePublicKey,
    signer: ec.EllipticCurvePrivateKey, *, ca: bool, usage: x509.ObjectIdentifier | None = None,
    hosts: Iterable[str] = (), days: int = 7,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(public_key).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=not ca,
            data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
            encipher_only=False, decipher_only=False), critical=True)
    )  # fmt: skip
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(signer, hashes.SHA256())


def make_tls(hosts: Iterable[str] = ("127.0.0.1", "localhost", "::1")) -> TLSMaterial:
    """A new CA and a server certificate it signed, valid for `hosts`."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fake-kubernetes-ca")])
    ca = _issue(ca_name, ca_name, ca_key.public_key(), ca_key, ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    server_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")])
    hosts = list(hosts)
    cert = _issue(server_name, ca_name, key.public_key(), ca_key, ca=False,
                  usage=ExtendedKeyUsageOID.SERVER_AUTH, hosts=[*hosts, "kubernetes"])
    pem = serialization.Encoding.PEM
    return TLSMaterial(ca.public_bytes(pem), _key_pem(ca_key), cert.public_bytes(pem),
                       _key_pem(key))  # fmt: skip


def issue_client_cert(
    material: TLSMaterial, common_name: str = "kubernetes-admin",
    organizations: Iterable[str] = ("system:masters",),
) -> tuple[bytes, bytes]:
    """(cert_pem, key_pem) of a client certificate signed by `material`'s CA; the
    apiserver reads the user from CN and the groups from O, as here."""
    ca_key = serialization.load_pem_private_key(material.ca_key_pem, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    ca = x509.load_pem_x509_certificate(material.ca_pem)
    key = ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    subject = x509.Name([*attributes, x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = _issue(subject, ca.subject, key.public_key(), ca_key, ca=False,
                  usage=ExtendedKeyUsageOID.CLIENT_AUTH)  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def server_context(cert_pem: bytes, key_pem: bytes, client_ca_pem: bytes | None = None
                   ) -> ssl.SSLContext:  # fmt: skip
    """TLS server context; with `client_ca_pem`, client certificates are requested (not
    required: a bearer token may authenticate instead) and verified against it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    # load_cert_chain reads files only; keep the key on disk for as short as possible.
    with tempfile.TemporaryDirectory(prefix="fake-kubeapi-tls-") as tmp:
        cert_file, key_file = os.path.join(tmp, "tls.crt"), os.path.join(tmp, "tls.key")
        with open(cert_file, "wb") as fh:
            fh.write(cert_pem)
        with open(os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as fh:
            fh.write(key_pem)
        context.load_cert_chain(cert_file, key_file)
    if client_ca_pem:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cadata=client_ca_pem.decode())
    return context
