"""The restore copy (provisioner/backup/restore_copy.py) against the real openssl.

The node decrypts with ``openssl enc -d -aes-256-ctr -nosalt -md sha256 -pass file:F``:
OpenSSL 3.0's openssl-enc(1) ("-nosalt", "-md"; without -pbkdf2 the key and IV come from
EVP_BytesToKey, EVP_BytesToKey(3)) is the judge of provision's derivation, so the test runs
that exact command on what `seal` made.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.backup import restore_copy

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")


def _openssl_decrypt(body: bytes, password: str, tmp_path: Path) -> bytes:
    key = tmp_path / "key"
    key.write_text(password + "\n")
    key.chmod(0o600)
    done = subprocess.run(["openssl", "enc", "-d", "-aes-256-ctr", "-nosalt", "-md", "sha256",
                           "-pass", f"file:{key}"], input=body, capture_output=True,
                          check=True)
    return done.stdout


@pytest.mark.parametrize("size", [0, 1, 15, 16, 17, 4096, 1_000_003])
def test_openssl_opens_the_copy(size: int, tmp_path: Path) -> None:
    snapshot = os.urandom(size)
    sealed = restore_copy.seal(snapshot)
    assert _openssl_decrypt(sealed.body, sealed.password, tmp_path) == snapshot
    assert sealed.sha256 == hashlib.sha256(snapshot).hexdigest()
    assert restore_copy.unseal(sealed.body, sealed.password) == snapshot


def test_each_copy_has_its_own_password_and_hides_the_plaintext(tmp_path: Path) -> None:
    snapshot = b"etcd" * 1000
    one, two = restore_copy.seal(snapshot), restore_copy.seal(snapshot)
    assert one.password != two.password and one.body != two.body
    assert b"etcdetcd" not in one.body
    assert _openssl_decrypt(one.body, two.password, tmp_path) != snapshot


def test_repr_never_shows_the_password() -> None:
    sealed = restore_copy.seal(b"x" * 10)
    assert sealed.password not in repr(sealed) and sealed.password not in str(sealed)
