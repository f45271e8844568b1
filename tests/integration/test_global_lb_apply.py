"""Evacuating a region through the global load balancer, applied by real Terraform.

``apply_global_lb`` runs terraform/fleet/ with provision's own runner (the embedded
Terraform, a child process) against the test provider released as 2.37.0 (its schema
DERIVED FROM the provider's v2.37.0 source, not a dump: tests/support/provider_schema_2_37.py).
The first apply creates the GLOBAL load balancer with the regions not evacuated; a
restore is an in-place update of ``target_load_balancer_ids`` (the same load balancer),
and the regional load balancers are left as they were.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.gate.global_lb import apply_global_lb, render_global_lb
from provisioner.infra.engine import embedded
from tests.fakes.doapi import seeding
from tests.fakes.doprovider.cloud import Cloud
from tests.oracles.terraform import prepare_plugin_env
from tests.support.provider_schema_2_37 import DERIVED

pytestmark = pytest.mark.oracle
LBS = "digitalocean_loadbalancer"


def test_evacuate_then_restore_changes_only_the_targets(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    env = prepare_plugin_env(tmp_path / "tf", token="sim-token",
                             also_versions={"2.37.0": DERIVED})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    cloud = Cloud(Path(env["DO_SIM_STATE"]))
    with cloud.transaction() as account:
        regional = {region: str(seeding.add_load_balancer(account, f"{region}.shop",
                                                           region=region)["id"])
                    for region in ("fra1", "ams3", "nyc3")}
    before = {k: v for k, v in cloud.snapshot()["resources"][LBS].items()}
    work = tmp_path / "fleet"

    first = apply_global_lb(work, render_global_lb("acme", regional, {"fra1"}),
                            engine=embedded(), token="sim-token")
    assert [c.action for c in first.plan.changes] == ["create"]
    lb_id = first.outputs["global_load_balancer_id"]
    stored = cloud.snapshot()["resources"][LBS][lb_id]
    assert stored["type"] == "GLOBAL" and stored["name"] == "acme.fleet.global"
    assert sorted(stored["target_load_balancer_ids"]) == sorted(
        [regional["ams3"], regional["nyc3"]])

    second = apply_global_lb(work, render_global_lb("acme", regional, set()),
                             engine=embedded(), token="sim-token")
    assert [c.action for c in second.plan.changes] == ["update"]
    assert second.outputs["global_load_balancer_id"] == lb_id
    after = cloud.snapshot()["resources"][LBS]
    assert sorted(after[lb_id]["target_load_balancer_ids"]) == sorted(regional.values())
    assert {k: v for k, v in after.items() if k != lb_id} == before  # regions untouched
    assert (work / "state" / "terraform.tfstate").is_file()
