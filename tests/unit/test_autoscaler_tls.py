"""The autoscaler link's CA and certificates: kept 0600 with the custody, reused, verifiable."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from provisioner.bootstrap import autoscaler_tls
from provisioner.errors import UsageError

NAMES = ["provision-autoscaler.provision-system.svc", "provision-autoscaler"]


def test_made_once_private_and_reused(tmp_path: Path) -> None:
    first = autoscaler_tls.ensure(tmp_path, NAMES)
    folder = tmp_path / "autoscaler"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert autoscaler_tls.ensure(tmp_path, NAMES) == first  # the same Secrets every `up`


def test_leaves_are_signed_by_the_ca_for_their_end(tmp_path: Path) -> None:
    link = autoscaler_tls.ensure(tmp_path, NAMES)
    ca = x509.load_pem_x509_certificate(link.ca.cert)
    server = x509.load_pem_x509_certificate(link.server.cert)
    client = x509.load_pem_x509_certificate(link.client.cert)
    for leaf in (server, client):
        leaf.verify_directly_issued_by(ca)
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    # The cloud-config dials provision-autoscaler.provision-system.svc:8086.
    assert NAMES[0] in sans.get_values_for_type(x509.DNSName)
    usage = client.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_a_leaf_near_its_end_is_made_again(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    first = autoscaler_tls.ensure(tmp_path, NAMES)
    monkeypatch.setattr(autoscaler_tls, "RENEW_DAYS", autoscaler_tls.LEAF_DAYS + 1)
    again = autoscaler_tls.ensure(tmp_path, NAMES)
    assert again.ca == first.ca and again.server != first.server


def test_a_damaged_ca_is_refused_not_replaced(tmp_path: Path) -> None:
    autoscaler_tls.ensure(tmp_path, NAMES)
    key = tmp_path / "autoscaler" / "ca.key"
    key.write_bytes(b"not a key")
    (tmp_path / "autoscaler" / "server.crt").unlink()
    with pytest.raises(UsageError, match="cannot use the autoscaler link's CA"):
        autoscaler_tls.ensure(tmp_path, NAMES)
    assert key.read_bytes() == b"not a key"
