"""The backups' Spaces bucket as provision sees it: that it exists, and what it holds.

The agents write to it (provisioner/agents/etcd_backup.py); provision only checks it before
`up`/`plan`, lists it for `provision backup --list`, downloads one for `--fetch`, and puts
(then deletes) the one-time copy `provision restore` stages under `<prefix>/restore/`, with
the Spaces key the operator exported (SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY, or
AWS_*), as for remote state.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from provisioner.config.model import Backups
from provisioner.errors import UsageError

PURPOSE = "backups: is set"


@dataclass(frozen=True)
class Snapshot:
    """One object in the bucket."""

    id: str
    kind: str  # hourly or daily
    key: str
    size: int
    modified: dt.datetime


AGENT_KEY = ("PROVISION_BACKUP_ACCESS_KEY_ID", "PROVISION_BACKUP_SECRET_ACCESS_KEY")


def credentials() -> tuple[str, str]:
    """The Spaces key pair provision checks and lists the bucket with (the operator's)."""
    from provisioner.cloud.spaces import credentials as spaces_credentials

    return spaces_credentials(PURPOSE)


def agent_credentials(warn: Callable[[str], None]) -> tuple[str, str]:
    """The Spaces key the control-plane nodes get: a key of its own when exported (a
    DigitalOcean Spaces key limited to the backup bucket), else the operator's, with a
    warning: that key can also reach the Terraform state and delete every snapshot, from any
    node or anyone who can read Secrets in kube-system."""
    access, secret = (os.environ.get(name, "").strip() for name in AGENT_KEY)
    if access and secret:
        return access, secret
    if access or secret:
        raise UsageError(f"export both {AGENT_KEY[0]} and {AGENT_KEY[1]} (the Spaces key the "
                         "control-plane nodes upload snapshots with), or neither")
    warn(f"warning: the control-plane nodes get the Spaces key you exported for backups; "
         f"give them a key limited to the backup bucket: export {AGENT_KEY[0]} and "
         f"{AGENT_KEY[1]} (README: Etcd backups)")
    return credentials()


@dataclass
class BackupBucket:
    """The environment's backup bucket."""

    backups: Backups
    _client: Any = field(default=None, repr=False)

    def client(self) -> Any:
        if self._client is None:
            from provisioner.cloud.spaces import s3_client

            access, secret = credentials()
            self._client = s3_client(self.backups.endpoint, access, secret)
        return self._client

    @property
    def where(self) -> str:
        return f"s3://{self.backups.bucket} at {self.backups.endpoint}"

    def check_exists(self) -> None:
        """HeadBucket: refuse a bucket that is missing or that this key may not use."""
        from botocore.exceptions import BotoCoreError, ClientError

        from provisioner.cloud.spaces import SpacesError, code_of, describe

        try:
            self.client().head_bucket(Bucket=self.backups.bucket)
        except ClientError as e:
            code = code_of(e)
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise UsageError(
                    f"backups.bucket: the bucket {self.where} does not exist: create it "
                    f"(e.g. in the control panel, region {self.backups.region}) or name an "
                    "existing one") from e
            if code in ("403", "AccessDenied", "Forbidden"):
                raise UsageError(
                    f"backups.bucket: the Spaces key may not use {self.where} (403): give "
                    "SPACES_ACCESS_KEY_ID a key with access to it") from e
            raise SpacesError(f"cannot check {self.where}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot reach {self.where}: {e}") from e

    def snapshots(self) -> list[Snapshot]:
        """Every object under ``<prefix>/hourly/`` and ``<prefix>/daily/``, newest first."""
        from botocore.exceptions import BotoCoreError, ClientError

        from provisioner.cloud.spaces import SpacesError, describe

        found: list[Snapshot] = []
        for kind in ("hourly", "daily"):
            prefix = f"{self.backups.prefix}/{kind}/"
            try:
                pages = self.client().get_paginator("list_objects_v2").paginate(
                    Bucket=self.backups.bucket, Prefix=prefix)
                for page in pages:
                    for item in page.get("Contents", []):
                        key = str(item["Key"])
                        name = key[len(prefix):]
                        found.append(Snapshot(name.removesuffix(".pbk"), kind, key,
                                              int(item.get("Size", 0)), item["LastModified"]))
            except ClientError as e:
                raise SpacesError(f"cannot list {self.where}/{prefix}: {describe(e)}") from e
            except BotoCoreError as e:
                raise SpacesError(f"cannot reach {self.where}: {e}") from e
        # IDs begin with the UTC time (%Y%m%dT%H%M%SZ): key order is time order.
        return sorted(found, key=lambda s: (s.id, s.kind), reverse=True)

    def download(self, key: str, sink: BinaryIO) -> bool:
        """GetObject ``key`` into ``sink`` (streamed); False when there is no such object."""
        from botocore.exceptions import BotoCoreError, ClientError

        from provisioner.cloud.spaces import SpacesError, code_of, describe

        try:
            body = self.client().get_object(Bucket=self.backups.bucket, Key=key)["Body"]
            while chunk := body.read(1 << 20):
                sink.write(chunk)
        except ClientError as e:
            if code_of(e) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise SpacesError(f"cannot read {self.where}/{key}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot read {self.where}/{key}: {e}") from e
        return True

    def put(self, key: str, body: bytes) -> None:
        """PutObject ``key`` (private)."""
        from botocore.exceptions import BotoCoreError, ClientError

        from provisioner.cloud.spaces import SpacesError, describe

        try:
            self.client().put_object(Bucket=self.backups.bucket, Key=key, Body=body,
                                     ContentType="application/octet-stream", ACL="private")
        except ClientError as e:
            raise SpacesError(f"cannot write {self.where}/{key}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot write {self.where}/{key}: {e}") from e

    def delete(self, key: str) -> None:
        """DeleteObject ``key`` (S3 answers 204 for a key that is already gone)."""
        from botocore.exceptions import BotoCoreError, ClientError

        from provisioner.cloud.spaces import SpacesError, describe

        try:
            self.client().delete_object(Bucket=self.backups.bucket, Key=key)
        except ClientError as e:
            raise SpacesError(f"cannot delete {self.where}/{key}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot delete {self.where}/{key}: {e}") from e


def preflight(backups: Backups | None) -> None:
    """Before `up`/`plan` changes anything: the key is exported and the bucket exists."""
    if backups is None:
        return
    BackupBucket(backups).check_exists()
