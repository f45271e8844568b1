"""`provision backup`: ask the control-plane agents for a snapshot now, or list the bucket.

Taking one is the agents' job (provisioner/agents/etcd_backup.py); provision writes
``requested-at`` into their record (kube-system/provision-etcd-backup) and waits until the
agent echoes that value back: ``answered-request`` with the stored snapshot, or
``failed-request`` with the error. Answers are matched by value, never by comparing this
machine's clock with the node's (a slow clock here would take an older snapshot for the
answer; a fast one would make the agent snapshot every minute). The agents' timer asks every
minute whether a snapshot is due, so a request is seen within about a minute.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.config.model import Backups, Environment
from provisioner.errors import ProvisionError, UsageError

DEFAULT_TIMEOUT = 600.0
POLL_SECONDS = 2.0
Report = Callable[[str], None]


class BackupFailed(ProvisionError):
    """The agent recorded a failure, or no snapshot arrived in time (exit 1)."""


@dataclass(frozen=True)
class Taken:
    """The snapshot the agent recorded for this request."""

    key: str
    node: str
    bytes: int | None
    taken_at: str
    requested_at: str

    def as_dict(self) -> dict[str, Any]:
        return {"key": self.key, "node": self.node, "bytes": self.bytes,
                "taken_at": self.taken_at, "requested_at": self.requested_at}


def rfc3339(instant: dt.datetime) -> str:
    """``2026-12-07T10:00:00Z``: the record's format (UTC, whole seconds)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def configured(env: Environment, config: Path) -> Backups:
    """The file's backups section, or the fix when there is none (exit 2)."""
    if env.backups is None:
        raise UsageError(f"{config}: no `backups:` section, so no node takes snapshots: add "
                         "one (e.g. backups: {bucket: acme-etcd-backups}) and run "
                         "`provision up` (README: Etcd backups)")
    return env.backups


def judge(record: dict[str, str], requested_text: str) -> Taken | None:
    """The snapshot answering the request, None while there is none; raise on a failure.

    A later request that replaced ours (another `provision backup`) was written after ours,
    so its answer, a snapshot taken after the agent read it, answers ours too."""
    ours = {requested_text, record.get("requested-at") or requested_text}
    if record.get("answered-request") in ours and record.get("last-snapshot-at"):
        size = record.get("last-snapshot-bytes", "")
        return Taken(record.get("last-snapshot-key", ""), record.get("last-snapshot-node", ""),
                     int(size) if size.isdigit() else None, record["last-snapshot-at"],
                     requested_text)
    if record.get("failed-request") in ours:
        raise BackupFailed(f"the snapshot failed at {record.get('last-error-at') or '?'}: "
                           f"{record.get('last-error') or 'no reason recorded'} (the agent's "
                           "log: journalctl -u provision-etcd-backup on the etcd leader)")
    return None


def take(api: Any, report: Report, timeout: float = DEFAULT_TIMEOUT,
         sleep: Callable[[float], None] = time.sleep) -> Taken:
    """Request a snapshot and wait for the agents' answer."""
    from provisioner.cluster import backup_record
    from provisioner.kube import KubeError

    try:
        missing = backup_record.without_agent(api)
    except KubeError as e:
        raise ProvisionError(f"cannot list the control-plane nodes: {e}") from e
    if missing:
        raise UsageError(
            f"no etcd backup agent reports on {', '.join(missing)}: the etcd leader may be "
            "one of them, so a snapshot may never come. Nodes made before `backups:` was set "
            "(or by an older provision) lack it: replace them one at a time with `provision "
            "up --replace NAME`; a new node's agent reports within about 3 minutes of boot. "
            "Nothing was requested")
    requested = clock.now().replace(microsecond=0)
    text = rfc3339(requested)
    try:
        backup_record.request_snapshot(api, text)
    except KubeError as e:
        raise ProvisionError(f"cannot ask for a snapshot: {e}") from e
    report(f"snapshot requested at {text}; waiting for the etcd leader's agent "
           f"(up to {timeout:.0f} s)")
    deadline = time.monotonic() + timeout
    while True:
        try:
            record = backup_record.read_record(api) or {}
        except KubeError as e:
            if time.monotonic() >= deadline:
                raise ProvisionError(f"cannot read the backup record: {e}") from e
            record = {}
        taken = judge(record, text)
        if taken is not None:
            return taken
        if time.monotonic() >= deadline:
            raise BackupFailed(
                f"no snapshot recorded within {timeout:.0f} s of the request ({text}): the "
                "agents ask every minute; look at `systemctl status provision-etcd-backup."
                "timer` and `journalctl -u provision-etcd-backup` on the control-plane nodes")
        sleep(POLL_SECONDS)


def taken_at(snapshot_id: str) -> dt.datetime | None:
    """The instant an ID names (``20261207T100000Z-prod-cp-1``), None if it names none."""
    try:
        return dt.datetime.strptime(snapshot_id.split("-", 1)[0], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=dt.UTC)
    except ValueError:
        return None


def listing(backups: Backups, now: dt.datetime) -> list[dict[str, Any]]:
    """The bucket's snapshots, newest first, with their age in seconds: from the time the
    ID names (when the snapshot was taken), else from the object's upload time."""
    from provisioner.cloud.backup_bucket import BackupBucket

    items = []
    for s in BackupBucket(backups).snapshots():
        when = taken_at(s.id) or s.modified
        items.append({"id": s.id, "kind": s.kind, "key": s.key, "bytes": s.size,
                      "taken_at": rfc3339(when),
                      "age_seconds": max(0, int((now - when).total_seconds()))})
    return items


def format_listing(backups: Backups, items: list[dict[str, Any]]) -> str:
    """One line per snapshot: ID, kind, age, size."""
    from provisioner.status import age_text

    where = f"s3://{backups.bucket}/{backups.prefix}/"
    if not items:
        return f"no snapshots under {where} yet\n"
    width = max(len(i["id"]) for i in items)
    lines = [f"snapshots under {where} (newest first)",
             f"{'ID':<{width}}  {'KIND':<6}  {'AGE':>6}  SIZE"]
    lines += [f"{i['id']:<{width}}  {i['kind']:<6}  {age_text(i['age_seconds']):>6}  "
              f"{size_text(i['bytes'])}" for i in items]
    return "\n".join(lines) + "\n"


def size_text(size: int | None) -> str:
    """``12.3 MiB``; ``-`` when unknown."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"
