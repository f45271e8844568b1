"""`status` shows the newest etcd snapshot's age; `check` reports stale or failed snapshots,
and (from the file alone) an environment without backups.

The record is the agents' ConfigMap kube-system/provision-etcd-backup (the shared contract
of issue 15, README "Etcd backups"), written here as the agent writes it; the fake API server
serves it over real HTTP. The clock is pinned (tests/support/clock.py), so ages and
staleness are the same any day: stale means older than 2 x `every` + 5 minutes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.clock import pin
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
PROD = ROOT / "examples" / "production.yaml"  # backups: every 1h -> stale after 2h05m
NOW = dt.datetime(2026, 3, 7, 3, 0, tzinfo=dt.UTC)


@pytest.fixture
def kube(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeAPI]:
    pin(monkeypatch, NOW)
    monkeypatch.delenv("DIGITALOCEAN_TOKEN", raising=False)
    with FakeKubeAPI() as server:
        yield server


def _stamp(ago: dt.timedelta) -> str:
    return (NOW - ago).strftime("%Y-%m-%dT%H:%M:%SZ")


def _record(kube: FakeKubeAPI, data: dict[str, str]) -> None:
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "provision-etcd-backup", "namespace": "kube-system"}, "data": data})


def _run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _backup_findings(kube: FakeKubeAPI, tmp_path: Path) -> list[tuple[str, str]]:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    result = _run("check", str(PROD), "--kubeconfig", str(kubeconfig), "--output", "json")
    assert result.exit_code == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return [(f["severity"], f["problem"]) for f in report["online"]["findings"]
            if f["subject"] == "etcd backups"]


def _snapshot(ago: dt.timedelta) -> dict[str, str]:
    return {"last-snapshot-at": _stamp(ago), "last-snapshot-node": "prod-cp-2",
            "last-snapshot-key": "production/hourly/x-prod-cp-2.pbk",
            "last-snapshot-bytes": "2048"}


def test_a_recent_snapshot_is_no_finding_and_status_shows_its_age(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    _record(kube, _snapshot(dt.timedelta(minutes=42)))
    assert _backup_findings(kube, tmp_path) == []
    kubeconfig = tmp_path / "kubeconfig"
    shown = _run("status", str(PROD), "--kubeconfig", str(kubeconfig), "--output", "json")
    assert shown.exit_code == 0, shown.stderr
    backups = json.loads(shown.stdout)["cluster"]["backups"]
    assert backups == {"last_snapshot_at": "2026-03-07T02:18:00Z", "age_seconds": 42 * 60,
                       "key": "production/hourly/x-prod-cp-2.pbk", "node": "prod-cp-2",
                       "bytes": 2048, "stale": False, "last_error": None,
                       "last_error_at": None}
    text = _run("status", str(PROD), "--kubeconfig", str(kubeconfig))
    assert ("  etcd backups: newest snapshot 42m ago (2026-03-07T02:18:00Z, prod-cp-2)"
            in text.stdout.splitlines()), text.stdout


def test_at_the_limit_is_not_stale(kube: FakeKubeAPI, tmp_path: Path) -> None:
    _record(kube, _snapshot(dt.timedelta(hours=2, minutes=5)))
    assert _backup_findings(kube, tmp_path) == []


def test_a_stale_snapshot_is_high(kube: FakeKubeAPI, tmp_path: Path) -> None:
    _record(kube, _snapshot(dt.timedelta(hours=2, minutes=6)))
    assert _backup_findings(kube, tmp_path) == [
        ("high", "the newest snapshot is from 2026-03-07T00:54:00Z, more than 125 minutes "
                 "ago")]
    text = _run("status", str(PROD), "--kubeconfig", str(tmp_path / "kubeconfig"))
    assert "etcd backups: newest snapshot 2h6m ago (2026-03-07T00:54:00Z, prod-cp-2, STALE)" \
        in text.stdout


def test_a_failure_after_the_newest_snapshot_is_reported(kube: FakeKubeAPI,
                                                          tmp_path: Path) -> None:
    _record(kube, {**_snapshot(dt.timedelta(minutes=70)),
                   "last-error": "etcdctl snapshot save: context deadline exceeded",
                   "last-error-at": _stamp(dt.timedelta(minutes=10))})
    assert _backup_findings(kube, tmp_path) == [
        ("high", "the last pass failed at 2026-03-07T02:50:00Z: etcdctl snapshot save: "
                 "context deadline exceeded")]
    shown = _run("status", str(PROD), "--kubeconfig", str(tmp_path / "kubeconfig"))
    assert "last pass failed at 2026-03-07T02:50:00Z: etcdctl snapshot save" in shown.stdout


def test_a_failure_before_the_newest_snapshot_is_history(kube: FakeKubeAPI,
                                                          tmp_path: Path) -> None:
    _record(kube, {**_snapshot(dt.timedelta(minutes=5)), "last-error": "old",
                   "last-error-at": _stamp(dt.timedelta(minutes=70))})
    assert _backup_findings(kube, tmp_path) == []


def test_no_record_and_no_snapshot_yet(kube: FakeKubeAPI, tmp_path: Path) -> None:
    found = _backup_findings(kube, tmp_path)
    assert found == [("high", "kube-system/provision-etcd-backup does not exist: no agent "
                              "has recorded a snapshot")]
    _record(kube, {})
    assert _backup_findings(kube, tmp_path) == [("medium", "no snapshot has been recorded")]
    shown = _run("status", str(PROD), "--kubeconfig", str(tmp_path / "kubeconfig"))
    assert "  etcd backups: no snapshot recorded yet" in shown.stdout.splitlines()


def test_offline_check_warns_without_a_backups_section() -> None:
    staging = _run("check", str(ROOT / "examples" / "staging.yaml"), "--output", "json")
    assert staging.exit_code == 0, staging.stderr
    found = [f for f in json.loads(staging.stdout)["findings"]
             if f["subject"] == "etcd backups"]
    assert [f["severity"] for f in found] == ["medium"]
    assert "no `backups:` section" in found[0]["problem"]
    production = _run("check", str(PROD), "--output", "json")
    assert not [f for f in json.loads(production.stdout)["findings"]
                if f["subject"] == "etcd backups"]
