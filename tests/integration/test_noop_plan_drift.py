"""A no-op `plan` stays quick without hiding drift: what changed in the account shows.

`plan` refreshes every resource against the account before planning (Terraform's default,
never `-refresh=false`); the simulated provider now answers those reads from the account
decoded at its last load or save while the file is the same one (tests/unit/
test_fake_account.py), which made a no-op plan of 500 workers about ten times quicker. These
tests hold the other half: a droplet deleted through the API, as someone in the control
panel or with doctl would, and a droplet resized outside Terraform (the account's record
changed, as DigitalOcean's resize action leaves it), both show in the very next plan.
Terraform's refresh reads each object with the provider's ReadResource (terraform
internal/terraform/node_resource_abstract_instance.go, `refresh`); a droplet the read
finds gone is planned anew (the real provider's resourceDigitalOceanDropletRead clears the
id on a 404: terraform-provider-digitalocean v2.34.1, digitalocean/droplet/
resource_droplet.go).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.doprovider.cloud import Cloud
from tests.support.sim import TOKEN, Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]


@pytest.fixture
def built(tmp_path: Any) -> Iterator[Simulation]:
    with simulation(tmp_path) as sim:
        up = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert up.code == 0, up.stderr
        yield sim


def _plan(sim: Simulation) -> dict[str, Any]:
    result = sim.run("plan", str(sim.config), "--output", "json")
    assert result.code == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _worker(sim: Simulation) -> dict[str, Any]:
    return next(d for d in sim.resources("digitalocean_droplet") if "-general-" in d["name"])


def test_a_droplet_deleted_out_of_band_shows_in_the_next_plan(built: Simulation) -> None:
    assert _plan(built)["changes_pending"] is False  # first: truly nothing to do
    victim = _worker(built)
    request = urllib.request.Request(f"{built.api.endpoint}droplets/{victim['id']}",
                                     method="DELETE",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204
    plan = _plan(built)
    assert plan["changes_pending"] is True
    assert [(c["name"], c["action"]) for c in plan["changes"]
            if c["type"] == "digitalocean_droplet"] == [(victim["name"], "create")]


def test_a_droplet_resized_out_of_band_shows_in_the_next_plan(built: Simulation) -> None:
    assert _plan(built)["changes_pending"] is False
    victim = _worker(built)
    # A resize in the control panel: the account's record now has the other size.
    with Cloud(built.api.cloud.path).transaction() as account:
        record = account.get("digitalocean_droplet", str(victim["id"]))
        assert record is not None
        record["size"] = "s-8vcpu-16gb"
    plan = _plan(built)
    changed = [c for c in plan["changes"] if c["type"] == "digitalocean_droplet"]
    assert [(c["name"], c["action"]) for c in changed] == [(victim["name"], "update")]
    assert "size" in changed[0]["attributes"]
