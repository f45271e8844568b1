"""Open an etcd backup object: format "provision-etcd-backup/1" (README, "etcd backups").

Object = header line (compact JSON + b"\\n") + AES-256-CTR ciphertext + HMAC-SHA256 tag over
the header line and the ciphertext. The header's ``key`` is K_enc || K_mac wrapped with
RSA-OAEP (SHA-256, MGF1-SHA-256) to the recipient key. The tag is checked before any byte is
decrypted, so a corrupted or truncated object is refused before it is used anywhere.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from provisioner.backup import BackupError

FORMAT = "provision-etcd-backup/1"
TAG_BYTES = 32


def _corrupted(name: str) -> BackupError:
    return BackupError(f"snapshot {name} is corrupted or truncated: its checksum does not "
                       "match")


def read_header(data: bytes, ident: str | None = None) -> dict[str, Any]:
    """The header of an object (not yet authenticated: use it only to name the object)."""
    end = data.find(b"\n", 0, 64 * 1024)
    try:
        header = json.loads(data[:end]) if end > 0 else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise _corrupted(ident or "(unnamed)")
    return header


def open_archive(data: bytes, private_key_pem: bytes, ident: str | None = None) -> bytes:
    """The plaintext archive (a .tar.gz) of an object, after its tag and checksum match.

    `ident` names the snapshot in errors (else the header's id, which is not yet trusted).
    """
    header = read_header(data, ident)
    name = ident or str(header.get("id", "(unnamed)"))
    corrupted = _corrupted(name)
    body_start = data.index(b"\n") + 1
    if len(data) < body_start + TAG_BYTES:
        raise corrupted
    try:
        key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError) as e:
        raise BackupError(f"the backup recipient key cannot be read: {e}") from None
    if not isinstance(key, rsa.RSAPrivateKey):
        raise BackupError("the backup recipient key is not an RSA key")
    try:
        keys = key.decrypt(
            base64.b64decode(str(header.get("key", "")), validate=True),
            padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(),
                         label=None))
    except (ValueError, binascii.Error):
        raise BackupError(f"snapshot {name} cannot be opened with this recipient key (another "
                          "cluster's key, or the object's header is corrupted)") from None
    if len(keys) != 64:
        raise corrupted
    body, tag = data[body_start:-TAG_BYTES], data[-TAG_BYTES:]
    expected = hmac.new(keys[32:], data[:body_start], hashlib.sha256)
    expected.update(body)
    if not hmac.compare_digest(expected.digest(), tag):
        raise corrupted
    try:
        iv = bytes.fromhex(str(header["iv"]))
        if header.get("cipher") != "aes-256-ctr" or len(iv) != 16:
            raise ValueError(header.get("cipher"))
    except (KeyError, ValueError):
        raise BackupError(f"snapshot {name} uses a cipher this provision cannot read") from None
    decryptor = Cipher(algorithms.AES(keys[:32]), modes.CTR(iv)).decryptor()
    plaintext = decryptor.update(body) + decryptor.finalize()
    if (len(plaintext) != header.get("plaintext_bytes")
            or hashlib.sha256(plaintext).hexdigest() != header.get("plaintext_sha256")):
        raise corrupted
    return plaintext
