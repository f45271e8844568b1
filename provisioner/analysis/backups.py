"""What `check` says about etcd backups: none configured (offline), none recent (online).

The agents' record (kube-system/provision-etcd-backup, provisioner/cluster/backup_record.py)
holds the newest snapshot's time and the last failure. A snapshot is due every
``backups.every``; one missed pass can be a slow upload, two are not: the newest snapshot is
stale when it is older than twice the interval plus five minutes (the agents' timer runs
every minute and starts two minutes after boot).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from provisioner.analysis.spof import Finding, Severity
from provisioner.config.model import Backups, Environment
from provisioner.node_facts import parse_instant

SUBJECT = "etcd backups"
GRACE = dt.timedelta(minutes=5)


def stale_after(backups: Backups) -> dt.timedelta:
    """How old the newest snapshot may be before `check` reports it."""
    return 2 * dt.timedelta(seconds=backups.every) + GRACE


def summary(record: dict[str, str] | None, backups: Backups, now: dt.datetime
            ) -> dict[str, Any]:
    """The record as status shows it: the newest snapshot, its age, the last failure."""
    record = record or {}
    at = parse_instant(record.get("last-snapshot-at"))
    error_at = parse_instant(record.get("last-error-at"))
    size = record.get("last-snapshot-bytes", "")
    return {
        "last_snapshot_at": record.get("last-snapshot-at") if at else None,
        "age_seconds": max(0, int((now - at).total_seconds())) if at else None,
        "key": record.get("last-snapshot-key"),
        "node": record.get("last-snapshot-node"),
        "bytes": int(size) if size.isdigit() else None,
        "stale": at is None or now - at > stale_after(backups),
        # A failure after the newest snapshot is still the state of things.
        "last_error": record.get("last-error") if error_at and (at is None or error_at >= at)
        else None,
        "last_error_at": record.get("last-error-at") if error_at and (
            at is None or error_at >= at) else None,
    }


def offline(env: Environment) -> list[Finding]:
    """From the file alone: no `backups:` section means no snapshot to restore from."""
    if env.backups is not None:
        return []
    return [Finding("medium", SUBJECT, "no `backups:` section: etcd is never snapshotted, so "
                    "losing a majority of the control plane loses the cluster's state",
                    "add `backups: {bucket: NAME}` to the environment file (a Spaces bucket "
                    "that exists) and run `provision up`")]


def online(env: Environment, config: str, record: dict[str, str] | None,
           now: dt.datetime) -> list[Finding]:
    """From the agents' record, read at ``now``."""
    if env.backups is None:
        return []
    if record is None:
        return [Finding("high", SUBJECT, "kube-system/provision-etcd-backup does not exist: "
                        "no agent has recorded a snapshot",
                        f"run `provision up {config}` (it creates the record and the agents' "
                        "Secret)")]
    state = summary(record, env.backups, now)
    found: list[Finding] = []
    if state["last_error"]:
        found.append(Finding("high", SUBJECT, f"the last pass failed at "
                             f"{state['last_error_at']}: {state['last_error']}",
                             "journalctl -u provision-etcd-backup on the etcd leader; then "
                             f"`provision backup {config}` to try again"))
    if state["stale"]:
        limit = int(stale_after(env.backups).total_seconds() // 60)
        problem = (f"the newest snapshot is from {state['last_snapshot_at']}, more than "
                   f"{limit} minutes ago" if state["last_snapshot_at"]
                   else "no snapshot has been recorded")
        # Never recorded: a new cluster's first pass runs minutes after boot.
        severity: Severity = "high" if state["last_snapshot_at"] else "medium"
        found.append(Finding(severity, SUBJECT, problem,
                             f"`provision backup {config}` takes one now; if it fails, "
                             "systemctl status provision-etcd-backup.timer on the "
                             "control-plane nodes"))
    return found
