"""`provision upgrade` takes the simulated production environment from 1.35 to 1.36 in place.

The world (tests/e2e/world.py) runs `up` at 1.35.8; the nodes' upgrade agents and the
control planes' backup agent are played by tests/support/upgrades.py after their contracts
(provisioner/agents/node_upgrade.py, README "Upgrades" and "Backups"), recording every
version change per node and component. The fake API server evicts as kube-apiserver does
and records cordons and evictions (tests/fakes/kubeapi/disruption.py). The package index
stand-in serves 1.35.0-1.35.8 and 1.36.0-1.36.3 (tests/support/k8s_packages.py).
`python -m tests.e2e.test_upgrade` prints each stage's simulated duration.
"""

from __future__ import annotations

import itertools
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provisioner.agents.node_upgrade import REQUEST
from provisioner.cli.deploy import deploy_client
from provisioner.pipeline import rolling
from provisioner.upgrade import orchestrate, seams
from tests.e2e.world import World, world
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.fakes.s3 import fake_s3
from tests.support import clock
from tests.support.upgrades import NodeAgents, skew_violations

pytestmark = pytest.mark.integration

OLD, NEW = "1.35.8", "1.36.3"


def set_version(w: World, version: str) -> None:
    """The production example at ``version``, with its backups in the fake Spaces bucket (an
    upgrade takes a snapshot first: README "Upgrades")."""
    w.sim.write_config({"backups": BACKUPS[w.sim.config]} if w.sim.config in BACKUPS else None,
                       edit=lambda d: d["kubernetes"].update(version=version))


BACKUPS: dict[Path, dict[str, str]] = {}


def upgrade(w: World, *extra: str) -> Any:
    return w.provision("upgrade", str(w.sim.config), "--yes", "--override-window", "--reason",
                       "e2e", *extra)


def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    """Polls at simulation speed (the agent's timer is 15 s on a node)."""
    monkeypatch.setattr(orchestrate, "POLL", 0.05)
    monkeypatch.setattr(orchestrate, "DRAIN_INTERVAL", 0.05)
    monkeypatch.setattr(seams, "SNAPSHOT_POLL", 0.05)
    monkeypatch.setattr(rolling, "EVICTION_RETRY", 0.2)


@contextmanager
def running_at_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                   ) -> Iterator[tuple[World, FakeKubeAPI]]:
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    quick(monkeypatch)
    with world(tmp_path) as w, fake_s3() as s3:
        BACKUPS[w.sim.config] = {"bucket": s3.bucket, "region": "fra1", "endpoint": s3.endpoint}
        w.sim.env.update(SPACES_ACCESS_KEY_ID=s3.access_key,
                         SPACES_SECRET_ACCESS_KEY=s3.secret_key)
        try:
            set_version(w, OLD)
            made = w.provision("up", str(w.sim.config), "--yes", "--override-window",
                               "--reason", "e2e")
            assert made.code == 0, made.stderr
            kube = w.boot.kube
            assert kube is not None
            # `up` of an environment with `backups` made the backup agents' record.
            assert kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
            yield w, kube
            assert w.boot.error is None
        finally:
            BACKUPS.pop(w.sim.config, None)


def requests_at(kube: FakeKubeAPI) -> list[tuple[float, str]]:
    """(time.time() it began, node) of each PATCH that wrote an upgrade request."""
    return [(r.started, r.name) for r in kube.requests("PATCH")
            if r.resource == "nodes" and REQUEST.encode() in (r.body or b"")]


def kubelet_changes(agents: NodeAgents) -> list[tuple[str, float]]:
    return [(c.node, c.at) for c in agents.timeline if c.component == "kubelet" and c.at]


def check_upgrade(kube: FakeKubeAPI, agents: NodeAgents, planes: list[str],
                  workers: list[str]) -> None:
    """Order, skew, drains and the end state (the checks every upgrade here must pass)."""
    assert not agents.errors, agents.errors
    assert skew_violations(agents.timeline) == []
    done = [r for r in agents.ran if r.ok]
    components = [r for r in done if r.step in ("apply", "node") and r.node in planes]
    assert [r.node for r in components] == planes, "control planes one at a time, in order"
    assert components[0].step == "apply" and {r.step for r in components[1:]} == {"node"}
    assert all(not r.kubelet for r in components), "their kubelets wait"
    # Each control plane's components were done (answered) before the next was asked.
    for before, after in itertools.pairwise(components):
        assert before.done <= after.seen
    kubelets = kubelet_changes(agents)
    assert sorted(n for n, _ in kubelets) == sorted(planes + workers), "each kubelet once"
    last_component = max(c.at for c in agents.timeline if c.component == "kube-apiserver")
    assert all(at > last_component for _, at in kubelets), "every API server first"
    order = [n for n, _ in sorted(kubelets, key=lambda x: x[1])]
    assert order == planes + workers, "control-plane kubelets, then workers (at_once: 1)"
    # Workers: cordoned and drained before their request; one worker out at a time.
    events = kube.timeline.snapshot()
    upgraded = dict(kubelets)
    for worker, following in itertools.pairwise(workers):
        later = [e.at for e in events if e.what == "node-cordoned" and e.subject == following]
        assert later and upgraded[worker] < min(later), "one worker out at a time"
    for worker in workers:
        cordoned = [e.at for e in events if e.what == "node-cordoned" and e.subject == worker]
        evicted = [e.at for e in events if e.what == "pod-evicted" and e.node == worker]
        request = next(r for r in agents.ran if r.node == worker and r.ok)
        assert cordoned and cordoned[-1] < request.seen, f"{worker} cordoned first"
        assert all(at < request.seen for at in evicted), f"{worker} drained first"
    assert any(e.what == "pod-evicted" and e.node in workers for e in events)
    for node in kube.objects("v1", "Node"):
        assert not node["spec"].get("unschedulable"), f"{node['metadata']['name']} uncordoned"
        assert node["status"]["nodeInfo"]["kubeletVersion"] == f"v{NEW}"
    assert kube.rest.git_version == f"v{NEW}"


def names(kube: FakeKubeAPI) -> tuple[list[str], list[str]]:
    nodes = sorted(n["metadata"]["name"] for n in kube.objects("v1", "Node"))
    return [n for n in nodes if "-cp-" in n], [n for n in nodes if "-cp-" not in n]


def test_production_goes_to_the_next_minor_in_order_with_a_snapshot_first(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    figures = run_production(tmp_path, monkeypatch)
    assert set(figures) >= {"etcd snapshot", "control-plane components",
                            "control-plane kubelets", "workers"}


def run_production(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    with running_at_old(tmp_path, monkeypatch) as (w, kube), NodeAgents(kube) as agents:
        same = upgrade(w)
        assert same.code == 0, same.stderr
        assert f"nothing to do: every node of prod runs {OLD}" in same.stderr
        set_version(w, "1.37.1")
        skipping = upgrade(w)
        assert skipping.code == 2, skipping.stderr
        assert ("1.37.1 is 2 minors above the API server's 1.35.8: kubeadm upgrades one "
                "minor at a time") in skipping.stderr
        set_version(w, NEW)
        closed = w.provision("upgrade", str(w.sim.config), "--yes")
        assert closed.code == 3, closed.stderr
        assert "upgrades of prod are not allowed now" in closed.stderr
        started = time.monotonic()
        done = upgrade(w, "--output", "json")
        assert done.code == 0, done.stderr
        outcome = json.loads(done.stdout)
        planes, workers = names(kube)
        assert len(planes) == 3 and len(workers) == 3
        check_upgrade(kube, agents, planes, workers)
        assert sorted(outcome["upgraded"]) == sorted(planes + workers)
        assert outcome["snapshot"].startswith("prod/hourly/")
        assert len(agents.snapshots) == 1
        first = min(at for at, _ in requests_at(kube))
        assert agents.snapshots[0] < first, "the snapshot is stored before any request"
        assert (w.sim.workdir / "upgrade.json").is_file()
        again = upgrade(w)
        assert again.code == 0 and "nothing to do" in again.stderr
        figures = dict(outcome["stages"])
        figures["total"] = time.monotonic() - started
        return figures


class Killed(Exception):
    """The run stopped here, as a killed process would."""


def test_a_failed_node_stops_it_and_a_run_killed_after_every_step_resumes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with running_at_old(tmp_path, monkeypatch) as (w, kube):
        set_version(w, NEW)
        refused = upgrade(w)  # no agent has announced itself yet (nodes of an older provision)
        assert refused.code == 2, refused.stderr
        assert "no upgrade agent reports on prod-cp-1, prod-cp-2" in refused.stderr
        assert "nothing was changed" in refused.stderr
        assert not requests_at(kube)
        with NodeAgents(kube) as agents:
            failed_then_resumed(w, kube, agents, monkeypatch)


def failed_then_resumed(w: World, kube: FakeKubeAPI, agents: NodeAgents,
                         monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed node stops the upgrade (exit 1, named); then every run is killed right
    after its first step, and the next one resumes, until one finishes."""
    planes, workers = names(kube)
    agents.failures[planes[1]] = ("kubeadm upgrade node failed (exit 1): [upgrade/etcd] "
                                  "failed to upgrade etcd")
    failed = upgrade(w)
    assert failed.code == 1, failed.stderr
    assert f"upgrade of {planes[1]} to v{NEW} failed (node)" in failed.stderr
    assert "failed to upgrade etcd" in failed.stderr
    assert [c.node for c in agents.timeline if c.at and c.component == "kube-apiserver"
            ] == [planes[0]], "nothing after the failed node"

    for variable, value in w.sim.env.items():
        monkeypatch.setenv(variable, value)
    env, api = deploy_client(w.sim.config, None, None, None)
    steps: list[str] = []
    for _ in range(200):
        plan = orchestrate.prepare(env, api, seams.default(), lambda _: None,
                                   clock.pinned(), "e2e")
        if plan is None:
            break
        def kill(label: str) -> None:
            steps.append(label)
            raise Killed(label)
        try:
            orchestrate.execute(plan, api, seams.default(), lambda _: None, kill)
        except Killed:
            continue
        break
    assert len(steps) > 30, steps
    assert len(steps) == len(set(steps)), "no step done twice"
    finished = upgrade(w)
    assert finished.code == 0 and "nothing to do" in finished.stderr, finished.stderr
    assert len(agents.snapshots) == 1, "resumed runs take no second snapshot"
    failures = [r for r in agents.ran if not r.ok]
    assert [r.node for r in failures] == [planes[1]]
    assert len({r.id for r in agents.ran}) == len(agents.ran), "no request run twice"
    check_upgrade(kube, agents, planes, workers)
    print(f"\n{len(steps)} runs, each killed after one step: {steps}")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as patch:
        figures = run_production(Path(tmp), patch)
    print("simulated upgrade of examples/production.yaml, 1.35.8 -> 1.36.3 "
          "(3 control planes, 3 workers, at_once 1):")
    for stage, seconds in figures.items():
        print(f"  {stage:<26} {seconds:6.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
