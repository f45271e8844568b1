"""Backup objects: what the node agent seals (with the openssl CLI), provision opens.

The agent encrypts with ``openssl enc -aes-256-ctr`` and wraps the keys with ``openssl
pkeyutl`` (RSA-OAEP, SHA-256 and MGF1-SHA-256); provisioner/backup/envelope.py reads the
result with ``cryptography``. ``openssl enc`` takes a raw key only as ``-K`` on its command
line; the agent passes a password on a pipe instead and relies on OpenSSL 3.0's documented
derivation for ``-nosalt -md sha256`` without -pbkdf2 (openssl-enc(1): EVP_BytesToKey with
one iteration, i.e. key = SHA-256(password) for a 32-byte key), which these round trips
check against an independent AES-CTR implementation.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import stat
import sys
import tarfile
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from provisioner.agents import etcd_backup
from provisioner.backup import BackupError
from provisioner.backup.archive import unpack
from provisioner.backup.envelope import open_archive
from provisioner.errors import ProvisionError

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None,
                                reason="the openssl CLI the agent runs is not installed")


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=3072)


def _pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


KEY = _key()
PRIVATE = _pem(KEY)
RECIPIENT = KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
IDENT = "20260307T030000Z-prod-cp-1"


def _archive(tmp_path: Path, snapshot: bytes = b"etcd snapshot " * 1000) -> Path:
    pki = tmp_path / "pki"
    (pki / "etcd").mkdir(parents=True)
    for name in etcd_backup.PKI_FILES:
        (pki / name).write_text(f"contents of {name}\n")
    db = tmp_path / "snapshot.db"
    db.write_bytes(snapshot)
    meta = {"format": etcd_backup.FORMAT, "environment": "prod", "id": IDENT,
            "taken_at": "2026-03-07T03:00:00Z", "node": "prod-cp-1",
            "snapshot_sha256": etcd_backup.file_sha256(db), "snapshot_bytes": len(snapshot)}
    out = tmp_path / "archive.tar.gz"
    etcd_backup.pack(db, meta, pki, out)
    return out


def _sealed(tmp_path: Path, plain: Path | None = None) -> bytes:
    plain = plain or _archive(tmp_path)
    out = tmp_path / "object.pbk"
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    etcd_backup.seal(plain, out, RECIPIENT, {"id": IDENT, "environment": "prod",
                                             "taken_at": "2026-03-07T03:00:00Z"}, work)
    return out.read_bytes()


def test_round_trip_restores_every_file(tmp_path: Path) -> None:
    data = _sealed(tmp_path)
    header = json.loads(data[:data.index(b"\n")])
    assert header["format"] == "provision-etcd-backup/1" and header["cipher"] == "aes-256-ctr"
    plaintext = open_archive(data, PRIVATE)
    assert plaintext == (tmp_path / "archive.tar.gz").read_bytes()
    meta = unpack(plaintext, tmp_path / "out")
    assert meta["id"] == IDENT
    assert (tmp_path / "out" / "snapshot.db").read_bytes() == b"etcd snapshot " * 1000
    assert (tmp_path / "out" / "pki" / "etcd" / "ca.key").read_text() == \
        "contents of etcd/ca.key\n"
    assert stat.S_IMODE((tmp_path / "out" / "pki" / "ca.key").stat().st_mode) == 0o600
    assert issubclass(BackupError, ProvisionError) and BackupError.exit_code == 1


def test_every_flipped_byte_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    data = _sealed(tmp_path)
    header_end = data.index(b"\n")
    key_field = data.index(b'"key":"')
    key_end = data.index(b'"', key_field + 7)
    positions = sorted({0, 5, key_field - 3, key_end + 3, header_end - 2, header_end,
                        header_end + 1, (header_end + len(data)) // 2, len(data) - 33,
                        len(data) - 32, len(data) - 1} | set(range(key_field + 10, key_end, 97)))
    for position in positions:
        damaged = bytearray(data)
        damaged[position] ^= 0x01
        with pytest.raises(BackupError) as raised:
            open_archive(bytes(damaged), PRIVATE)
        if not key_field <= position <= key_end and position > 40 and position != header_end:
            # a flip in the wrapped key cannot be told from another recipient's object
            assert str(raised.value) == (f"snapshot {IDENT} is corrupted or truncated: its "
                                         "checksum does not match"), position
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cut", [1, 31, 32, 33, "half", "all but the header"])
def test_a_truncated_object_is_refused(tmp_path: Path, cut: int | str) -> None:
    data = _sealed(tmp_path)
    body = data.index(b"\n") + 1
    end = (len(data) - cut if isinstance(cut, int)
           else {"half": (body + len(data)) // 2, "all but the header": body}[cut])
    with pytest.raises(BackupError, match=f"snapshot {IDENT} is corrupted or truncated"):
        open_archive(data[:end], PRIVATE)


def test_truncated_inside_the_header_or_empty_is_refused(tmp_path: Path) -> None:
    data = _sealed(tmp_path)
    for cut in (data[:0], data[:20], data[:data.index(b"\n")]):
        with pytest.raises(BackupError, match=r"snapshot x\.pbk is corrupted or truncated"):
            open_archive(cut, PRIVATE, "x.pbk")


def test_another_private_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BackupError, match=f"snapshot {IDENT} cannot be opened with this "
                                          "recipient key"):
        open_archive(_sealed(tmp_path), _pem(_key()))


def test_no_key_material_on_openssls_command_line(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Any local user reads /proc/<pid>/cmdline: neither K_enc nor the password that derives
    it may be an argument (a recording openssl wraps the real one; the keys come from the
    object, unwrapped with the private key)."""
    real = shutil.which("openssl")
    shim = tmp_path / "bin" / "openssl"
    shim.parent.mkdir()
    log = tmp_path / "argv.log"
    shim.write_text(f"#!{sys.executable}\nimport os, sys, json\n"
                    f"open({str(log)!r}, 'a').write(json.dumps(sys.argv) + '\\n')\n"
                    f"os.execv({real!r}, [{real!r}, *sys.argv[1:]])\n")
    shim.chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim.parent}{os.pathsep}{os.environ['PATH']}")
    data = _sealed(tmp_path)
    argvs = [json.loads(line) for line in log.read_text().splitlines()]
    assert [a[1] for a in argvs] == ["pkeyutl", "enc"]
    header = json.loads(data[:data.index(b"\n")])
    keys = KEY.decrypt(base64.b64decode(header["key"]),
                       padding.OAEP(mgf=padding.MGF1(hashes.SHA256()),
                                    algorithm=hashes.SHA256(), label=None))
    arguments = " ".join(" ".join(a) for a in argvs).lower()
    for secret in (keys[:32], keys[32:]):
        assert secret.hex() not in arguments
    assert header["iv"] in arguments  # the IV is public; its presence shows the log works
    assert open_archive(data, PRIVATE)


def _tar(members: list[tuple[tarfile.TarInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, content in members:
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _meta(snapshot: bytes) -> bytes:
    import hashlib

    return json.dumps({"format": etcd_backup.FORMAT, "id": IDENT,
                       "snapshot_sha256": hashlib.sha256(snapshot).hexdigest()}).encode()


@pytest.mark.parametrize("name", ["../escaped", "/etc/escaped", "pki/../../escaped"])
def test_unpack_refuses_members_outside_the_folder(tmp_path: Path, name: str) -> None:
    archive = _tar([(tarfile.TarInfo("meta.json"), _meta(b"db")),
                    (tarfile.TarInfo("snapshot.db"), b"db"), (tarfile.TarInfo(name), b"x")])
    with pytest.raises(BackupError, match="not a plain file inside it"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists() and not (tmp_path / "escaped").exists()


def test_unpack_refuses_links(tmp_path: Path) -> None:
    link = tarfile.TarInfo("pki/ca.key")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/shadow"
    archive = _tar([(tarfile.TarInfo("meta.json"), _meta(b"db")),
                    (tarfile.TarInfo("snapshot.db"), b"db"), (link, b"")])
    with pytest.raises(BackupError, match="not a plain file"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unpack_checks_the_snapshots_checksum(tmp_path: Path) -> None:
    archive = _tar([(tarfile.TarInfo("meta.json"), _meta(b"the snapshot taken")),
                    (tarfile.TarInfo("snapshot.db"), b"another snapshot")])
    with pytest.raises(BackupError, match=r"does not match the SHA-256 its meta\.json records"):
        unpack(archive, tmp_path / "out")
    assert not (tmp_path / "out").exists()
