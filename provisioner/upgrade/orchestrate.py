"""``provision upgrade``: the running cluster to the file's Kubernetes version, in place.

Order (kubeadm's documented upgrade, kubernetes/website content/en/docs/tasks/
administer-cluster/kubeadm/kubeadm-upgrade.md: the first control plane with ``kubeadm upgrade
apply``, the other control planes with ``kubeadm upgrade node``, "Upgrade the kubelet and
kubectl on all control plane nodes", then workers one or a few at a time, each drained,
``kubeadm upgrade node``, kubelet, uncordoned):

1. preflight (a seam): blocking findings refuse the upgrade (exit 2);
2. the deploy windows and freezes (a seam; exit 3 unless overridden);
3. an etcd snapshot, stored before anything changes (a seam);
4. control-plane components, one node at a time: ``apply`` on the first, ``node`` on the
   others, kubelets untouched; each node then healthy (Ready, its kube-apiserver,
   kube-controller-manager and kube-scheduler mirror pods on the target tag, every etcd
   member answering) before the next;
5. control-plane kubelets, one node at a time: cordoned, drained, kubelet and kubectl,
   Ready on the target version, uncordoned;
6. workers, pool by pool in batches of the pool's ``replace.at_once``: cordoned, drained
   through the Eviction API (PodDisruptionBudgets honoured, provisioner/pipeline/rolling.py),
   ``kubeadm upgrade node`` and kubelet, Ready on the target version, uncordoned.

No kubelet is ever newer than any API server (the version skew policy): every API server
moves in step 4 before any kubelet in steps 5 and 6. That is why the control planes' kubelets
wait for step 5, as the older edition of the kubeadm page orders it, rather than following
each node's ``kubeadm upgrade`` at once.

Commands reach a node through its own Node object: provision writes the request annotation
and the node's upgrade agent (provisioner/agents/node_upgrade.py) answers. The record is the
cluster: which kubelets and mirror pods run the target, and each node's request and result.
A rerun skips finished nodes and waits for a request still unanswered (same id); a failed
node stops the upgrade (exit 1), and the next run asks it again with a new id.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.agents.node_upgrade import REQUEST
from provisioner.cluster import etcd_members
from provisioner.config.model import Environment
from provisioner.errors import ProvisionError, UsageError
from provisioner.kube import Kube
from provisioner.pipeline import rolling
from provisioner.upgrade import state
from provisioner.upgrade.seams import Seams
from provisioner.upgrade.state import NodeState

Say = Callable[[str], None]
CORDONED = state.CORDONED
# The agent's unit may run 45 min (kubeadm upgrade apply waits up to 5 min per component, apt
# too), after its timer's next pass (15 s).
NODE_TIMEOUT = 50 * 60.0
HEALTH_TIMEOUT = 10 * 60.0
POLL = 5.0  # seconds between looks at a node (the agent's timer runs every 15 s)
DRAIN_INTERVAL = 1.0
CONTROL_PLANE_DRAIN = 600.0  # seconds; control planes run few pods (tainted NoSchedule)


class UpgradeRefused(UsageError):
    """The preflight found what makes the upgrade unsafe; nothing was changed."""


class NodeUpgradeFailed(ProvisionError):
    """A node's agent reported a failure, or the node did not come back healthy."""


@dataclass
class Outcome:
    """What a run did."""

    target: str
    current: str = ""
    nothing_to_do: bool = False
    upgraded: list[str] = field(default_factory=list)
    already: list[str] = field(default_factory=list)
    snapshot: str | None = None
    stages: dict[str, float] = field(default_factory=dict)  # stage -> seconds
    warnings: list[str] = field(default_factory=list)

    def json(self) -> dict[str, Any]:
        return {"target": self.target, "current": self.current,
                "nothing_to_do": self.nothing_to_do, "upgraded": self.upgraded,
                "already": self.already, "snapshot": self.snapshot,
                "stages": {k: round(v, 3) for k, v in self.stages.items()},
                "warnings": self.warnings}


@dataclass
class Plan:
    """What the upgrade will do, after the preflight and the window (nothing changed)."""

    env: Environment
    target: str
    current: str
    control_planes: list[str]
    workers: list[list[str]]  # batches
    warnings: list[str]
    started: bool  # an earlier run already asked a node

    def describe(self) -> str:
        batches = ", ".join("+".join(b) for b in self.workers) or "none"
        return (f"upgrade {self.env.name} from {self.current} to {self.target}"
                + (" (continuing an upgrade begun earlier)" if self.started else "")
                + (": etcd snapshot first; " if not self.started else
                   ": its etcd snapshot was taken when it began; ")
                + f"control planes one at a time ({', '.join(self.control_planes) or 'none'}), "
                f"components first, then kubelets; workers drained in batches: {batches}")


def _done(node: NodeState, target: str) -> bool:
    return node.kubelet == target and (not node.control_plane or _components_done(node, target))


def _components_done(node: NodeState, target: str) -> bool:
    return bool(node.components) and all(
        node.components.get(c) == target for c in state.COMPONENTS)


def _pool_of(env: Environment, name: str) -> tuple[str, int, int]:
    """The worker's pool (workers are named <env>-<pool>-<n>-<generation>), its batch size
    and drain timeout; an unknown pool is drained one node at a time in 600 s."""
    for pool in sorted(env.worker_pools, key=lambda p: -len(p.name)):
        if name.startswith(f"{env.name}-{pool.name}-"):
            return pool.name, max(1, pool.replace_at_once), pool.drain_timeout
    return "", 1, 600


def prepare(env: Environment, api: Any, seams: Seams, say: Say, now: dt.datetime,
            override_reason: str | None) -> Plan | None:
    """Preflight and window; the plan, or None when every node already runs the target."""
    kube = Kube(api, timeout=30)
    target = state.plain(env.kubernetes.version)
    nodes = state.read(kube)
    if nodes and all(_done(n, target) and not n.held for n in nodes):
        return None
    gate = seams.preflight(env, api, now)
    for warning in gate.warnings:
        say(f"warning: {warning}")
    blocking = list(gate.blocking)
    missing = [n.name for n in nodes if not n.agent]
    if missing:
        blocking.append(
            f"no upgrade agent reports on {', '.join(missing)} (nodes made before provision "
            "shipped it): replace them first (workers: change the pool and run `provision "
            "up`; control planes: `provision up --replace NAME`)")
    other = [f"{n.name} ({n.pending.version})" for n in nodes
             if n.pending is not None and n.pending.version != target]
    if other:
        blocking.append("unanswered upgrade requests for another version on "
                        + ", ".join(other) + "; wait for them or set the file's version back")
    if blocking:
        raise UpgradeRefused(f"upgrade of {env.name} to {target} refused:\n  "
                             + "\n  ".join(blocking) + "\nnothing was changed")
    started = any(n.request is not None and n.request.version == target for n in nodes)
    held = [n.name for n in nodes if n.held]
    seams.window(env, now, override_reason, say,
                 _left_behind(env, f"{gate.current} -> {target}", held) if started or held
                 else "; nothing was changed")
    workers: dict[str, list[str]] = {}
    at_once: dict[str, int] = {}
    for node in nodes:
        if not node.control_plane:
            pool, size, _ = _pool_of(env, node.name)
            workers.setdefault(pool, []).append(node.name)
            at_once[pool] = size
    batches = [names[i:i + at_once[pool]] for pool, names in sorted(workers.items())
               for i in range(0, len(names), at_once[pool])]
    return Plan(env, target, gate.current, [n.name for n in nodes if n.control_plane],
                batches, list(gate.warnings), started=started)


def _left_behind(env: Environment, versions: str, held: list[str]) -> str:
    """What a window refusal leaves when an upgrade is already under way: the operator must
    hear of nodes cordoned through a whole freeze, not that nothing was changed."""
    cordoned = (f"the nodes it cordoned stay cordoned until it finishes: {', '.join(held)}"
                if held else "it cordoned no node")
    uncordon = (", or put the nodes back in service until the next window with `kubectl "
                "uncordon NODE`" if held else "")
    return (f". The upgrade of {env.name} {versions} is under way (an earlier run began it): "
            f"{cordoned}. Finish it with `provision upgrade --override-window --reason TEXT`"
            f"{uncordon}")


@dataclass
class _Run:
    plan: Plan
    kube: Kube
    api: Any
    say: Say
    checkpoint: Callable[[str], None]
    outcome: Outcome
    progress: Path | None

    @property
    def target(self) -> str:
        return self.plan.target

    def node(self, name: str) -> NodeState:
        for node in state.read(self.kube):
            if node.name == name:
                return node
        raise NodeUpgradeFailed(f"node {name} is gone from the cluster mid-upgrade; run "
                                "`provision upgrade` again once the cluster is whole")

    def step(self, label: str) -> None:
        """One step done: recorded in the work folder (upgrade.json, for the operator; a
        rerun reads the cluster, not this file), then the test hook."""
        if self.progress is not None:
            record = {"target": self.target, "step": label,
                      "at": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                      "upgraded": self.outcome.upgraded}
            partial = self.progress.with_suffix(".partial")
            partial.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
            partial.replace(self.progress)
        self.checkpoint(label)

    # ------------------------------------------------------------------- one node

    def ask(self, name: str, step: str, kubelet: bool) -> str:
        """The node's request: the one still unanswered for this step, or a new one."""
        node = self.node(name)
        last = node.request
        if last is not None and last.version == self.target and last.step == step \
                and (last.raw.get("kubelet") is not False) == kubelet:
            answer = node.answer(last.id)
            if answer is None:
                self.say(f"{name}: waiting for the {step} step an earlier run asked for")
                return last.id
            if answer.ok:
                return last.id  # answered since this run looked: its answer stands
            self.say(f"{name}: asking again (the last attempt failed: "
                     f"{answer.raw.get('message')})")
        request_id = f"{self.target}-{step}-{secrets.token_hex(4)}"
        body: dict[str, Any] = {"id": request_id, "version": self.target, "step": step}
        if not kubelet:
            body["kubelet"] = False
        self.kube.request("PATCH", f"/api/v1/nodes/{name}",
                          body={"metadata": {"annotations": {REQUEST: json.dumps(body)}}},
                          content_type="application/merge-patch+json", verb="patch nodes")
        self.say(f"{name}: asked for {step} to v{self.target}")
        self.step(f"asked {name} {step}")
        return request_id

    def answer(self, name: str, request_id: str, step: str) -> None:
        deadline = time.monotonic() + NODE_TIMEOUT
        while True:
            result = self.node(name).answer(request_id)
            if result is not None:
                break
            if time.monotonic() > deadline:
                raise NodeUpgradeFailed(
                    f"{name} did not answer its {step} request within "
                    f"{NODE_TIMEOUT / 60:.0f} minutes; see `journalctl -u "
                    f"provision-node-upgrade` on it, then run `provision upgrade` again")
            time.sleep(POLL)
        if not result.ok:
            raise NodeUpgradeFailed(
                f"upgrade of {name} to v{self.target} failed ({step}): "
                f"{result.raw.get('message')}. Nothing after it was changed; fix the cause, "
                "then run `provision upgrade` again to retry it")
        self.step(f"answered {name} {step}")

    def healthy(self, name: str, components: bool) -> None:
        """Ready, on the target (kubelet, or the control-plane components), etcd whole."""
        deadline = time.monotonic() + HEALTH_TIMEOUT
        while True:
            node = self.node(name)
            if components:
                why = "" if _components_done(node, self.target) else (
                    f"its control-plane pods run {node.components or 'nothing'}")
            else:
                why = "" if node.kubelet == self.target else f"its kubelet is {node.kubelet}"
            if not node.ready:
                why = "it is not Ready"
            if not why and components:
                silent = etcd_members.silent(self.api)
                why = f"etcd members do not answer: {', '.join(silent)}" if silent else ""
            if not why:
                break
            if time.monotonic() > deadline:
                raise NodeUpgradeFailed(f"{name} is not healthy after its upgrade: {why}; the "
                                        "upgrade stopped there. Run `provision upgrade` again "
                                        "once it is")
            time.sleep(POLL)
        what = "components" if components else "kubelet"
        self.kube.request("PATCH", f"/api/v1/nodes/{name}", body={"metadata": {
            "annotations": {state.CHECKED: f"{self.target}/{what}"}}},
            content_type="application/merge-patch+json", verb="patch nodes")
        self.say(f"{name}: healthy on v{self.target}")
        self.step(f"healthy {name} {what}")

    def cordon(self, name: str) -> None:
        node = self.node(name)
        if node.cordoned:
            return  # cordoned by someone (or an earlier run, which marked it)
        self.kube.request("PATCH", f"/api/v1/nodes/{name}", body={
            "metadata": {"annotations": {CORDONED: "true"}}, "spec": {"unschedulable": True}},
            content_type="application/merge-patch+json", verb="patch nodes")
        self.say(f"cordoned {name}")
        self.step(f"cordoned {name}")

    def _cordoned_here(self, name: str) -> bool:
        found = self.kube.request("GET", f"/api/v1/nodes/{name}", verb="get nodes")
        return CORDONED in ((found.get("metadata") or {}).get("annotations") or {})

    def uncordon(self, name: str) -> None:
        if not self._cordoned_here(name):
            return  # cordoned by someone else before the upgrade: left as it was
        self.kube.request("PATCH", f"/api/v1/nodes/{name}", body={
            "metadata": {"annotations": {CORDONED: None}}, "spec": {"unschedulable": None}},
            content_type="application/merge-patch+json", verb="patch nodes")
        self.say(f"uncordoned {name}")
        self.step(f"uncordoned {name}")

    def drain(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for name in names:
            if not rolling.pods_on(self.kube, name):
                continue  # nothing to evict (or drained by a run that stopped after it)
            rolling.drain(self.kube, name, deadline, self.say, DRAIN_INTERVAL)
            self.step(f"drained {name}")

    # ------------------------------------------------------------------ stages

    def components(self) -> None:
        """Every control plane's kubeadm step, kubelets untouched."""
        for name in self.plan.control_planes:
            node = self.node(name)
            if _components_done(node, self.target):
                if node.checked not in (f"{self.target}/components", f"{self.target}/kubelet"):
                    self.healthy(name, components=True)  # a run stopped before its check
                continue
            nodes = state.read(self.kube)
            applied = any(_components_done(n, self.target) for n in nodes if n.control_plane)
            pending = node.pending
            step = pending.step if pending is not None and pending.version == self.target \
                and pending.step in ("apply", "node") else ("node" if applied else "apply")
            request_id = self.ask(name, step, kubelet=False)
            self.answer(name, request_id, step)
            self.healthy(name, components=True)

    def kubelets(self, names: list[str], step: str, timeout: float) -> None:
        """A batch of nodes: cordon, drain, upgrade, healthy, uncordon."""
        todo = [n for n in names if self.node(n).kubelet != self.target]
        for name in names:
            if name in todo:
                continue
            if self.node(name).checked != f"{self.target}/kubelet":
                self.healthy(name, components=False)  # a run stopped before its check
            self.uncordon(name)
            self.outcome.already.append(name)
        if not todo:
            return
        for name in todo:
            self.cordon(name)
        self.drain(todo, timeout)
        asked = {name: self.ask(name, step, kubelet=True) for name in todo}
        for name in todo:
            self.answer(name, asked[name], step)
        for name in todo:
            self.healthy(name, components=False)
        for name in todo:
            self.uncordon(name)
            self.outcome.upgraded.append(name)


def execute(plan: Plan, api: Any, seams: Seams, say: Say,
            checkpoint: Callable[[str], None] | None = None,
            progress: Path | None = None) -> Outcome:
    """Snapshot, control planes, workers (see the module's docstring)."""
    outcome = Outcome(plan.target, plan.current, warnings=list(plan.warnings))
    run = _Run(plan, Kube(api, timeout=30), api, say, checkpoint or (lambda _: None),
               outcome, progress)

    def timed(stage: str, work: Callable[[], None]) -> None:
        started = time.monotonic()
        work()
        outcome.stages[stage] = outcome.stages.get(stage, 0.0) + time.monotonic() - started
        say(f"{stage}: {outcome.stages[stage]:.1f} s")

    def snapshot() -> None:
        outcome.snapshot = seams.snapshot(plan.env, api, say)
        say(f"etcd snapshot stored: {outcome.snapshot}")
        run.step("snapshot")

    if not plan.started:
        timed("etcd snapshot", snapshot)
    else:
        say("this upgrade began in an earlier run, which took its etcd snapshot first")
    timed("control-plane components", run.components)

    def control_plane_kubelets() -> None:
        for name in plan.control_planes:
            run.kubelets([name], "kubelet", CONTROL_PLANE_DRAIN)

    def workers() -> None:
        for batch in plan.workers:
            run.kubelets(batch, "node", _pool_of(plan.env, batch[0])[2])

    timed("control-plane kubelets", control_plane_kubelets)
    timed("workers", workers)
    return outcome
