"""The etcd backup agent's pieces that need no etcd: what it may import, when it is due."""

from __future__ import annotations

import ast
import datetime as dt
import json
import sys
from pathlib import Path

from provisioner.agents import etcd_backup

T = dt.datetime(2026, 3, 7, 3, 0, tzinfo=dt.UTC)


def test_the_agent_imports_only_the_standard_library() -> None:
    """It is shipped alone in user-data and run by the node's python3."""
    tree = ast.parse(Path(etcd_backup.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree)
                if isinstance(node, ast.Import) for alias in node.names}
    imported |= {str(node.module).split(".")[0] for node in ast.walk(tree)
                 if isinstance(node, ast.ImportFrom) and node.level == 0}
    assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported


def test_due() -> None:
    every = 3600
    assert etcd_backup.due({}, T, every) == "no snapshot recorded yet"
    last = {"last-snapshot-at": "2026-03-07T02:30:00Z"}
    assert etcd_backup.due(last, T, every) is None
    assert etcd_backup.due(last, T + dt.timedelta(minutes=30), every) is not None
    requested = {**last, "requested-at": "2026-03-07T02:45:00Z"}
    assert etcd_backup.due(requested, T, every) == "requested at 2026-03-07T02:45:00Z"
    served = {**requested, "answered-request": "2026-03-07T02:45:00Z"}
    assert etcd_backup.due(served, T, every) is None
    # A failed request is answered (provision backup said so), not retried every minute.
    failed = {**requested, "failed-request": "2026-03-07T02:45:00Z"}
    assert etcd_backup.due(failed, T, every) is None
    # Answered by value, not by time: a request stamped by a clock a day ahead is answered
    # once (it used to stay "newer" than every snapshot, one a minute, wiping the history).
    ahead = {**last, "requested-at": "2026-03-08T03:00:00Z"}
    assert etcd_backup.due(ahead, T, every) == "requested at 2026-03-08T03:00:00Z"
    assert etcd_backup.due({**ahead, "answered-request": "2026-03-08T03:00:00Z"}, T,
                           every) is None
    # A last snapshot stamped ahead of this clock (beyond the tolerance) does not stop the
    # schedule until the clocks meet; within it, it is just recent.
    future = {"last-snapshot-at": "2026-03-07T04:00:00Z"}
    assert etcd_backup.due(future, T, every) == ("the last snapshot is stamped "
                                                 "2026-03-07T04:00:00Z, ahead of this clock")
    assert etcd_backup.due({"last-snapshot-at": "2026-03-07T03:04:00Z"}, T, every) is None
    # a record no pass could have written counts as no record: snapshot, do not stall
    assert etcd_backup.due({"last-snapshot-at": "yesterday"}, T, every) is not None


def test_settings_take_the_contract_file_and_ignore_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "etcd-backup.json"
    path.write_text(json.dumps({
        "environment": "production", "endpoint": "https://fra1.digitaloceanspaces.com",
        "region": "fra1", "bucket": "acme-etcd-backups", "prefix": "production",
        "every_seconds": 3600, "keep_hourly": 24, "keep_daily": 14, "added_later": 1}))
    settings = etcd_backup.Settings.load(path)
    assert (settings.bucket, settings.every_seconds, settings.keep_daily) == (
        "acme-etcd-backups", 3600, 14)
    assert settings.kubeconfig == "/etc/kubernetes/admin.conf"
