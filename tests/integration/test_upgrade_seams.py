"""The upgrade's default seams and refusals against the fake API server (no world needed).

The snapshot seam is `provision backup`'s request and wait (provisioner/pipeline/backup_now.py)
through the backup agents' record (ConfigMap kube-system/provision-etcd-backup, README "Etcd
backups"): ``requested-at`` written by provision,
``last-snapshot-at`` / ``last-error-at`` by the agent, here played by a thread after that
contract. The release check asks the package index stand-in (tests/support/k8s_packages.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.agents.etcd_backup import ANNOUNCE
from provisioner.agents.node_upgrade import AGENT, CONTRACT, REQUEST
from provisioner.cloud.releases import HOST_ENV
from provisioner.config import load_environment
from provisioner.config.model import Environment
from provisioner.errors import UsageError
from provisioner.kube import client_for
from provisioner.upgrade import orchestrate, seams
from tests.fakes.kubeapi import FakeKubeAPI, catalog
from tests.support import clock
from tests.support.k8s_packages import package_repositories
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration

NODE = catalog.get("v1", "Node")
CONFIGMAP = catalog.get("v1", "ConfigMap")


def environment(tmp_path: Path, version: str) -> Environment:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text()
                      .replace('version: "1.36.2"', f'version: "{version}"'))
    return load_environment(config)


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeKubeAPI, Any]]:
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    monkeypatch.setattr(seams, "SNAPSHOT_POLL", 0.05)
    with FakeKubeAPI() as kube, package_repositories() as packages:
        monkeypatch.setenv(HOST_ENV, packages.url)
        for name, plane in (("prod-cp-1", True), ("prod-general-1-abcde", False)):
            kube.add_node(name, control_plane=plane, kubelet_version="v1.35.8")
            annotate(kube, name, {AGENT: CONTRACT, **({ANNOUNCE: "1"} if plane else {})})
        yield kube, client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))


def annotate(kube: FakeKubeAPI, name: str, values: dict[str, str]) -> None:
    old = kube.get("v1", "Node", name)
    assert old is not None
    new = json.loads(json.dumps(old))
    new["metadata"].setdefault("annotations", {}).update(values)
    kube.registry.commit(NODE, old, new, "test")


def answer_backup(kube: FakeKubeAPI, values: dict[str, str]) -> threading.Thread:
    """The backup agent: once `requested-at` appears, write `values` into the record."""
    def play() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            record = kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
            if record and (record.get("data") or {}).get("requested-at"):
                new = json.loads(json.dumps(record))
                # The agent echoes the request it served (or failed) by value.
                echo = "failed-request" if "last-error" in values else "answered-request"
                new["data"].update({echo: record["data"]["requested-at"], **values})
                kube.registry.commit(CONFIGMAP, record, new, "etcd-backup")
                return
            time.sleep(0.02)

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    return thread


def record(kube: FakeKubeAPI, **data: str) -> None:
    kube.create({"apiVersion": "v1", "kind": "ConfigMap", "data": data,
                 "metadata": {"name": "provision-etcd-backup", "namespace": "kube-system"}})


def test_no_backup_record_refuses_before_any_change(cluster: tuple[FakeKubeAPI, Any],
                                                    tmp_path: Path) -> None:
    _, api = cluster
    with pytest.raises(UsageError) as caught:
        seams.snapshot_first(environment(tmp_path, "1.36.3"), api, lambda _: None)
    assert "has no backup record (ConfigMap kube-system/provision-etcd-backup)" \
        in str(caught.value)
    assert "nothing was changed" in str(caught.value)
    assert caught.value.exit_code == 2


def test_no_backups_section_refuses_before_asking_the_cluster(
        cluster: tuple[FakeKubeAPI, Any], tmp_path: Path) -> None:
    kube, api = cluster
    record(kube)
    env = dataclasses.replace(environment(tmp_path, "1.36.3"), backups=None)
    with pytest.raises(UsageError) as caught:
        seams.snapshot_first(env, api, lambda _: None)
    assert "has no `backups:` section" in str(caught.value)
    stored = kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
    assert stored is not None and "requested-at" not in (stored.get("data") or {})


def test_a_stored_snapshot_is_waited_for_and_named(cluster: tuple[FakeKubeAPI, Any],
                                                   tmp_path: Path) -> None:
    kube, api = cluster
    record(kube, **{"last-snapshot-at": "2026-03-07T02:00:00Z"})  # an hour old: not it
    later = clock.OUTSIDE_WINDOWS + dt.timedelta(seconds=20)
    answer_backup(kube, {"last-snapshot-at": later.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "last-snapshot-key": "prod/hourly/20260307T030020Z-prod-cp-1.pbk"})
    key = seams.snapshot_first(environment(tmp_path, "1.36.3"), api, lambda _: None)
    assert key == "prod/hourly/20260307T030020Z-prod-cp-1.pbk"
    stored = kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
    assert stored is not None and stored["data"]["requested-at"] == "2026-03-07T03:00:00Z"


def test_a_failed_snapshot_stops_the_upgrade(cluster: tuple[FakeKubeAPI, Any],
                                             tmp_path: Path) -> None:
    kube, api = cluster
    record(kube)
    answer_backup(kube, {"last-error": "etcdctl snapshot save: context deadline exceeded",
                         "last-error-at": "2026-03-07T03:00:05Z"})
    with pytest.raises(seams.SnapshotFailed) as caught:
        seams.snapshot_first(environment(tmp_path, "1.36.3"), api, lambda _: None)
    assert "context deadline exceeded" in str(caught.value)
    assert caught.value.exit_code == 1


def test_the_preflight_names_nodes_not_ready_and_a_missing_release(
        cluster: tuple[FakeKubeAPI, Any], tmp_path: Path) -> None:
    kube, api = cluster
    kube.set_node_ready("prod-general-1-abcde", False)
    gate = seams.preflight_gate(environment(tmp_path, "1.36.9"), api, clock.pinned())
    assert gate.current == "1.35.8" and gate.target == "1.36.9"
    assert any(b.startswith("node prod-general-1-abcde is not Ready") for b in gate.blocking)
    assert any("1.36.9 does not exist" in b for b in gate.blocking), gate


def test_an_unanswered_request_for_another_version_refuses(
        cluster: tuple[FakeKubeAPI, Any], tmp_path: Path) -> None:
    kube, api = cluster
    annotate(kube, "prod-general-1-abcde", {REQUEST: json.dumps(
        {"id": "x", "version": "1.36.1", "step": "node"})})
    with pytest.raises(orchestrate.UpgradeRefused) as caught:
        orchestrate.prepare(environment(tmp_path, "1.36.3"), api, seams.default(),
                            lambda _: None, clock.pinned(), "test")
    assert "unanswered upgrade requests for another version on prod-general-1-abcde " \
        "(1.36.1)" in str(caught.value)


def window_only() -> seams.Seams:
    """The real window (the freeze calendar) behind a preflight that finds nothing: the fake
    API server runs no etcd and serves its own version, which the preflight would refuse."""
    return dataclasses.replace(seams.default(), preflight=lambda env, api, now: seams.Gate(
        "1.35.8", "1.36.3"))


def test_a_window_refusing_an_upgrade_under_way_names_what_it_left_cordoned(
        cluster: tuple[FakeKubeAPI, Any], tmp_path: Path) -> None:
    """A rerun outside the windows (clock pinned at OUTSIDE_WINDOWS, a Saturday night) of an
    upgrade that cordoned a worker: refused as before (exit 3), but not with "nothing was
    changed": the operator is told which node stays cordoned and how to end that."""
    from provisioner.pipeline.change_window import WindowClosed

    kube, api = cluster
    worker = "prod-general-1-abcde"
    old = kube.get("v1", "Node", worker)
    assert old is not None
    new = json.loads(json.dumps(old))
    new["spec"]["unschedulable"] = True
    new["metadata"]["annotations"].update({
        orchestrate.CORDONED: "true",
        REQUEST: json.dumps({"id": "1.36.3-node-1a2b3c4d", "version": "1.36.3",
                             "step": "node"})})
    kube.registry.commit(NODE, old, new, "provision")
    with pytest.raises(WindowClosed) as caught:
        orchestrate.prepare(environment(tmp_path, "1.36.3"), api, window_only(),
                            lambda _: None, clock.pinned(), None)
    message = str(caught.value)
    assert caught.value.exit_code == 3
    assert "nothing was changed" not in message
    assert "upgrade of prod 1.35.8 -> 1.36.3 is under way" in message
    assert f"the nodes it cordoned stay cordoned until it finishes: {worker}." in message
    assert "--override-window --reason TEXT" in message
    assert "kubectl uncordon NODE" in message


def test_a_window_refusing_a_fresh_upgrade_says_nothing_was_changed(
        cluster: tuple[FakeKubeAPI, Any], tmp_path: Path) -> None:
    from provisioner.pipeline.change_window import WindowClosed

    _, api = cluster
    with pytest.raises(WindowClosed) as caught:
        orchestrate.prepare(environment(tmp_path, "1.36.3"), api, window_only(),
                            lambda _: None, clock.pinned(), None)
    assert "nothing was changed" in str(caught.value)
    assert "under way" not in str(caught.value)
