"""The copy of snapshot.db the restoring node downloads: staged, presigned, deleted.

The backup object is opened on this machine only (the recipient key never leaves
provision), so the node gets ``snapshot.db`` alone, re-encrypted under a one-time password
(backup/restore_copy.py), at ``<prefix>/restore/<id>-<random>.db.enc`` in the backup
bucket, through a presigned GET URL (cloud/presign.py): no Spaces key reaches its
user-data. The URL, the password and the plaintext's SHA-256 go to the first control-plane
node as the late-bound values restore_url, restore_key and restore_sha256, never to disk.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field

from provisioner.backup import restore_copy
from provisioner.cloud.backup_bucket import BackupBucket, credentials
from provisioner.cloud.presign import presigned_get
from provisioner.config.model import Backups
from provisioner.errors import ProvisionError, UsageError
from provisioner.render.artefacts import RESTORE_URL_BYTES

# How long the URL works: Terraform creates the droplet (a minute or two, longer when the
# region is busy or the apply waits on other resources), cloud-init installs packages and
# containerd (minutes) and bootstrap.sh retries the download. Two hours covers a slow boot
# many times over, and is short enough that a URL read from the droplet's metadata later
# fetches nothing (the copy is deleted once the restore is done in any case).
URL_SECONDS = 2 * 3600


@dataclass(frozen=True)
class Staged:
    """The uploaded copy and what the node needs to use it."""

    key: str
    url: str = field(repr=False)  # grants reading the copy until it expires
    password: str = field(repr=False)
    sha256: str
    expires_at: str

    def values(self) -> dict[str, str]:
        """The late-bound values (render/markers.py RESTORE_VALUES)."""
        return {"restore_url": self.url, "restore_key": self.password,
                "restore_sha256": self.sha256}


def copy_key(backups: Backups, snapshot_id: str) -> str:
    """``<prefix>/restore/<id>-<8 hex>.db.enc``: a new key per attempt, never guessed."""
    return f"{backups.prefix}/restore/{snapshot_id}-{secrets.token_hex(4)}.db.enc"


def stage(backups: Backups, snapshot_id: str, snapshot: bytes) -> Staged:
    """Seal ``snapshot`` under a one-time password, upload it, presign its GET."""
    sealed = restore_copy.seal(snapshot)
    key = copy_key(backups, snapshot_id)
    access, secret = credentials()
    # Signed with the real time: Spaces compares X-Amz-Date with its own clock.
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    url = presigned_get(backups.endpoint, backups.bucket, key, access, secret, now,
                        URL_SECONDS)
    if len(url.encode()) > RESTORE_URL_BYTES:  # checked before anything is uploaded
        raise UsageError(
            f"the presigned URL of the restore copy would be {len(url.encode())} bytes, more "
            f"than the {RESTORE_URL_BYTES} the first node's user-data has room for: use a "
            "shorter backups.prefix or endpoint; nothing was changed")
    BackupBucket(backups).put(key, sealed.body)
    expires = (now + dt.timedelta(seconds=URL_SECONDS)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return Staged(key, url, sealed.password, sealed.sha256, expires)


def remove(backups: Backups, key: str, say: Callable[[str], None]) -> bool:
    """Delete the staged copy; on failure say what is left and how to remove it."""
    if not key:
        return True
    try:
        BackupBucket(backups).delete(key)
    except ProvisionError as e:
        say(f"could not delete the restore copy s3://{backups.bucket}/{key} ({e}); it is "
            "encrypted under a one-time password only the first control-plane node's "
            "user-data holds, so it is of no use to anyone: delete it with any S3 client "
            f"(e.g. `s3cmd del s3://{backups.bucket}/{key}`) or in the control panel")
        return False
    say(f"deleted the restore copy s3://{backups.bucket}/{key}")
    return True
