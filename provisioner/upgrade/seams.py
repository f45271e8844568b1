"""The three things an upgrade needs from elsewhere, as narrow seams with working defaults.

* ``preflight(env, api, now) -> Gate``: may the cluster go to the file's version at all
  (blocking findings stop the upgrade with exit 2, warnings are shown). The default checks
  one minor at a time, no downgrade, every node Ready and that the release exists.
* ``window(env, now, override_reason, say)``: raise (exit 3) outside the deploy windows or
  inside a freeze unless overridden with a reason. The default applies the environment's
  ``deploy_policy`` as deploys do.
* ``snapshot(env, api, say) -> str``: take an etcd snapshot and wait until it is stored;
  what it is called (its object key). The default asks the backup agent on the control-plane
  nodes through ConfigMap kube-system/provision-etcd-backup: it writes ``requested-at`` and
  waits for ``last-snapshot-at`` at or after it (or ``last-error-at``: a failure).

The orchestration (orchestrate.py) only sees the ``Seams``; other modules may provide
better functions of the same shapes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.config.model import Environment
from provisioner.errors import ConfigError, ProvisionError, UsageError
from provisioner.kube import Kube, KubeError
from provisioner.node_facts import parse_instant
from provisioner.upgrade import state

Say = Callable[[str], None]
BACKUP_RECORD = "/api/v1/namespaces/kube-system/configmaps/provision-etcd-backup"
SNAPSHOT_TIMEOUT = 20 * 60.0  # the agent's timer (60 s), the snapshot and its upload
SNAPSHOT_POLL = 5.0


class WindowClosed(ProvisionError):
    """An upgrade outside the deploy windows or inside a freeze, without an override."""

    exit_code = 3


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
WindowCheck = Callable[[Environment, dt.datetime, "str | None", Say], None]
Snapshot = Callable[[Environment, Any, Say], str]


@dataclass(frozen=True)
class Seams:
    preflight: Preflight
    window: WindowCheck
    snapshot: Snapshot


def default() -> Seams:
    return Seams(basic_preflight, deploy_window, request_snapshot)


def basic_preflight(env: Environment, api: Any, now: dt.datetime) -> Gate:
    """One minor at a time, no downgrade, every node Ready, the release exists."""
    from provisioner.cloud import releases

    nodes = state.read(Kube(api))
    kubelet, apiserver = state.current(nodes)
    target = state.plain(env.kubernetes.version)
    lowest = min((v for v in (kubelet, apiserver) if state.version_key(v)),
                 key=lambda v: state.version_key(v) or (0, 0, 0), default="")
    gate = Gate(lowest, target)
    want, have = state.version_key(target), state.version_key(lowest)
    if want and have:
        if want[:2] > (have[0], have[1] + 1):
            gate.blocking.append(
                f"one minor at a time: the cluster runs {lowest}; upgrade to "
                f"{have[0]}.{have[1] + 1}.x first, then to {target}")
        newest = max((state.version_key(n.kubelet) or (0, 0, 0) for n in nodes),
                     default=(0, 0, 0))
        if want < newest:
            gate.blocking.append(f"{target} is older than what nodes run "
                                 f"({'.'.join(map(str, newest))}): a downgrade")
    for node in nodes:
        if not node.ready:
            gate.blocking.append(f"node {node.name} is not Ready")
    try:
        releases.check_release(env, None, warn=gate.warnings.append)
    except ConfigError as e:
        gate.blocking.append(str(e).split(": ", 1)[-1])
    return gate


def deploy_window(env: Environment, now: dt.datetime, override_reason: str | None,
                  say: Say) -> None:
    """The environment's deploy windows and freezes, applied to the upgrade."""
    from provisioner.workloads import windows

    decision = windows.decide(env.deploy_policy, now)
    if decision.allowed:
        return
    if override_reason is None:
        when = (f"; next allowed {decision.next_allowed.isoformat(timespec='minutes')}"
                if decision.next_allowed else "")
        raise WindowClosed(f"upgrades of {env.name} are not allowed now: {decision.reason}"
                           f"{when}. Use --override-window --reason TEXT if it cannot wait")
    say(f"deploy window overridden by {windows.who_am_i()}: {override_reason}")


def _rfc3339(instant: dt.datetime) -> str:
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def request_snapshot(env: Environment, api: Any, say: Say) -> str:
    """Ask the control-plane nodes' backup agent for a snapshot now and wait for it."""
    from provisioner import clock

    kube = Kube(api)
    try:
        before = kube.request("GET", BACKUP_RECORD, verb="get configmaps in kube-system")
    except KubeError as e:
        if e.status != 404:
            raise
        raise UsageError(
            f"an upgrade takes an etcd snapshot before it changes anything, and {env.name} "
            "has no backup agent (ConfigMap kube-system/provision-etcd-backup is missing): add "
            "a `backups` section to the file and run `provision up`; nothing was changed"
        ) from e
    seen = (before.get("data") or {}).get("last-snapshot-at")
    asked = clock.now().replace(microsecond=0)
    kube.request("PATCH", BACKUP_RECORD, body={"data": {"requested-at": _rfc3339(asked)}},
                 content_type="application/merge-patch+json",
                 verb="patch configmaps in kube-system")
    say("etcd snapshot requested; waiting for the backup agent to store it")
    deadline = time.monotonic() + SNAPSHOT_TIMEOUT
    while True:
        data = kube.request("GET", BACKUP_RECORD, verb="get configmaps in kube-system"
                            ).get("data") or {}
        taken = parse_instant(data.get("last-snapshot-at"))
        if taken is not None and taken >= asked and data.get("last-snapshot-at") != seen:
            return str(data.get("last-snapshot-key") or data.get("last-snapshot-at"))
        failed = parse_instant(data.get("last-error-at"))
        if failed is not None and failed >= asked:
            raise SnapshotFailed(f"the etcd snapshot failed: {data.get('last-error')}; "
                                 "nothing was changed")
        if time.monotonic() > deadline:
            raise SnapshotFailed(f"no etcd snapshot within {SNAPSHOT_TIMEOUT / 60:.0f} "
                                 "minutes of the request (is the backup agent's timer "
                                 "running on the control-plane nodes?); nothing was changed")
        time.sleep(SNAPSHOT_POLL)
