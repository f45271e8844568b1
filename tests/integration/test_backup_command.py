"""`provision backup CONFIG` and `--list`: the real CLI, a fake API server, a fake S3.

The wait is tested against our own contract with the node agent (the shared contract of
issue 15, README "Etcd backups"): `provision backup` writes ``requested-at`` into the ConfigMap
kube-system/provision-etcd-backup, and the etcd leader's agent answers by writing
``last-snapshot-at`` (and ``-key``, ``-node``, ``-bytes``) or ``last-error``/``-at``. Here a
thread plays the agent's side of that contract over HTTP, with a JSON merge patch as
`kubectl patch --type merge` sends it; the agent itself (provisioner/agents/etcd_backup.py)
is exercised against a real etcd by its own tests. The bucket is moto over real HTTP
(tests/fakes/s3.py); ListObjectsV2 by prefix is what S3 documents and moto implements.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from provisioner.agents.etcd_backup import ANNOUNCE
from provisioner.cli.main import cli
from tests.fakes.kubeapi import catalog
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.fakes.s3 import FakeS3, fake_s3
from tests.support.clock import pinned
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
RECORD = "/api/v1/namespaces/kube-system/configmaps/provision-etcd-backup"


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with fake_s3() as server:
        yield server


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    """Three control-plane Nodes whose backup agents reported (etcd_backup.announce)."""
    with FakeKubeAPI() as server:
        for i in (1, 2, 3):
            server.add_node(f"prod-cp-{i}", control_plane=True)
            _mark(server, f"prod-cp-{i}")
        yield server


def _mark(server: FakeKubeAPI, name: str) -> None:
    old = server.get("v1", "Node", name)
    assert old is not None
    new = json.loads(json.dumps(old))
    new["metadata"].setdefault("annotations", {})[ANNOUNCE] = "1"
    server.registry.commit(catalog.get("v1", "Node"), old, new, "etcd-backup")


def _config(tmp_path: Path, s3: FakeS3) -> Path:
    doc = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    doc["backups"] = {"bucket": s3.bucket, "endpoint": s3.endpoint, "prefix": "production"}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    result = CliRunner(env=env).invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _record(kube: FakeKubeAPI) -> dict[str, str]:
    found = kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
    return dict((found or {}).get("data") or {})


def _agent_writes(kube: FakeKubeAPI, data: dict[str, Any]) -> None:
    """The agent's side: a merge patch of the record (null removes a key)."""
    request = urllib.request.Request(
        kube.base_url + RECORD, method="PATCH", data=json.dumps({"data": data}).encode(),
        headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def _agent(kube: FakeKubeAPI, answer: dict[str, Any], delay: float = 1.0) -> threading.Thread:
    """Wait for a request, then answer it ``delay`` seconds later (times from requested-at)."""

    def run() -> None:
        kube.wait_for(lambda: "requested-at" in _record(kube), timeout=60)
        requested = dt.datetime.fromisoformat(_record(kube)["requested-at"].replace("Z",
                                                                                    "+00:00"))
        threading.Event().wait(delay)
        later = (requested + dt.timedelta(seconds=41)).strftime("%Y-%m-%dT%H:%M:%SZ")
        # The agent echoes the request it served (or failed) by value.
        echo = "failed-request" if "last-error" in answer else "answered-request"
        _agent_writes(kube, {echo: _record(kube)["requested-at"],
                             **{k: (later if v == "LATER" else v) for k, v in answer.items()}})

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def _seed_old_record(kube: FakeKubeAPI) -> None:
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
        "name": "provision-etcd-backup", "namespace": "kube-system"}, "data": {
        "last-snapshot-at": "2026-03-06T02:00:00Z",
        "last-snapshot-key": "production/hourly/20260306T020000Z-prod-cp-2.pbk",
        "last-snapshot-node": "prod-cp-2", "last-snapshot-bytes": "1000",
        "last-error": "an old failure", "last-error-at": "2026-03-06T01:00:00Z"}})


def test_backup_waits_for_the_snapshot_answering_its_request(
        tmp_path: Path, s3: FakeS3, kube: FakeKubeAPI) -> None:
    config = _config(tmp_path, s3)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    _seed_old_record(kube)  # an older snapshot and error answer nothing asked now
    key = "production/hourly/20260307T030041Z-prod-cp-1.pbk"
    agent = _agent(kube, {"last-snapshot-at": "LATER", "last-snapshot-key": key,
                          "last-snapshot-node": "prod-cp-1",
                          "last-snapshot-bytes": str(5 * 1024 * 1024)}, delay=3.0)
    result = _run("backup", str(config), "--kubeconfig", str(kubeconfig), "--output", "json")
    agent.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    taken = json.loads(result.stdout)
    requested = pinned().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert taken == {"key": key, "node": "prod-cp-1", "bytes": 5 * 1024 * 1024,
                     "taken_at": (pinned() + dt.timedelta(seconds=41)).strftime(
                         "%Y-%m-%dT%H:%M:%SZ"), "requested_at": requested}
    assert _record(kube)["requested-at"] == requested
    assert f"snapshot requested at {requested}" in result.stderr
    # Only the request key was written: the agent's record is intact.
    assert _record(kube)["last-snapshot-node"] == "prod-cp-1"
    assert _record(kube)["last-error"] == "an old failure"


def test_text_output_names_key_node_size_and_time(tmp_path: Path, s3: FakeS3,
                                                  kube: FakeKubeAPI) -> None:
    config = _config(tmp_path, s3)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    key = "production/hourly/20260307T030041Z-prod-cp-3.pbk"
    agent = _agent(kube, {"last-snapshot-at": "LATER", "last-snapshot-key": key,
                          "last-snapshot-node": "prod-cp-3", "last-snapshot-bytes": "1536"})
    result = _run("backup", str(config), "--kubeconfig", str(kubeconfig))
    agent.join(timeout=30)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == (f"snapshot {key}\n  node: prod-cp-3\n  size: 1.5 KiB\n"
                             "  taken at: 2026-03-07T03:00:41Z\n").replace(
        "2026-03-07T03:00:41Z", (pinned() + dt.timedelta(seconds=41)).strftime(
            "%Y-%m-%dT%H:%M:%SZ"))


def test_a_failed_pass_exits_1_with_the_agents_error(tmp_path: Path, s3: FakeS3,
                                                     kube: FakeKubeAPI) -> None:
    config = _config(tmp_path, s3)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    _seed_old_record(kube)
    agent = _agent(kube, {"last-error": "PUT production/hourly/x.pbk: 403 AccessDenied",
                          "last-error-at": "LATER"})
    result = _run("backup", str(config), "--kubeconfig", str(kubeconfig))
    agent.join(timeout=30)
    assert result.exit_code == 1, result.stderr
    assert "the snapshot failed at" in result.stderr
    assert "PUT production/hourly/x.pbk: 403 AccessDenied" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_no_answer_in_time_exits_1_saying_where_to_look(tmp_path: Path, s3: FakeS3,
                                                        kube: FakeKubeAPI) -> None:
    config = _config(tmp_path, s3)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    _seed_old_record(kube)
    result = _run("backup", str(config), "--kubeconfig", str(kubeconfig), "--timeout", "3")
    assert result.exit_code == 1, result.stderr
    assert "no snapshot recorded within 3 s of the request" in result.stderr
    assert "journalctl -u provision-etcd-backup" in result.stderr


def test_without_a_backups_section_exit_2_with_the_fix(tmp_path: Path) -> None:
    result = _run("backup", str(ROOT / "examples" / "staging.yaml"))
    assert result.exit_code == 2
    assert "no `backups:` section" in result.stderr and "backups: {bucket:" in result.stderr
    listed = _run("backup", str(ROOT / "examples" / "staging.yaml"), "--list")
    assert listed.exit_code == 2


def test_list_shows_hourly_and_daily_newest_first(tmp_path: Path, s3: FakeS3) -> None:
    config = _config(tmp_path, s3)
    now = pinned()
    ids = {}
    for hours in (1, 3, 2):
        at = now - dt.timedelta(hours=hours)
        ids[hours] = f"{at:%Y%m%dT%H%M%SZ}-prod-cp-{hours}"
        s3.put(f"production/hourly/{ids[hours]}.pbk", b"x" * (1000 * hours))
    s3.put(f"production/daily/{ids[3]}.pbk", b"x" * 3000)
    s3.put("staging/hourly/20260307T020000Z-stage-cp-1.pbk", b"other environment")
    s3.put("production/hourly-notes.txt", b"not a snapshot")
    env = {"SPACES_ACCESS_KEY_ID": s3.access_key, "SPACES_SECRET_ACCESS_KEY": s3.secret_key}
    result = _run("backup", str(config), "--list", "--output", "json", env=env)
    assert result.exit_code == 0, result.stderr
    items = json.loads(result.stdout)
    assert [(i["id"], i["kind"]) for i in items] == [
        (ids[1], "hourly"), (ids[2], "hourly"), (ids[3], "hourly"), (ids[3], "daily")]
    assert [i["age_seconds"] for i in items] == [3600, 7200, 10800, 10800]
    assert [i["bytes"] for i in items] == [1000, 2000, 3000, 3000]
    text = _run("backup", str(config), "--list", env=env)
    assert text.exit_code == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == f"snapshots under s3://{s3.bucket}/production/ (newest first)"
    assert lines[2].split() == [ids[1], "hourly", "1h0m", "1000", "B"]
    assert lines[5].split() == [ids[3], "daily", "3h0m", "2.9", "KiB"]


def test_list_without_the_spaces_key_exits_2(tmp_path: Path, s3: FakeS3,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    result = _run("backup", str(_config(tmp_path, s3)), "--list")
    assert result.exit_code == 2
    assert "export SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY" in result.stderr


def test_backup_refuses_while_a_control_plane_node_has_no_agent(
        tmp_path: Path, s3: FakeS3, kube: FakeKubeAPI) -> None:
    """A node made before `backups:` was set never got the agent (user-data is applied once);
    it may be the etcd leader, whose agent alone snapshots, so the wait could never end."""
    kube.add_node("prod-cp-4", control_plane=True)
    config = _config(tmp_path, s3)
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    result = _run("backup", str(config), "--kubeconfig", str(kubeconfig))
    assert result.exit_code == 2, result.stderr
    assert "no etcd backup agent reports on prod-cp-4" in result.stderr
    assert "provision up --replace NAME" in result.stderr
    assert "requested-at" not in _record(kube)
