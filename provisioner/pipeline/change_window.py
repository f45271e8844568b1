"""One freeze calendar: may this kind of change happen now, or who overrode it and why.

The environment file's ``deploy_policy:`` (windows and freezes) governs every kind of change
listed in its ``applies_to:`` (default: all of them): deploying the apps, changing the
infrastructure (`up`, `destroy`) and upgrading Kubernetes. A kind not listed may change at
any time. Every command asks :func:`check_window` with its kind before it changes anything,
so a refusal reads the same, exits the same (3) and is overridden the same way
(``--override-window --reason TEXT``) whatever changes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner.config.model import ChangeKind, Environment
from provisioner.errors import ProvisionError
from provisioner.workloads import windows

Report = Callable[[str], None]

# How a refusal and an override name each kind of change.
_CHANGES: dict[ChangeKind, str] = {
    "apps": "deploys to {env}",
    "infrastructure": "infrastructure changes to {env}",
    "upgrades": "upgrades of {env}",
}
_OVERRIDDEN: dict[ChangeKind, str] = {
    "apps": "deploy window",
    "infrastructure": "infrastructure change window",
    "upgrades": "upgrade window",
}
OVERRIDES_FILE = "window-overrides.json"
KEPT_OVERRIDES = 100
"""The newest override records :func:`remember` keeps in the work folder."""


class WindowClosed(ProvisionError):
    """A change outside the allowed windows or inside a freeze, without an override."""

    exit_code = 3


def governs(env: Environment, kind: ChangeKind) -> bool:
    """Whether the windows and freezes apply to this kind of change."""
    return kind in env.deploy_policy.applies_to


def check_window(env: Environment, kind: ChangeKind, now: dt.datetime,
                 override_reason: str | None, say: Report,
                 consequence: str = "") -> dict[str, str]:
    """Refuse ``kind`` of change at ``now`` outside the windows or inside a freeze, unless
    ``override_reason`` is given; the override's record (who, why, when), else ``{}``.

    ``consequence`` is added to a refusal before the way out, e.g. "; nothing was applied".
    The override is said through ``say`` as it is granted, so it is in the command's output.
    """
    if not governs(env, kind):
        return {}
    decision = windows.decide(env.deploy_policy, now)
    if decision.allowed:
        return {}
    if override_reason is None:
        when = (f"; next allowed {decision.next_allowed.isoformat(timespec='minutes')}"
                if decision.next_allowed else "")
        raise WindowClosed(f"{_CHANGES[kind].format(env=env.name)} are not allowed now: "
                           f"{decision.reason}{when}{consequence}. "
                           "Use --override-window --reason TEXT if it cannot wait.")
    who = windows.who_am_i()
    say(f"{_OVERRIDDEN[kind]} overridden by {who}: {override_reason}")
    return windows.override_annotation(who, override_reason, now)


def remember(work_root: Path, kind: ChangeKind, record: dict[str, str],
             detail: dict[str, Any]) -> Path:
    """Append an override ``record`` (from :func:`check_window`) with what it let through
    (``detail``, e.g. the plan's counts) to the work folder's ``window-overrides.json``,
    newest last, keeping the newest :data:`KEPT_OVERRIDES`. Returns the file's path.

    A file that is not such a list (edited by hand, damaged) is started afresh: the record
    of this override matters more than what cannot be read.
    """
    from provisioner.render.writer import read_list, write_file

    path = work_root / OVERRIDES_FILE
    previous = read_list(path)
    entry: dict[str, Any] = {"kind": kind,
                             "at": record.get(windows.OVERRIDE_AT, ""),
                             "by": record.get(windows.OVERRIDE_BY, ""),
                             "reason": record.get(windows.OVERRIDE_REASON, ""), **detail}
    kept = [*previous, entry][-KEPT_OVERRIDES:]
    write_file(path, json.dumps(kept, indent=1, sort_keys=True) + "\n")
    return path
