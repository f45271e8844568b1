"""Reading etcd backups: the objects the node agent (provisioner/agents/etcd_backup.py)
uploads. envelope.py opens an object (checks its tag, decrypts), archive.py unpacks it."""

from __future__ import annotations

from provisioner.errors import ProvisionError


class BackupError(ProvisionError):
    """A backup cannot be read or trusted (corrupted, truncated, wrong key, bad archive)."""
