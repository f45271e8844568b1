"""`status`'s run rate and `plan`'s cost change against the fake DigitalOcean API.

Droplet prices are the account's own (GET /v2/sizes `price_monthly`, digitalocean/openapi
sizes/models/size.yml): this account's s-4vcpu-8gb is seeded at $45.00 instead of the
$48.00 list price, so a figure that took the list price would show. The rest is priced from
provisioner/cost/prices.json: load balancer node $12.00, volume $0.10/GiB, reserved IPv4
free while assigned and $4.00 unassigned. Every figure below is worked out by hand.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.support.sim import simulation

pytestmark = pytest.mark.integration

ACCOUNT_S_4VCPU_8GB = 45.00
S_2VCPU_4GB = 24.00  # the fake's /v2/sizes price, as the list's
S_8VCPU_16GB = 96.00
LB_NODE = 12.00
VOLUME_GIB = 0.10
UNASSIGNED_IP = 4.00


def _discount(sim: Any) -> None:
    with sim.api.cloud.transaction() as account:
        for size in account.data["catalog"]["sizes"]:
            if size["slug"] == "s-4vcpu-8gb":
                size["price_monthly"] = ACCOUNT_S_4VCPU_8GB
                size["price_hourly"] = round(ACCOUNT_S_4VCPU_8GB / 672, 5)


def _status(sim: Any) -> dict[str, Any]:
    result = CliRunner(env=sim.env).invoke(cli, ["status", str(sim.config), "--output",
                                                 "json"])
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_status_run_rate_counts_every_size_the_autoscaled_droplet_and_nothing_else(
        tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        _discount(sim)
        api = sim.api
        fra = {"region": "fra1"}
        cps = [api.add_droplet(f"prod-cp-{i}", size="s-4vcpu-8gb",
                               tags=["provision:prod", "provision:prod:controller"], **fra)
               for i in (1, 2, 3)]
        workers = [api.add_droplet(f"prod-general-{i}-b75f3", size="s-2vcpu-4gb",
                                   tags=["provision:prod", "provision:prod:worker",
                                         "provision:prod:pool:general"], **fra)
                   for i in (1, 2)]
        # The autoscaler's droplet: found by its own tag (it lacks provision:prod here).
        api.add_droplet("prod-general-as-7f3a", size="s-8vcpu-16gb",
                        tags=["provision:prod:autoscaled", "provision:prod:worker"], **fra)
        neighbour = api.add_droplet("staging-general-1", size="s-8vcpu-16gb",
                                    tags=["provision:staging", "provision:staging:worker"],
                                    **fra)
        api.provider_create("digitalocean_reserved_ip", region="fra1", droplet_id=cps[0])
        api.add_load_balancer("prod.api", droplet_ids=workers, region="fra1")
        api.add_load_balancer("staging.web", droplet_ids=[neighbour], region="fra1")
        api.add_volume("pvc-3f2b", 50, droplet_ids=[workers[0]], region="fra1")
        api.add_volume("pvc-elsewhere", 100, region="fra1")  # detached, untagged: unproven

        cost = _status(sim)["cost"]
        monthly = {line["item"]: line["monthly"]["max"] for line in cost["lines"]}
        assert monthly == pytest.approx({
            "control plane: 3 x s-4vcpu-8gb": 3 * ACCOUNT_S_4VCPU_8GB,  # 135.00
            "workers: 2 x s-2vcpu-4gb": 2 * S_2VCPU_4GB,  # 48.00
            "autoscaled workers: 1 x s-8vcpu-16gb": 1 * S_8VCPU_16GB,  # 96.00
            "load balancer prod.api": 1 * LB_NODE,  # 12.00
            next(k for k in monthly if k.startswith("reserved IP ")): 0.00,  # assigned
            "volume pvc-3f2b: 50 GiB": 50 * VOLUME_GIB,  # 5.00
        })
        total = 3 * ACCOUNT_S_4VCPU_8GB + 2 * S_2VCPU_4GB + S_8VCPU_16GB + LB_NODE + 5.00
        assert cost["total"] == {"min": pytest.approx(total), "max": pytest.approx(total)}
        assert total == pytest.approx(296.00)
        assert "/v2/sizes" in cost["prices"]

        text = CliRunner(env=sim.env).invoke(cli, ["status", str(sim.config)]).stdout
        assert "Run rate now (US$ a month):" in text
        assert "autoscaled workers: 1 x s-8vcpu-16gb" in text
        assert "$296.00" in text


def test_status_without_a_token_says_the_run_rate_is_not_read(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        env = {**sim.env, "DIGITALOCEAN_TOKEN": "", "DIGITALOCEAN_ACCESS_TOKEN": ""}
        result = CliRunner(env=env).invoke(cli, ["status", str(sim.config)])
        assert result.exit_code == 0, result.stderr
        assert "run rate: no DIGITALOCEAN_TOKEN" in result.stdout


def _plan(sim: Any) -> dict[str, Any]:
    result = sim.run("plan", str(sim.config), "--output", "json")
    assert result.code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_plan_shows_the_change_from_what_runs_to_what_the_file_makes(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        _discount(sim)
        # The simulation's file is the production example without backups: 3 control-plane
        # droplets s-4vcpu-8gb and the general pool autoscaled 3-9 of them, the floating
        # IP, app api's load balancer, elasticsearch 3 x 50 GiB.
        fixed = 3 * ACCOUNT_S_4VCPU_8GB + LB_NODE + 3 * 50 * VOLUME_GIB  # 162.00
        after = fixed + 3 * ACCOUNT_S_4VCPU_8GB  # 297.00 at min autoscale
        after_max = fixed + 9 * ACCOUNT_S_4VCPU_8GB  # 567.00 at max autoscale
        first = _plan(sim)
        assert first["cost"]["total"] == {"min": pytest.approx(after),
                                          "max": pytest.approx(after_max)}
        assert first["cost_change"] == {"before": {"min": 0.0, "max": 0.0},
                                        "after": {"min": after, "max": after_max},
                                        "delta": {"min": after, "max": after_max}}

        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        # Made, not yet claimed by the first node: an unassigned reserved IP is billed.
        # Terraform made the pool's floor (3): nothing autoscaled runs yet.
        before = 6 * ACCOUNT_S_4VCPU_8GB + UNASSIGNED_IP  # 274.00
        second = _plan(sim)["cost_change"]
        assert second["before"] == {"min": pytest.approx(before), "max": pytest.approx(before)}
        assert second["delta"]["min"] == pytest.approx(after - before)  # +23.00
        assert second["delta"]["max"] == pytest.approx(after_max - before)  # +293.00

        sim.claim_floating_ip("prod-cp-1")
        before = 6 * ACCOUNT_S_4VCPU_8GB  # 270.00: the held IP is free
        text = sim.run("plan", str(sim.config))
        assert text.code == 0, text.stderr
        # 270 -> 297 at min (+27) and 567 at max (+297): never only one end of the range.
        assert ("Cost change: $270.00 -> $297.00-$567.00 a month (+$27.00 to +$297.00)"
                in text.stdout)


SNAPSHOT_GIB = 0.06  # prices.json snapshot_gib: "$0.06 GB per month for Droplets"


def test_plan_prices_the_pre_baked_image_at_its_listed_size(tmp_path: Path) -> None:
    """With digitalocean.image: snapshot:<name> the image is billed while it exists
    (snapshots are billed by size_gigabytes, openapi snapshots/models/snapshots_base.yml):
    `plan` lists it at the size GET /v2/snapshots gives the one Terraform picks (exact
    name, region, newest)."""
    name = "provision-prod-k8s-1.36.2-20261201t000000z"
    with simulation(tmp_path) as sim:
        with sim.api.cloud.transaction() as account:
            for sid, created, gib in (("170000009", "2026-12-01T00:00:00Z", 9.0),
                                      ("170000010", "2026-12-02T00:00:00Z", 2.5)):
                account.put("digitalocean_droplet_snapshot", {
                    "id": sid, "name": name, "regions": ["fra1"], "created_at": created,
                    "resource_id": "400000001", "resource_type": "droplet",
                    "min_disk_size": 25, "size_gigabytes": gib, "tags": []})
        sim.write_config(edit=lambda d: d["digitalocean"].update(image=f"snapshot:{name}"))
        lines = {line["item"]: line for line in _plan(sim)["cost"]["lines"]}
        line = lines[f"node image snapshot {name}: 2.5 GiB"]
        assert line["monthly"] == {"min": pytest.approx(2.5 * SNAPSHOT_GIB),
                                   "max": pytest.approx(2.5 * SNAPSHOT_GIB)}  # 0.15
