"""`provision plan/up/destroy` through real Terraform against a simulated DigitalOcean.

One account is shared by the fake Terraform provider and the fake API, so preflight reads
what Terraform created, and every assertion below looks at the account itself.
"""

from __future__ import annotations

import json
import re
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.support.rendering import set_workers
from tests.support.sim import Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]


@pytest.fixture
def sim(tmp_path: Path) -> Any:
    with simulation(tmp_path) as running:
        yield running


def _ids(sim: Simulation, prefix: str) -> dict[str, str]:
    return {d["name"]: str(d["id"]) for d in sim.resources("digitalocean_droplet")
            if d["name"].startswith(prefix)}


def _workers(sim: Simulation) -> list[str]:
    return [re.sub(r"-[0-9a-f]{5}$", "", n) for n in sim.droplet_names() if "-general-" in n]


def _scale(sim: Simulation, count: int) -> None:
    sim.write_config(edit=lambda d: set_workers(d["worker_pools"][0], count))


def test_up_converges_scales_and_destroys(sim: Simulation) -> None:
    config = str(sim.config)

    first = sim.run("up", config, "--yes", "--until", "infra")
    assert first.code == 0, first.stderr
    assert sim.droplet_names()[:3] == ["prod-cp-1", "prod-cp-2", "prod-cp-3"]
    assert _workers(sim) == ["prod-general-1", "prod-general-2", "prod-general-3"]
    assert len(sim.resources("digitalocean_reserved_ip")) == 1
    assert len(sim.resources("digitalocean_firewall")) == 2
    assert "creating droplet prod-cp-1..." in first.stderr
    assert re.search(r"created droplet prod-cp-1 \(\d+ s\)", first.stderr)
    assert re.search(r"infrastructure of prod is up: 1[0-9] created, 0 changed, 0 replaced, "
                     r"0 destroyed in ", first.stderr)
    outputs = json.loads((sim.workdir / "infrastructure.json").read_text())
    assert [c["name"] for c in outputs["controllers"]] == ["prod-cp-1", "prod-cp-2", "prod-cp-3"]
    assert outputs["api_endpoint"] == sim.resources("digitalocean_reserved_ip")[0]["ip_address"]
    state = sim.workdir / "state" / "terraform.tfstate"
    assert stat.S_IMODE(state.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.parent.stat().st_mode) == 0o700
    controllers = _ids(sim, "prod-cp-")

    again = sim.run("up", config, "--yes", "--until", "infra")
    assert again.code == 0, again.stderr
    assert "No changes: the infrastructure of prod matches its environment file." in again.stderr
    assert "nothing to do" in again.stderr

    pending = sim.run("plan", config, "--output", "json", "--exit-code")
    assert pending.code == 0, pending.stderr
    assert json.loads(pending.stdout)["changes_pending"] is False

    _scale(sim, 5)
    planned = sim.run("plan", config, "--output", "json", "--exit-code")
    assert planned.code == 4, planned.stderr
    created = [c for c in json.loads(planned.stdout)["changes"]
               if c["type"] == "digitalocean_droplet"]
    assert [c["action"] for c in created] == ["create", "create"]
    assert sim.run("up", config, "--yes", "--until", "infra").code == 0
    assert _workers(sim) == [f"prod-general-{i}" for i in range(1, 6)]

    _scale(sim, 2)
    down = sim.run("up", config, "--yes", "--until", "infra")
    assert down.code == 0, down.stderr
    assert _workers(sim) == ["prod-general-1", "prod-general-2"]
    assert _ids(sim, "prod-cp-") == controllers, "control-plane droplets must be untouched"

    # A new node configuration replaces workers (new generation) but never a control plane.
    sim.write_config(edit=lambda d: (set_workers(d["worker_pools"][0], 2),
                                     d["kubernetes"].update(version="1.36.3")))
    rolled = sim.run("up", config, "--yes", "--until", "infra")
    assert rolled.code == 0, rolled.stderr
    assert _ids(sim, "prod-cp-") == controllers
    assert _workers(sim) == ["prod-general-1", "prod-general-2"]
    assert "replaced" in rolled.stderr or "destroyed droplet" in rolled.stderr

    refused = sim.run("destroy", config, "--yes")
    assert refused.code == 3 and "deletion_protection" in refused.stderr
    assert len(sim.droplet_names()) == 5

    gone = sim.run("destroy", config, "--yes", "--force")
    assert gone.code == 0, gone.stderr
    assert sim.droplet_names() == []
    assert sim.resources("digitalocean_reserved_ip") == []
    assert sim.resources("digitalocean_vpc") == []
    assert json.loads(state.read_text())["resources"] == []


def test_saved_plan_is_applied_exactly(sim: Simulation, tmp_path: Path) -> None:
    config = str(sim.config)
    saved = tmp_path / "reviewed.tfplan"
    planned = sim.run("plan", config, "--out", str(saved))
    assert planned.code == 0, planned.stderr
    assert "Plan: 1" in planned.stdout and stat.S_IMODE(saved.stat().st_mode) == 0o600
    sim.write_config(edit=lambda d: set_workers(d["worker_pools"][0], 1))  # ignored: plan wins
    applied = sim.run("up", config, "--plan", str(saved), "--yes", "--until", "infra")
    assert applied.code == 0, applied.stderr
    assert len(_workers(sim)) == 3


def test_saved_plan_of_another_environment_is_refused(sim: Simulation, tmp_path: Path) -> None:
    saved = tmp_path / "other.tfplan"
    assert sim.run("plan", str(sim.config), "--out", str(saved)).code == 0
    sim.write_config({"name": "other"})
    refused = sim.run("up", str(sim.config), "--plan", str(saved), "--yes", "--until", "infra")
    assert refused.code == 2
    assert "was made for environment 'prod', not 'other'" in refused.stderr


def test_up_without_terminal_needs_yes(sim: Simulation) -> None:
    result = sim.run("up", str(sim.config), "--until", "infra")
    assert result.code == 2 and "pass --yes" in result.stderr
    assert sim.droplet_names() == []


def test_control_plane_changes_need_explicit_consent(sim: Simulation) -> None:
    config = str(sim.config)
    assert sim.run("up", config, "--yes", "--until", "infra").code == 0
    sim.write_config(edit=lambda d: d["control_plane"].update(size="s-8vcpu-16gb"))
    refused = sim.run("up", config, "--yes", "--until", "infra")
    assert refused.code == 3, refused.stderr
    assert "prod-cp-1 (update size)" in refused.stderr
    assert {d["size"] for d in sim.resources("digitalocean_droplet")
            if d["name"].startswith("prod-cp-")} == {"s-4vcpu-8gb"}
    allowed = sim.run("up", config, "--yes", "--until", "infra",
                      "--allow-control-plane-changes")
    assert allowed.code == 0, allowed.stderr


def test_provider_error_names_the_resource_and_keeps_partial_state(tmp_path: Path) -> None:
    with simulation(tmp_path, {"DO_SIM_FAIL": "digitalocean_droplet:prod-cp-2"}) as sim:
        failed = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert failed.code == 1
        assert "digitalocean_droplet.controllers[1]" in failed.stderr
        assert "simulated failure" in failed.stderr
        assert "failed creating droplet prod-cp-2" in failed.stderr
        assert "Traceback" not in failed.stderr
        assert "prod-cp-2" not in sim.droplet_names()
        state = json.loads((sim.workdir / "state" / "terraform.tfstate").read_text())
        assert state["resources"], "what was created is kept in state"
        del sim.env["DO_SIM_FAIL"]
        retried = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert retried.code == 0, retried.stderr
        names = sim.droplet_names()
        assert len(names) == len(set(names)) == 6


@pytest.mark.parametrize(("problem", "expected"), [
    ("token", "token was rejected (401)"),
    ("region", "region 'fra1' is not accepting new droplets"),
    ("size", "size 's-4vcpu-8gb' (control_plane.size) is not offered in fra1"),
    ("key", "is not in the account; upload it"),
    ("limit", "the account may run 4 droplets and has 0; this environment needs 6 more"),
])
def test_preflight_stops_before_anything_is_created(sim: Simulation, problem: str,
                                                    expected: str) -> None:
    if problem == "token":
        sim.env["DIGITALOCEAN_TOKEN"] = "wrong"
        sim.env["DIGITALOCEAN_ACCESS_TOKEN"] = "wrong"
    elif problem == "region":
        sim.api.faults.unavailable_regions = {"fra1"}
    elif problem == "size":
        sim.api.faults.sizes_not_offered = {"fra1": {"s-4vcpu-8gb"}}
    elif problem == "key":
        sim.write_config(edit=lambda d: d["digitalocean"]["ssh_keys"].append(
            "aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99"))
    else:
        sim.api.faults.droplet_limit = 4
    result = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert result.code == 1, result.stderr
    assert expected in result.stderr
    if problem == "token":  # nothing else can be read without a token
        assert len(result.stderr.strip().splitlines()) == 1
    else:
        assert "preflight found problems; nothing was created" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 2, "one line per problem"
    assert sim.droplet_names() == []
    assert not (sim.workdir / "state" / "terraform.tfstate").exists()
