"""The three things an upgrade needs from elsewhere, as narrow seams.

* ``preflight(env, api, now) -> Gate``: may the cluster go to the file's version at all
  (blocking findings stop the upgrade with exit 2, warnings are shown): the preflight `plan`
  shows (provisioner/upgrade/preflight.py).
* ``window(env, now, override_reason, say)``: raise (exit 3) outside the deploy windows or
  inside a freeze unless overridden with a reason: the one freeze calendar
  (provisioner/pipeline/change_window.py, kind ``upgrades``).
* ``snapshot(env, api, say) -> str``: take an etcd snapshot and wait until it is stored;
  its object key. `provision backup`'s request and wait (provisioner/pipeline/backup_now.py)
  through the backup agents' record, ConfigMap kube-system/provision-etcd-backup.

The orchestration (orchestrate.py) only sees the ``Seams``, so its tests can give it others.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.config.model import Environment
from provisioner.errors import ProvisionError, UsageError
from provisioner.kube import KubeError

Say = Callable[[str], None]
SNAPSHOT_TIMEOUT = 20 * 60.0  # the agent's timer (60 s), the snapshot and its upload
SNAPSHOT_POLL = 5.0


class SnapshotFailed(ProvisionError):
    """No snapshot could be taken; nothing was changed."""


@dataclass(frozen=True)
class Gate:
    """What the preflight found."""

    current: str  # the cluster's lowest kubelet or API server version
    target: str
    blocking: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


Preflight = Callable[[Environment, Any, dt.datetime], Gate]
# (env, now, override reason, say, what a refusal leaves: "; nothing was changed" or more)
WindowCheck = Callable[[Environment, dt.datetime, "str | None", Say, str], None]
Snapshot = Callable[[Environment, Any, Say], str]


@dataclass(frozen=True)
class Seams:
    preflight: Preflight
    window: WindowCheck
    snapshot: Snapshot


def default() -> Seams:
    return Seams(preflight_gate, upgrade_window, snapshot_first)


def _text(finding: Any) -> str:
    objects = ", ".join(finding.objects[:10])
    more = f" and {len(finding.objects) - 10} more" if len(finding.objects) > 10 else ""
    return f"{finding.message} ({objects}{more})" if objects else str(finding.message)


def preflight_gate(env: Environment, api: Any, now: dt.datetime) -> Gate:
    """The upgrade preflight's findings, as the orchestration reads them."""
    from provisioner.upgrade import preflight

    result = preflight.check(env, api, now)
    return Gate(result.current, result.target, [_text(f) for f in result.blocking],
                [_text(f) for f in result.warnings])


def upgrade_window(env: Environment, now: dt.datetime, override_reason: str | None,
                   say: Say, consequence: str = "; nothing was changed") -> None:
    """The deploy windows and freezes, as far as ``deploy_policy.applies_to`` has upgrades;
    ``consequence`` says, in a refusal, what the refused run leaves behind."""
    from provisioner.pipeline import change_window

    change_window.check_window(env, "upgrades", now, override_reason, say,
                               consequence=consequence)


def snapshot_first(env: Environment, api: Any, say: Say) -> str:
    """An etcd snapshot stored in the backup bucket before anything changes: its key."""
    from provisioner.cluster import backup_record
    from provisioner.pipeline import backup_now

    if env.backups is None:
        raise UsageError(
            f"an upgrade takes an etcd snapshot before it changes anything, and {env.name} "
            "has no `backups:` section: add one (README: Etcd backups) and run `provision "
            "up`; nothing was changed")
    try:
        record = backup_record.read_record(api)
    except KubeError as e:
        raise ProvisionError(f"cannot read the backup record: {e}; nothing was changed") from e
    if record is None:
        raise UsageError(
            f"an upgrade takes an etcd snapshot first, and {env.name}'s cluster has no backup "
            "record (ConfigMap kube-system/provision-etcd-backup): run `provision up` so the "
            "control-plane nodes get it; nothing was changed")
    try:
        taken = backup_now.take(api, say, timeout=SNAPSHOT_TIMEOUT, sleep=_sleep)
    except backup_now.BackupFailed as e:
        raise SnapshotFailed(f"{e}; nothing was changed") from e
    return taken.key


def _sleep(seconds: float) -> None:
    time.sleep(min(seconds, SNAPSHOT_POLL))
