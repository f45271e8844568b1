"""Unpack the plaintext archive of an etcd backup (a .tar.gz, see envelope.py).

Members: snapshot.db, meta.json and pki/... Every member is checked (a regular file, a name
inside the destination, the snapshot's SHA-256 as meta.json records it) before anything is
written; files are written 0600 in a 0700 folder: they hold the cluster's CA keys.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from pathlib import Path, PurePosixPath
from typing import Any

from provisioner.backup import BackupError
from provisioner.backup.envelope import FORMAT


def unpack(plaintext: bytes, dest: Path) -> dict[str, Any]:
    """Write the archive's files under `dest` (created); its meta.json."""
    files: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(plaintext), mode="r:gz") as tar:
            for member in tar:
                path = PurePosixPath(member.name)
                if member.isdir():
                    continue
                if (not member.isfile() or path.is_absolute() or ".." in path.parts
                        or not path.parts or str(path) in files):
                    raise BackupError(f"the backup archive holds {member.name!r}, which "
                                      "is not a plain file inside it: refused")
                extracted = tar.extractfile(member)
                files[str(path)] = extracted.read() if extracted else b""
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupError(f"the backup archive cannot be read: {e}") from None
    try:
        meta = json.loads(files["meta.json"])
        recorded = meta["snapshot_sha256"]
    except (KeyError, ValueError, TypeError):
        raise BackupError("the backup archive has no readable meta.json") from None
    if meta.get("format") != FORMAT:
        raise BackupError(f"the backup archive is format {meta.get('format')!r}, not {FORMAT}")
    snapshot = files.get("snapshot.db")
    if snapshot is None or hashlib.sha256(snapshot).hexdigest() != recorded:
        raise BackupError(f"snapshot {meta.get('id', '?')}: snapshot.db does not match the "
                          "SHA-256 its meta.json records")
    dest.mkdir(parents=True, exist_ok=True, mode=0o700)
    root = dest.resolve()
    for name, content in files.items():
        target = (root / name).resolve()
        if not target.is_relative_to(root):
            raise BackupError(f"the backup archive member {name!r} leads outside {dest}")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW,
                             0o600)
        with open(descriptor, "wb") as handle:
            handle.write(content)
    return dict(meta)
