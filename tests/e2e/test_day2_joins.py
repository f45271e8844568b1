"""Nodes made after the first hours join the running cluster (issue 14, defects 1 and 2).

In the simulated world (tests/e2e/world.py) droplets run kubeadm as kubeadm does
(tests/support/kubeadm.py: kubernetes/kubernetes release-1.36, cited there): `kubeadm init`
makes the bootstrap token with the init configuration's ttl (4 h) and uploads the
control-plane certificates owned by a 2 h token; the token cleaner deletes expired tokens
(and with them kubeadm-certs); a droplet joins only with a token the cluster accepts at
provision's clock, a control plane only with a key that opens kubeadm-certs; a droplet
whose user-data runs `kubeadm init` beside the running cluster starts a second, empty one
(counted). The clock is pinned five hours after `up`: past both TTLs.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from provisioner.pipeline import cluster_stage
from tests.e2e.world import World, world
from tests.support import clock
from tests.support.rendering import set_workers
from tests.support.sim import TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]

LATER = dt.timedelta(hours=5)  # past the token's 4 h and kubeadm-certs' 2 h
# How long `up` waits for the nodes here: a node that cannot join fails the test in this
# time instead of the real 20 minutes (joins in the world take well under a second).
NODES_WAIT = 45.0
UP = ("--yes", "--until", "cluster")


def _short_node_wait(monkeypatch: pytest.MonkeyPatch) -> None:
    original = cluster_stage.bring_up

    def bring_up(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("nodes_timeout", NODES_WAIT)
        return original(*args, **kwargs)

    monkeypatch.setattr(cluster_stage, "bring_up", bring_up)


def _droplet_id(w: World, name: str) -> str:
    return str(next(d["id"] for d in w.sim.resources("digitalocean_droplet")
                    if d["name"] == name))


def _up_then_later(w: World, monkeypatch: pytest.MonkeyPatch) -> str:
    """`up`, then five hours on: the init token and kubeadm-certs are gone. Returns the
    init token's id."""
    first = w.provision("up", str(w.sim.config), *UP)
    assert first.code == 0, first.stderr
    assert w.boot.error is None
    kube = w.boot.kube
    assert kube is not None
    token = str(json.loads((w.sim.workdir / "secrets" / "bootstrap.json").read_text())[
        "bootstrap_token"])
    token_id = token.split(".")[0]
    assert kube.get("v1", "Secret", f"bootstrap-token-{token_id}", "kube-system")
    clock.pin(monkeypatch, clock.pinned() + LATER)
    _short_node_wait(monkeypatch)
    kube.wait_for(lambda: kube.get("v1", "Secret", f"bootstrap-token-{token_id}",
                                   "kube-system") is None
                  and kube.get("v1", "Secret", "kubeadm-certs", "kube-system") is None,
                  timeout=30)
    return token


def _scale_workers(w: World, count: int) -> None:
    w.sim.write_config(edit=lambda d: set_workers(d["worker_pools"][0], count))


def _joined(w: World, name: str) -> str | None:
    """How the droplet ``name`` joined (waiting a little for the world's next pass)."""
    rid = _droplet_id(w, name)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if rid in w.boot.joined or rid in w.boot.second_inits:
            break
        time.sleep(0.1)
    return w.boot.joined.get(rid)


def test_a_worker_added_after_the_credentials_expired_joins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with world(tmp_path) as w:
        old_token = _up_then_later(w, monkeypatch)
        before = set(w.sim.droplet_names())
        _scale_workers(w, 4)
        up = w.provision("up", str(w.sim.config), *UP)
        assert up.code == 0, f"{up.stderr}\nrefused joins: {w.boot.refused}"
        assert w.boot.error is None
        (added,) = set(w.sim.droplet_names()) - before
        assert _joined(w, added) == "worker"
        assert "7/7 nodes Ready" in up.stderr
        assert "made fresh join credentials" in up.stderr
        fresh = json.loads((w.sim.workdir / "secrets" / "bootstrap.json").read_text())
        assert fresh["bootstrap_token"] != old_token
        assert fresh["bootstrap_token"] not in up.stderr + up.stdout
        assert not w.boot.second_inits


def test_no_droplet_is_made_while_the_cluster_does_not_answer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The API does not answer `up` (the operator's path to it is down) five hours on:
    fresh join credentials cannot be made, and the work folder's have expired, so a new
    worker would never join and no later `up` would mend it (user-data is read once).
    Refused before anything is created; once the API answers, the same `up` adds a node
    that joins. (Before: the droplet was created with the expired token and never joined.)"""
    with world(tmp_path) as w:
        _up_then_later(w, monkeypatch)
        before = set(w.sim.droplet_names())
        kubeconfig = w.sim.workdir / "kubeconfig"
        good = kubeconfig.read_text()
        server = next(line for line in good.splitlines() if "server:" in line)
        with socket.socket() as probe:  # a port nothing listens on
            probe.bind(("127.0.0.1", 0))
            closed = probe.getsockname()[1]
        kubeconfig.write_text(good.replace(server, f"    server: https://127.0.0.1:{closed}"))
        _scale_workers(w, 4)
        refused = w.provision("up", str(w.sim.config), *UP)
        assert refused.code == 1, refused.stderr
        assert "does not answer, so provision cannot make join credentials" in refused.stderr
        assert set(w.sim.droplet_names()) == before, "nothing was created"

        kubeconfig.write_text(good)
        again = w.provision("up", str(w.sim.config), *UP)
        assert again.code == 0, f"{again.stderr}\nrefused joins: {w.boot.refused}"
        (added,) = set(w.sim.droplet_names()) - before
        assert _joined(w, added) == "worker"
        assert w.boot.error is None


def test_a_replaced_first_control_plane_node_joins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cp-1 lost (its droplet deleted through the API) and recreated by `up`: it joins the
    running cluster as a control plane with fresh certificates, and never runs init."""
    with world(tmp_path) as w:
        _up_then_later(w, monkeypatch)
        lost = _droplet_id(w, "prod-cp-1")
        request = urllib.request.Request(f"{w.sim.api.endpoint}droplets/{lost}",
                                         method="DELETE",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 204
        up = w.provision("up", str(w.sim.config), *UP, "--allow-control-plane-changes")
        assert up.code == 0, f"{up.stderr}\nrefused joins: {w.boot.refused}"
        assert w.boot.error is None
        assert _droplet_id(w, "prod-cp-1") != lost
        role = _joined(w, "prod-cp-1")
        assert not w.boot.second_inits, "cp-1 ran kubeadm init: a second, empty cluster"
        assert role == "control-plane", w.boot.refused


def test_a_plan_saved_on_a_running_cluster_applies_hours_later(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan --out` makes the join credentials its new droplets carry (the saved plan cannot
    be changed by `up --plan`), so the reviewed file applies and its node joins."""
    with world(tmp_path) as w:
        _up_then_later(w, monkeypatch)
        before = set(w.sim.droplet_names())
        _scale_workers(w, 4)
        saved = tmp_path / "prod.tfplan"
        plan = w.provision("plan", str(w.sim.config), "--out", str(saved))
        assert plan.code == 0, plan.stderr
        up = w.provision("up", str(w.sim.config), "--plan", str(saved), *UP)
        assert up.code == 0, f"{up.stderr}\nrefused joins: {w.boot.refused}"
        assert "made fresh join credentials" in plan.stderr
        (added,) = set(w.sim.droplet_names()) - before
        assert _joined(w, added) == "worker"


def test_a_saved_plan_whose_credentials_expired_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The embedded Terraform's `show -json` of a saved plan carries the sensitive
    bootstrap_secrets (hashicorp/terraform internal/command/jsonplan/plan.go,
    marshalPlanVariables): `up --plan` reads the plan's token from it and asks the cluster,
    which no longer has it five hours later. Nothing is applied."""
    with world(tmp_path) as w:
        first = w.provision("up", str(w.sim.config), *UP)
        assert first.code == 0, first.stderr
        before = w.sim.droplet_names()
        _scale_workers(w, 4)
        saved = tmp_path / "prod.tfplan"
        plan = w.provision("plan", str(w.sim.config), "--out", str(saved))
        assert plan.code == 0, plan.stderr
        clock.pin(monkeypatch, clock.pinned() + LATER)
        _short_node_wait(monkeypatch)  # were the plan applied, its node could not join
        up = w.provision("up", str(w.sim.config), "--plan", str(saved), *UP)
        assert up.code == 2, up.stderr
        assert "the saved plan's join credentials are not accepted by the cluster" in up.stderr
        assert "Traceback" not in up.stderr
        assert w.sim.droplet_names() == before


def test_a_refused_plan_writes_nothing_to_the_cluster(tmp_path: Path) -> None:
    """A plan that adds a worker and resizes the control plane is refused without
    --allow-control-plane-changes (exit 3): no join credentials are made on the cluster
    for it first (before: a fresh token Secret was written, then the plan refused)."""
    with world(tmp_path) as w:
        first = w.provision("up", str(w.sim.config), *UP)
        assert first.code == 0, first.stderr
        kube = w.boot.kube
        assert kube is not None
        secrets = {s["metadata"]["name"] for s in kube.objects("v1", "Secret", "kube-system")}
        saved = (w.sim.workdir / "secrets" / "bootstrap.json").read_bytes()
        w.sim.write_config(edit=lambda d: (set_workers(d["worker_pools"][0], 4),
                                           d["control_plane"].update(size="s-8vcpu-16gb")))
        refused = w.provision("up", str(w.sim.config), *UP)
        assert refused.code == 3, refused.stderr
        assert "--allow-control-plane-changes" in refused.stderr
        assert {s["metadata"]["name"] for s in kube.objects(
            "v1", "Secret", "kube-system")} == secrets
        assert (w.sim.workdir / "secrets" / "bootstrap.json").read_bytes() == saved
        assert "made fresh join credentials" not in refused.stderr
