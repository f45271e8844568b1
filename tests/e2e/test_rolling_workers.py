"""A changed worker pool on a running cluster is replaced one worker at a time.

The simulated world (tests/e2e/world.py): droplets join as nodes as they appear; the fake
API server evicts as kube-apiserver does (tests/fakes/kubeapi/disruption.py, after
kubernetes pkg/registry/core/pod/storage/eviction.go at commit 01aa0f3f: 429 while a
PodDisruptionBudget allows no disruption), keeps budgets' status as the disruption
controller does, schedules only onto Ready, schedulable (uncordoned) nodes, and writes a
timeline of nodes Ready, cordoned and deleted. `python -m tests.e2e.test_rolling_workers`
prints the figures: the time to replace the pool and the fewest Ready replicas seen.
"""

from __future__ import annotations

import datetime as dt
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.world import World, world
from tests.fakes.kubeapi.disruption import Entry, pod_ready
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import clock
from tests.support.rendering import set_workers

pytestmark = pytest.mark.integration

NS = "prod"


def up(w: World) -> Any:
    return w.provision("up", str(w.sim.config), "--yes", "--override-window", "--reason", "e2e")


def _matches(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    return bool(wanted or expressions) and all(labels.get(k) == v for k, v in wanted.items()) \
        and all(labels.get(e["key"]) in e.get("values", []) for e in expressions)


@dataclass
class Sampler:
    """The fewest Ready pods each budget selects, sampled every 20 ms during a rollout."""

    kube: FakeKubeAPI
    lowest: dict[str, int] = field(default_factory=dict)
    desired: dict[str, int] = field(default_factory=dict)  # the budget's desiredHealthy
    samples: int = 0
    stop: threading.Event = field(default_factory=threading.Event)
    # The longest stretch with fewer Ready pods than the budget expects (the replicas).
    longest_below: dict[str, float] = field(default_factory=dict)
    _below_since: dict[str, float] = field(default_factory=dict)

    def run(self) -> None:
        while not self.stop.wait(0.02):
            pods = self.kube.objects("v1", "Pod", NS)
            for pdb in self.kube.objects("policy/v1", "PodDisruptionBudget", NS):
                name = pdb["metadata"]["name"]
                ready = sum(1 for p in pods if pod_ready(p) and _matches(
                    pdb["spec"]["selector"], p["metadata"].get("labels") or {}))
                self.lowest[name] = min(self.lowest.get(name, ready), ready)
                status = pdb.get("status") or {}
                now = time.monotonic()
                if ready < int(status.get("expectedPods") or 0):
                    since = self._below_since.setdefault(name, now)
                    self.longest_below[name] = max(self.longest_below.get(name, 0.0),
                                                   now - since)
                else:
                    self._below_since.pop(name, None)
                if "desiredHealthy" in status:
                    self.desired[name] = max(self.desired.get(name, 0),
                                             int(status["desiredHealthy"]))
            self.samples += 1


@contextmanager
def sampling(kube: FakeKubeAPI) -> Iterator[Sampler]:
    sampler = Sampler(kube)
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    try:
        yield sampler
    finally:
        sampler.stop.set()
        thread.join(timeout=10)


def workers(kube: FakeKubeAPI) -> list[str]:
    return sorted(n["metadata"]["name"] for n in kube.objects("v1", "Node")
                  if "-general-" in n["metadata"]["name"])


def relabel(w: World, tier: str, **replace: int) -> None:
    def edit(doc: dict[str, Any]) -> None:
        pool = doc["worker_pools"][0]
        pool["labels"]["tier"] = tier
        if replace:
            pool["replace"] = replace
    w.sim.write_config(edit=edit)


def grow(w: World, tier: str, count: int) -> None:
    """The example rewritten with ``count`` Terraform-owned workers labelled ``tier``."""
    def edit(doc: dict[str, Any]) -> None:
        pool = doc["worker_pools"][0]
        set_workers(pool, count)
        pool["labels"] = {"tier": tier}
    w.sim.write_config(edit=edit)


def block_drains(kube: FakeKubeAPI) -> None:
    """One budget over both apps that allows no disruption (minAvailable = their pods)."""
    selected = [p for p in kube.objects("v1", "Pod", NS)
                if p["metadata"].get("labels", {}).get("app.kubernetes.io/name")
                in ("api", "elasticsearch")]
    for name in ("api", "elasticsearch"):
        kube.registry.delete(_pdb_rt(), NS, name)
    kube.create({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                 "metadata": {"name": "blocker", "namespace": NS},
                 "spec": {"minAvailable": len(selected), "selector": {"matchExpressions": [
                     {"key": "app.kubernetes.io/name", "operator": "In",
                      "values": ["api", "elasticsearch"]}]}}})


def check_order(timeline: list[Entry], old: list[str], new: list[str], at_once: int) -> None:
    """For each old node: new Ready before it is cordoned, cordoned before deleted; never
    more than ``at_once`` old nodes cordoned and not yet deleted."""
    seen_ready: list[str] = []
    out: set[str] = set()
    cordoned: list[str] = []
    for entry in timeline:
        if entry.what == "node-ready" and entry.subject in new:
            seen_ready.append(entry.subject)
        elif entry.what == "node-cordoned" and entry.subject in old:
            cordoned.append(entry.subject)
            out.add(entry.subject)
            assert len(seen_ready) >= len(cordoned), (
                f"{entry.subject} cordoned before its replacement was Ready")
            assert len(out) <= at_once, f"more than {at_once} old nodes out at once: {out}"
        elif entry.what == "node-deleted" and entry.subject in old:
            assert entry.subject in out, f"{entry.subject} deleted before it was cordoned"
            out.discard(entry.subject)
        elif entry.what == "pod-evicted" and entry.node in old:
            assert entry.node in cordoned, f"{entry.subject} evicted from an uncordoned node"


@dataclass
class Figures:
    seconds: float
    lowest: dict[str, int]
    desired: dict[str, int]
    replicas: dict[str, int]
    samples: int
    longest_below: dict[str, float]


def replace_pool(w: World) -> Figures:
    """Up with three workers, change the pool's label, up again; checks and figures."""
    kube = w.boot.kube
    assert kube is not None
    old = workers(kube)
    assert len(old) == 3
    relabel(w, "general-2")
    started = time.monotonic()
    with sampling(kube) as sampler:
        rolled = up(w)
    seconds = time.monotonic() - started
    assert rolled.code == 0, rolled.stderr
    new = workers(kube)
    assert len(new) == 3 and not set(new) & set(old)
    check_order(kube.timeline.snapshot(), old, new, at_once=1)
    deleted = [e.subject for e in kube.timeline.snapshot() if e.what == "node-deleted"]
    assert deleted == old, "each old node deleted, one after the other"
    assert "3 workers will be replaced (or removed) 1 at a time" in rolled.stderr
    replicas = {name: int(pdb.get("status", {}).get("expectedPods", 0))
                for pdb in kube.objects("policy/v1", "PodDisruptionBudget", NS)
                for name in [pdb["metadata"]["name"]]}
    return Figures(seconds, dict(sampler.lowest), dict(sampler.desired), replicas,
                   sampler.samples, dict(sampler.longest_below))


def test_a_changed_pool_is_replaced_one_worker_at_a_time(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    with world(tmp_path) as w:
        first = up(w)
        assert first.code == 0, first.stderr
        assert "at a time" not in first.stderr, "a first up is a single apply"
        figures = replace_pool(w)
        assert figures.samples > 10
        assert set(figures.lowest) == {"api", "elasticsearch"}
        for name, lowest in figures.lowest.items():
            assert lowest >= figures.desired[name], (name, figures)
        assert figures.desired["elasticsearch"] == 2  # 3 replicas, maxUnavailable: 1

        # A scale-up stays one apply; a saved plan that retires workers is refused.
        kube = w.boot.kube
        assert kube is not None
        grow(w, "general-2", 4)  # the file is rewritten from the example
        grown = up(w)
        assert grown.code == 0, grown.stderr
        assert "at a time" not in grown.stderr and "rolling replacement" not in grown.stderr
        assert len(workers(kube)) == 4
        grow(w, "general-3", 4)
        saved = w.sim.workdir.parent.parent / "prod.tfplan"
        planned = w.provision("plan", str(w.sim.config), "--out", str(saved))
        assert planned.code == 0, planned.stderr
        refused = w.provision("up", str(w.sim.config), "--plan", str(saved), "--yes",
                              "--until", "infra", "--override-window", "--reason", "e2e")
        assert refused.code == 2, refused.stderr
        assert "this saved plan deletes worker droplets of a running cluster" in refused.stderr
        assert len(workers(kube)) == 4
        assert w.boot.error is None


def test_a_blocking_budget_stops_the_rollout_and_the_next_up_continues(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    with world(tmp_path) as w:
        assert up(w).code == 0
        kube = w.boot.kube
        assert kube is not None
        old = workers(kube)
        block_drains(kube)
        relabel(w, "general-2", drain_timeout=3)
        stopped = up(w)
        assert stopped.code == 1, stopped.stderr
        line = next(x for x in stopped.stderr.splitlines() if "could not be drained" in x)
        node = line.split("node ", 1)[1].split(" ", 1)[0]
        assert node in old
        assert "The disruption budget blocker needs" in line
        assert f"Pods still on it: {NS}/" in line
        timeline = kube.timeline.snapshot()
        cordoned = [e.subject for e in timeline if e.what == "node-cordoned"]
        assert cordoned[-1] == node and node in workers(kube), "stopped before deleting it"
        untouched = [n for n in old if n > node]
        assert not set(untouched) & set(cordoned), "the rest are left untouched"
        assert all(n in workers(kube) for n in untouched)

        kube.registry.delete(_pdb_rt(), NS, "blocker")  # relaxed: the apps' own come back
        resumed = up(w)
        assert resumed.code == 0, resumed.stderr
        now = workers(kube)
        assert len(now) == 3 and not set(now) & set(old)
        assert [e.subject for e in kube.timeline.snapshot()
                if e.what == "node-deleted"] == old
        assert kube.get("policy/v1", "PodDisruptionBudget", "api", NS) is not None


def _pdb_rt() -> Any:
    from tests.fakes.kubeapi import catalog

    return catalog.get("policy/v1", "PodDisruptionBudget")


def main() -> int:
    """Print the figures of one rollout of three workers."""
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp)) as w:
        if up(w).code != 0:
            return 1
        f = replace_pool(w)
        print(f"replaced a pool of 3 workers one at a time in {f.seconds:.1f} s "
              f"({f.samples} samples)")
        for name in sorted(f.lowest):
            print(f"  {name}: lowest Ready {f.lowest[name]}, desired {f.replicas[name]}, "
                  f"PDB minimum {f.desired[name]}; longest below desired "
                  f"{f.longest_below.get(name, 0.0):.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())


def test_a_rollout_longer_than_the_join_credentials_renews_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each old worker's drain takes 2.5 simulated hours: the bootstrap token made before the
    rollout (4 h, kubeadm's expiry as the world's kubeadm model judges it: tests/support/
    kubeadm.py) has run out before the third new worker is created. provision renews it
    mid-rollout, so the third joins like the first (before: it never joined, the wait for
    its node timed out)."""
    from provisioner.pipeline import rolling

    instant = [clock.OUTSIDE_WINDOWS]
    monkeypatch.setattr("provisioner.clock.now", lambda: instant[0])
    monkeypatch.setattr(rolling, "NODES_TIMEOUT", 45.0)
    cordon = rolling.cordon

    def slow_cordon(*args: Any, **kwargs: Any) -> None:
        instant[0] += dt.timedelta(hours=2, minutes=30)
        cordon(*args, **kwargs)

    monkeypatch.setattr(rolling, "cordon", slow_cordon)
    with world(tmp_path) as w:
        assert up(w).code == 0
        kube = w.boot.kube
        assert kube is not None
        old = workers(kube)
        relabel(w, "general-2")
        rolled = up(w)
        assert rolled.code == 0, rolled.stderr
        new = workers(kube)
        assert len(new) == 3 and not set(new) & set(old)
        # Once before the rollout (the plan creates droplets), once in the middle.
        assert rolled.stderr.count("made fresh join credentials") == 2, rolled.stderr
        assert w.boot.error is None


def test_a_backed_out_rollout_uncordons_the_worker_it_kept(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rollout stops at a blocking budget with an old worker cordoned (and annotated
    provision.dev/retiring); the operator backs the change out. The next `up` keeps that
    worker (it deletes the new one instead), so it must be schedulable again: before, it
    stayed cordoned for good, since nothing read the annotation."""
    from tests.fakes.kubeapi import catalog

    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    with world(tmp_path) as w:
        assert up(w).code == 0
        kube = w.boot.kube
        assert kube is not None
        original = w.sim.config.read_text()
        old = workers(kube)
        block_drains(kube)
        relabel(w, "general-2", drain_timeout=3)
        stopped = up(w)
        assert stopped.code == 1, stopped.stderr
        held = [n for n in old if (kube.get("v1", "Node", n) or {}).get(
            "spec", {}).get("unschedulable")]
        assert len(held) == 1, held  # the rollout stopped with one old worker cordoned
        kube.registry.delete(catalog.get("policy/v1", "PodDisruptionBudget"), NS, "blocker")
        w.sim.config.write_text(original)  # the operator backs the change out
        back = up(w)
        assert back.code == 0, back.stderr
        assert sorted(workers(kube)) == sorted(old)
        node = kube.get("v1", "Node", held[0]) or {}
        assert not node.get("spec", {}).get("unschedulable"), "the kept worker stays cordoned"
        assert "provision.dev/retiring" not in (node["metadata"].get("annotations") or {})
        assert f"uncordoned {held[0]}: an earlier rollout cordoned it" in back.stderr
