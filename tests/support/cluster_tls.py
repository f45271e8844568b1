"""A server certificate for the fake API server, signed by the CA provision made.

With it the fake serves TLS exactly as a kubeadm API server would for provision's own
kubeconfig: the client verifies the server against the cluster CA, and the server verifies
provision's client certificate against the same CA.
"""

from __future__ import annotations

import datetime as dt
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from provisioner.bootstrap.pki import ClusterSecrets


def server_cert(secrets: ClusterSecrets, ip: str) -> tuple[bytes, bytes]:
    """(cert PEM, key PEM) for ``ip``, signed by the cluster CA."""
    ca = x509.load_pem_x509_certificate(secrets.ca_crt_pem)
    ca_key = serialization.load_pem_private_key(secrets.ca_key_pem, password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address(ip)), x509.DNSName("kubernetes")]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return cert.public_bytes(serialization.Encoding.PEM), key_pem
