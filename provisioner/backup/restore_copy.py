"""The copy of an etcd snapshot the restoring control-plane node downloads.

`provision restore` opens a backup object on the operator's machine (envelope.py: only
provision holds the recipient key, never a node) and hands the first new control-plane
node just ``snapshot.db``, re-encrypted under a one-time password, through a presigned
URL. Its user-data carries the URL, the password and the SHA-256 of the plaintext as
late-bound values (render/markers.py: ``restore_url``, ``restore_key``,
``restore_sha256``), never written to a rendered file.

The copy is plain AES-256-CTR, the form the node decrypts with the openssl it has:
``openssl enc -d -aes-256-ctr -nosalt -md sha256 -pass file:KEYFILE``. With -nosalt and no
-pbkdf2, openssl derives key and IV by EVP_BytesToKey with one SHA-256 round:
D1 = SHA-256(password), D2 = SHA-256(D1 || password), key = D1, IV = D2[:16] (OpenSSL 3.0
openssl-enc(1) and EVP_BytesToKey(3); tests/unit/test_restore_copy.py decrypts with the real
openssl). The password is 32 random bytes in hex, used once, so a key and IV derived
without salt are never reused. CTR does not authenticate: the node checks the plaintext's
SHA-256 from its user-data (a channel the copy's URL cannot alter) before etcd sees a byte.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes


@dataclass(frozen=True)
class Sealed:
    """The copy to upload and the two values the node needs to use it."""

    body: bytes
    password: str  # 64 hex characters (the late-bound restore_key)
    sha256: str  # of the plaintext snapshot.db (the late-bound restore_sha256)

    def __repr__(self) -> str:  # never the password, e.g. in a traceback or a log line
        return f"Sealed({len(self.body)} bytes, sha256={self.sha256})"


def _key_iv(password: str) -> tuple[bytes, bytes]:
    secret = password.encode("ascii")
    first = hashlib.sha256(secret).digest()
    second = hashlib.sha256(first + secret).digest()
    return first, second[:16]


def seal(snapshot: bytes) -> Sealed:
    """`snapshot` (etcd's snapshot.db) encrypted under a new one-time password."""
    password = secrets.token_hex(32)
    key, iv = _key_iv(password)
    encryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).encryptor()
    body = encryptor.update(snapshot) + encryptor.finalize()
    return Sealed(body, password, hashlib.sha256(snapshot).hexdigest())


def unseal(body: bytes, password: str) -> bytes:
    """The inverse of `seal` (what the node's openssl does), for tests and checks."""
    key, iv = _key_iv(password)
    decryptor = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor()
    return decryptor.update(body) + decryptor.finalize()
