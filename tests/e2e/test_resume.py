"""`provision up` resumes: killed at each stage boundary, the next `up` converges.

Each test runs `up` as a real process in the simulated world (tests/e2e/world.py), stops it
at one point of the pipeline, and runs `up` again. The second run must exit 0 and leave
exactly what one uninterrupted `up` leaves (the reference, from a world of its own): the
same droplet names, each once; the same number of every cloud resource (one floating IP,
one VPC...); the same Kubernetes objects. Where the kill lands:

* after the infrastructure stage: `up --until infra` run to completion, or a SIGKILL the
  moment `up` prints the kubeconfig line (the first thing the cluster stage does);
* during the bootstrap wait: the Bootstrapper holds the nodes back (``node_delay``) and
  the kill comes while `up` prints "0/6 nodes Ready; waiting for ...";
* during the deploy: the fake API server's controllers are paused, so the kill comes
  while `up` waits for rollouts; also in a second `up` that rolls a new image out to the
  other colour of a blue/green app, before the Service switched.

SIGINT is what a user's Ctrl-C sends (provision answers "aborted", exit 130); SIGKILL is
a crash that leaves provision no chance to clean up.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.world import World, world
from tests.fakes.kubeapi.server import FakeKubeAPI

pytestmark = pytest.mark.integration

UP = ("up", "--yes", "--override-window", "--reason", "e2e")
LINE_TIMEOUT = 120.0  # for a line of output to appear
EXIT_TIMEOUT = 60.0  # for a signalled process to exit
RUN_TIMEOUT = 240.0  # for a whole `up`
# Objects with generated names, or that come and go as the controllers work.
TRANSIENT = {"pods", "events", "events.events.k8s.io"}


class Running:
    """provision as a real process; its output read line by line as it comes."""

    def __init__(self, process: subprocess.Popen[str], world: World) -> None:
        self.process = process
        self.world = world
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._readers = [threading.Thread(target=self._read, args=(stream,), daemon=True)
                         for stream in (process.stdout, process.stderr)]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = LINE_TIMEOUT) -> str:
        """The first output line matching ``pattern``; fails the test after ``timeout``."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = next((line for line in self.lines if regex.search(line)), None)
                if found is not None:
                    return found
                self._world_healthy()
                left = deadline - time.monotonic()
                if left <= 0 or (self.process.poll() is not None and not self._reading()):
                    break
                self._changed.wait(timeout=min(left, 0.2))
        raise AssertionError(f"no line matching {pattern!r} within {timeout} s (exit code "
                             f"{self.process.poll()}); output:\n{self.output}")

    def _world_healthy(self) -> None:
        # A world that broke (its API server could not start, say) fails the test now,
        # with the reason, rather than after provision's own timeouts.
        if self.world.boot.error is not None:
            raise AssertionError(f"the simulated world failed: {self.world.boot.error!r}; "
                                 f"provision's output:\n{self.output}")

    def _reading(self) -> bool:
        return any(reader.is_alive() for reader in self._readers)

    def finish(self, timeout: float) -> int:
        """The exit code, once the process has exited and its output is read."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = self.process.wait(timeout=0.5)
                break
            except subprocess.TimeoutExpired:
                self._world_healthy()
                if time.monotonic() > deadline:
                    raise AssertionError(f"provision still running after {timeout} s; "
                                         f"output:\n{self.output}") from None
        self.join_readers()
        return code

    def join_readers(self) -> None:
        """Wait until all output is read (the process has exited, or been killed)."""
        for reader in self._readers:
            reader.join(timeout=10)
        alive = [r.name for r in self._readers if r.is_alive()]
        assert not alive, f"output still being read after the process ended: {alive}"

    def stop(self, sig: signal.Signals) -> int:
        """Send ``sig``; the exit code (negative: killed by that signal)."""
        self.process.send_signal(sig)
        return self.finish(EXIT_TIMEOUT)


@contextmanager
def started(w: World, *args: str) -> Iterator[Running]:
    """provision running in the world; killed and reaped at exit if it is still running."""
    running = Running(w.sim.popen(*args), w)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait(timeout=EXIT_TIMEOUT)
        # The readers see end of file once the process is gone; close the pipes after
        # them, never under a reader still blocked in a read.
        running.join_readers()
        for stream in (running.process.stdout, running.process.stderr):
            if stream is not None:
                stream.close()


def run_up(w: World, *extra: str) -> Running:
    """`up` from start to finish as a real process."""
    with started(w, *UP[:1], str(w.sim.config), *UP[1:], *extra) as running:
        running.finish(RUN_TIMEOUT)
    return running


@dataclass(frozen=True)
class Inventory:
    """What the world holds after an `up`."""

    droplets: list[str]  # as listed, duplicates kept
    resources: dict[str, int]  # cloud resource type -> how many
    objects: list[tuple[str, str, str]]  # (group resource, namespace, name), sorted
    nodes: list[str]
    service_colour: str | None


def _world_independent(group: str, namespace: str, name: str) -> str:
    if name.startswith("bootstrap-token-"):
        return "bootstrap-token-<id>"
    if group == "replicasets.apps" and namespace == "provision-system":
        return name.rsplit("-", 1)[0] + "-<template-hash>"
    return name


def inventory(w: World) -> Inventory:
    kube = w.boot.kube
    assert kube is not None, "the API server never started"
    resources = Counter({type_name: len(w.sim.resources(type_name)) for type_name in (
        "digitalocean_droplet", "digitalocean_firewall", "digitalocean_project_resources",
        "digitalocean_reserved_ip", "digitalocean_reserved_ip_assignment",
        "digitalocean_tag", "digitalocean_volume", "digitalocean_vpc")})
    # kubeadm names token Secrets by their random id (bootstrap-token-<id>): each world's own.
    # The autoscaler's pod templates carry a digest of their Secrets (cluster/autoscaler.py,
    # SECRETS_CHECKSUM), whose TLS keys each world makes anew, so their ReplicaSets'
    # template hashes are each world's own too; how many there are still counts.
    objects = sorted((group, namespace, _world_independent(group, namespace, name))
                     for (group, namespace, name), _ in kube.store.all_objects()
                     if group not in TRANSIENT)
    service = kube.get("v1", "Service", "api", "prod") or {}
    return Inventory(
        droplets=sorted(d["name"] for d in w.sim.resources("digitalocean_droplet")),
        resources=dict(resources),
        objects=objects,
        nodes=sorted(n["metadata"]["name"] for n in kube.list("v1", "Node")),
        service_colour=((service.get("spec") or {}).get("selector") or {}).get(
            "provision.dev/colour"))


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Inventory:
    """What one uninterrupted `up` leaves."""
    with world(tmp_path_factory.mktemp("reference")) as w:
        up = w.provision(*UP[:1], str(w.sim.config), *UP[1:])
        assert up.code == 0, up.stderr
        return inventory(w)


def assert_converged(w: World, rerun: Running, reference: Inventory) -> Inventory:
    """The re-run succeeded and the world holds what an uninterrupted `up` leaves."""
    code = rerun.process.returncode
    assert code == 0, f"the re-run exited {code}:\n{rerun.output}"
    assert w.boot.error is None, w.boot.error
    found = inventory(w)
    assert len(found.droplets) == len(set(found.droplets)), found.droplets
    assert found.droplets == reference.droplets
    assert found.resources["digitalocean_reserved_ip"] == 1
    assert found.resources["digitalocean_vpc"] == 1
    assert found.resources == reference.resources
    assert found.nodes == found.droplets, "every droplet is a node, once"
    assert found.objects == reference.objects
    assert found.service_colour == "blue"
    status = w.provision("status", str(w.sim.config), "--output", "json")
    assert status.code == 0, status.stderr
    state = json.loads(status.stdout)
    assert len(state["cluster"]["nodes"]) == len(reference.droplets)
    assert state["cluster"]["last_deploy"] is not None
    return found


def interrupted(sig: signal.Signals, code: int, running: Running) -> None:
    """The process stopped the way ``sig`` makes it stop."""
    if sig == signal.SIGINT:
        assert code == 130, f"exit {code} after SIGINT:\n{running.output}"
        assert "aborted" in running.output
    else:
        assert code == -sig, f"exit {code} after {sig.name}:\n{running.output}"


def test_resumes_after_up_until_infra(tmp_path: Path, reference: Inventory) -> None:
    with world(tmp_path) as w:
        first = run_up(w, "--until", "infra")
        assert first.process.returncode == 0, first.output
        assert "infrastructure of prod is up" in first.output
        assert "nodes Ready" not in first.output

        rerun = run_up(w)
        assert "nothing to do: prod already matches" in rerun.output
        assert_converged(w, rerun, reference)


def test_resumes_after_a_crash_at_the_infrastructure_boundary(
        tmp_path: Path, reference: Inventory) -> None:
    with world(tmp_path) as w:
        w.boot.node_delay = 3600.0  # keeps the kill inside the cluster stage
        with started(w, *UP[:1], str(w.sim.config), *UP[1:]) as first:
            first.wait_for(r"^kubeconfig: ")
            interrupted(signal.SIGKILL, first.stop(signal.SIGKILL), first)
        assert "nodes Ready" not in first.output
        w.boot.node_delay = 0.0

        rerun = run_up(w)
        assert "nothing to do: prod already matches" in rerun.output
        assert_converged(w, rerun, reference)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_resumes_after_a_kill_during_the_bootstrap_wait(
        tmp_path: Path, reference: Inventory, sig: signal.Signals) -> None:
    with world(tmp_path) as w:
        w.boot.node_delay = 3600.0
        with started(w, *UP[:1], str(w.sim.config), *UP[1:]) as first:
            first.wait_for(r"^0/6 nodes Ready; waiting for ")
            interrupted(sig, first.stop(sig), first)
        kube = w.boot.kube
        assert kube is not None
        assert kube.list("v1", "Node") == [], "the kill came before any node joined"
        assert kube.get("v1", "Namespace", "prod") is None, "and before the deploy"

        # The re-run waits for the nodes in its turn; they join while it does.
        with started(w, *UP[:1], str(w.sim.config), *UP[1:]) as rerun:
            rerun.wait_for(r"^0/6 nodes Ready; waiting for ")
            w.boot.node_delay = 0.0
            rerun.finish(RUN_TIMEOUT)
        assert "nothing to do: prod already matches" in rerun.output
        assert "6/6 nodes Ready" in rerun.output
        assert_converged(w, rerun, reference)


@contextmanager
def rollouts_held(w: World, first: Running) -> Iterator[None]:
    """Pause the API server's controllers before `first` deploys; resume at exit.

    `up` deploys only once the platform gate has seen the add-ons rolled out, so the paused
    controllers are advanced by hand until they are, and not one pass further: the apps'
    rollouts then wait for the resume.
    """
    first.wait_for(r"nodes Ready")  # the API server exists; the nodes are held back
    kube = w.boot.kube
    assert kube is not None
    kube.controllers.pause()
    w.boot.node_delay = 0.0
    try:
        settle_platform(w, kube)
        yield
    finally:
        kube.controllers.resume()


def settle_platform(w: World, kube: FakeKubeAPI, timeout: float = LINE_TIMEOUT) -> None:
    """Run controller passes by hand until every node is initialised and the add-ons are up."""
    from provisioner.bootstrap import platform

    wanted = platform.workloads("calico")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nodes = kube.list("v1", "Node")
        if w.boot.addons_installed and len(nodes) == 6:
            kube.controllers.run_once()
            tainted = [n for n in kube.list("v1", "Node") if any(
                t["key"] == platform.UNINITIALIZED for t in n["spec"].get("taints", []))]
            if not tainted and not any(platform.rollout(kube.get(
                    "apps/v1", x.kind, x.name, x.namespace)) for x in wanted):
                return
        else:
            time.sleep(0.05)
    raise AssertionError("the add-ons did not settle with the controllers advanced by hand")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_resumes_after_a_kill_during_the_deploy(
        tmp_path: Path, reference: Inventory, sig: signal.Signals) -> None:
    with world(tmp_path) as w:
        w.boot.node_delay = 3600.0
        with started(w, *UP[:1], str(w.sim.config), *UP[1:]) as first, \
                rollouts_held(w, first):
            first.wait_for(r"^applied \d+ objects to namespace prod")
            first.wait_for(r"^api \d+/\d+ updated")
            kube = w.boot.kube
            assert kube is not None
            deployment = kube.get("apps/v1", "Deployment", "api-blue", "prod")
            assert deployment is not None and not (deployment.get("status") or {}).get(
                "availableReplicas"), "the rollout is held"
            interrupted(sig, first.stop(sig), first)

        rerun = run_up(w)
        assert "nothing to do: prod already matches" in rerun.output
        assert "switched" not in rerun.output
        assert_converged(w, rerun, reference)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])
def test_resumes_a_colour_switch_killed_during_its_rollout(
        tmp_path: Path, reference: Inventory, sig: signal.Signals) -> None:
    with world(tmp_path) as w:
        done = run_up(w)
        assert done.process.returncode == 0, done.output
        kube = w.boot.kube
        assert kube is not None
        w.sim.write_config(edit=lambda d: d["apps"][0].update(image="ghcr.io/acme/api:1.5.0"))

        kube.controllers.pause()
        try:
            with started(w, *UP[:1], str(w.sim.config), *UP[1:]) as second:
                second.wait_for(r"^applied \d+ objects to namespace prod")
                second.wait_for(r"^api \d+/\d+ updated")
                assert kube.get("apps/v1", "Deployment", "api-green", "prod") is not None
                interrupted(sig, second.stop(sig), second)
        finally:
            kube.controllers.resume()
        service = kube.get("v1", "Service", "api", "prod")
        assert service is not None
        assert service["spec"]["selector"]["provision.dev/colour"] == "blue", \
            "blue serves until green is healthy"

        rerun = run_up(w)
        assert rerun.process.returncode == 0, rerun.output
        assert "api: traffic switched from blue to green" in rerun.output
        found = inventory(w)
        assert found.droplets == reference.droplets
        assert found.resources == reference.resources
        assert found.service_colour == "green"
        deployments = [name for group, namespace, name in found.objects
                       if group == "deployments.apps" and namespace == "prod"]
        assert deployments == ["api-blue", "api-green"], "green serves, blue kept for rollback"
        green = kube.get("apps/v1", "Deployment", "api-green", "prod")
        assert green is not None
        images = [c["image"] for c in green["spec"]["template"]["spec"]["containers"]]
        assert images == ["ghcr.io/acme/api:1.5.0"]
        # Besides the second colour (and its ReplicaSet), the same objects as the reference.
        extra = {key for key in found.objects if key not in reference.objects}
        assert {(group, name) for group, _, name in extra} <= {
            ("deployments.apps", "api-green")} | {
            ("replicasets.apps", name) for _, _, name in extra if name.startswith("api-green-")}
        assert not [key for key in reference.objects if key not in found.objects]
