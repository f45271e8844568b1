"""Environments whose names share prefixes live in one account; one's destroy, sweep and status
never touch or list another's.

prod, prod2 and prod-eu, all with deletion_protection, are brought up by real Terraform in
one simulated account. The hostile review's sweep of prod deleted prod2's API load balancer
(the tag `provision:prod` is a substring of its target tag `provision:prod2:controller`) and
prod-eu's `prod-eu.api` (the name starts with `prod`).

What ownership rests on (provisioner/cloud/ownership.py):

* A DigitalOcean load balancer's `tag` is "The name of a Droplet tag corresponding to Droplets
  assigned to the load balancer" (digitalocean/openapi,
  specification/resources/load_balancers/models/attributes.yml at 30504aa); pydo 0.13.0
  `load_balancers.create`: "Set tag to the name of a tag. All Droplets with this tag applied
  will be assigned to the load balancer", mutually exclusive with `droplet_ids`. It selects
  targets; it is no ownership label. So a load balancer is prod's when its target tag equals
  one of prod's role tags, or its name is one prod defines and every droplet it targets is
  prod's. Names alone prove nothing: load balancer names are not unique in an account, so
  the test adds a second `prod.api` in front of a prod-eu droplet.
* `GET /v2/droplets?tag_name=` filters by one tag (the same openapi, droplets list); the tag
  list of a droplet is compared by equality, never by substring.
* Deleting a tag untags what carries it (openapi tags/tags_delete.yml at e4a03ac), so prod's
  destroy takes `provision:prod` off a stray droplet: the stray is found by the id read
  while the tag still marked it.
"""

from __future__ import annotations

import json
import re
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.doprovider.cloud import Cloud
from tests.support.rendering import example_document, set_workers
from tests.support.sim import TOKEN, Simulation, simulation

pytestmark = pytest.mark.integration

TABLES = ("digitalocean_droplet", "digitalocean_loadbalancer", "digitalocean_reserved_ip",
          "digitalocean_firewall", "digitalocean_tag", "digitalocean_volume", "digitalocean_vpc")
ENVIRONMENTS = {  # name -> (VPC range, API endpoint)
    "prod": ("10.10.0.0/16", "floating_ip"),
    "prod2": ("10.20.0.0/16", "load_balancer"),
    "prod-eu": ("10.30.0.0/16", "floating_ip"),
}


def _write(sim: Simulation, name: str) -> Path:
    doc = example_document("production")
    vpc, endpoint = ENVIRONMENTS[name]
    doc.update(name=name, deploy_policy={}, deletion_protection=True)
    doc["digitalocean"].update(ssh_keys=sim.fingerprints, vpc_cidr=vpc)
    doc["control_plane"].update(count=1, endpoint=endpoint)
    set_workers(doc["worker_pools"][0], 1)
    if endpoint == "load_balancer":
        doc["access"]["api_cidrs"] = ["0.0.0.0/0"]
        # An app called api behind a load balancer would share the API's name (refused).
        doc["apps"][0]["expose"] = "node_port"
        for i, port in enumerate(doc["apps"][0]["ports"]):
            port["node_port"] = 30080 + i
    path = sim.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _account(sim: Simulation) -> dict[str, dict[str, dict[str, Any]]]:
    resources = Cloud(Path(sim.env["DO_SIM_STATE"])).snapshot()["resources"]
    return {table: resources.get(table, {}) for table in TABLES}


def _droplets(sim: Simulation, prefix: str) -> list[int]:
    return [int(d["id"]) for d in sim.resources("digitalocean_droplet")
            if d["name"].startswith(prefix)]


def _assign(sim: Simulation, ip: str, droplet: int) -> None:
    request = urllib.request.Request(
        f"{sim.api.endpoint}floating_ips/{ip}/actions", method="POST",
        data=json.dumps({"type": "assign", "droplet_id": droplet}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201)


def _state_ids(sim: Simulation, name: str) -> set[str]:
    state = json.loads((sim.root / ".provision" / name / "state" / "terraform.tfstate")
                       .read_text())
    return {str(i["attributes"]["id"]) for r in state["resources"] if r["mode"] == "managed"
            for i in r["instances"]}


def test_destroy_and_sweep_of_prod_leave_prod2_and_prod_eu_untouched(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        configs = {name: _write(sim, name) for name in ENVIRONMENTS}
        for name, config in configs.items():
            result = sim.run("up", str(config), "--yes", "--until", "infra")
            assert result.code == 0, f"{name}: {result.stderr}"
        [prod2_lb] = [lb for lb in sim.resources("digitalocean_loadbalancer")]
        assert (prod2_lb["name"], prod2_lb["droplet_tag"]) == (
            "prod2.api", "provision:prod2:controller")
        (prod_cp,), (eu_cp,) = _droplets(sim, "prod-cp-"), _droplets(sim, "prod-eu-cp-")
        (prod_worker,) = _droplets(sim, "prod-general-")
        (eu_worker,) = _droplets(sim, "prod-eu-general-")
        prod_ip = json.loads((sim.root / ".provision/prod/infrastructure.json").read_text())[
            "reserved_ip"]
        eu_ip = json.loads((sim.root / ".provision/prod-eu/infrastructure.json").read_text())[
            "reserved_ip"]
        _assign(sim, prod_ip, prod_cp)
        _assign(sim, eu_ip, eu_cp)  # what each first control-plane node does at boot

        # status lists prod's own droplets and floating IP, nothing of its neighbours.
        status = sim.run("status", str(configs["prod"]), "--output", "json")
        assert status.code == 0, status.stderr
        cloud = json.loads(status.stdout)["cloud"]
        assert [d["name"] for d in cloud["droplets"]["control-plane"]] == ["prod-cp-1"]
        assert [d["id"] for d in cloud["droplets"]["workers"]] == [prod_worker]
        assert (cloud["floating_ip"], cloud["floating_ip_holder"]) == (prod_ip, "prod-cp-1")

        # What the clusters' controllers made, and a stray droplet of prod.
        prod_lb = sim.api.add_load_balancer("prod.api", droplet_ids=[prod_worker])
        eu_lb = sim.api.add_load_balancer("prod-eu.api", droplet_ids=[eu_worker])
        impostor = sim.api.add_load_balancer("prod.api", droplet_ids=[eu_worker])
        prod_volume = sim.api.add_volume("pvc-prod", 10, tags=["provision:prod"])
        eu_volume = sim.api.add_volume("pvc-eu", 10, tags=["provision:prod-eu"])
        stray = sim.api.add_droplet("prod-stray", tags=["provision:prod"])
        # What each one's autoscaler service makes above Terraform's floor: the pool's tags
        # exactly as terraform/workers.tf gives them, plus provision:<env>:autoscaled.
        autoscaled = {name: sim.api.add_droplet(
            f"{name}-general-as-0a1b2c3d",
            tags=[f"provision:{name}", f"provision:{name}:worker",
                  f"provision:{name}:pool:general", "team-platform", "production",
                  f"provision:{name}:autoscaled"]) for name in ("prod", "prod-eu")}

        # Terraform never sees an autoscaled droplet: no drift, nothing for `up` to change.
        plan = sim.run("plan", str(configs["prod"]), "--exit-code")
        assert plan.code == 0, plan.stderr
        # status counts it apart from Terraform's workers, with the node group's bounds.
        cloud = json.loads(sim.run("status", str(configs["prod"]), "--output", "json").stdout)[
            "cloud"]
        assert [d["id"] for d in cloud["droplets"]["workers"]] == [prod_worker, stray]
        assert cloud["autoscaled"] == {"general": {
            "node_group": "prod-general", "min": 1, "max": 9, "group_max": 8, "count": 1,
            "droplets": [dict(cloud["autoscaled"]["general"]["droplets"][0],
                              name="prod-general-as-0a1b2c3d", id=autoscaled["prod"])]}}
        text = sim.run("status", str(configs["prod"])).stdout
        assert ("autoscaled general (node group prod-general, 0..8 above Terraform's floor; "
                "pool 1..9): 1: prod-general-as-0a1b2c3d") in text

        prods = (_state_ids(sim, "prod") | {prod_lb, prod_volume, str(stray)}
                 | {"provision:prod:pool:general", str(autoscaled["prod"]),
                    "provision:prod:autoscaled"})
        before = _account(sim)
        neighbours = {(t, i): r for t, records in before.items() for i, r in records.items()
                      if i not in prods}
        assert {(t, i) for t, i in neighbours if t == "digitalocean_loadbalancer"} == {
            ("digitalocean_loadbalancer", prod2_lb["id"]),
            ("digitalocean_loadbalancer", eu_lb), ("digitalocean_loadbalancer", impostor)}
        assert ("digitalocean_volume", eu_volume) in neighbours
        assert ("digitalocean_reserved_ip", eu_ip) in neighbours
        assert {("digitalocean_tag", f"provision:{n}{role}") for n in ("prod2", "prod-eu")
                for role in ("", ":controller", ":worker")} <= set(neighbours)
        assert len([k for k in neighbours if k[0] == "digitalocean_firewall"]) == 4

        def untouched() -> None:
            after = _account(sim)
            for (table, rid), record in neighbours.items():
                now = after[table].get(rid)
                assert now is not None, f"{table} {record.get('name')} ({rid}) was deleted"
                assert now.get("tags") == record.get("tags"), f"{table} {rid} lost tags"

        plain = sim.run("destroy", str(configs["prod"]), "--yes", "--force")
        assert plain.code == 1, plain.stderr
        # Deleted before Terraform ran, so no leftover: prod-eu's (a neighbour whose name
        # starts with prod) is untouched (below).
        assert "deleted autoscaled droplet prod-general-as-0a1b2c3d" in plain.stderr
        assert "prod-eu-general-as" not in plain.stderr
        assert str(autoscaled["prod"]) not in _account(sim)["digitalocean_droplet"]
        listed = plain.stderr.split("still in the account (billed):")[1]
        for line in (f"droplet prod-stray ({stray})", f"load balancer prod.api ({prod_lb})",
                     f"volume pvc-prod ({prod_volume})"):
            assert line in listed
        assert "prod2.api" not in listed and "prod-eu.api" not in listed
        assert impostor not in listed and "pvc-eu" not in listed
        assert f"not provably its own): load balancer prod.api ({impostor})" in plain.stderr
        untouched()

        swept = sim.run("destroy", str(configs["prod"]), "--yes", "--force", "--sweep")
        assert swept.code == 0, swept.stderr
        assert "the sweep deletes these 3 resources of prod:" in swept.stderr
        assert "deleted droplet prod-stray" in swept.stderr
        assert "swept 3 leftover resources of prod" in swept.stderr
        untouched()
        after = _account(sim)
        left = {(t, i) for t, records in after.items() for i in records if i in prods}
        # A tag the droplets made implicitly stays (empty, unbilled): a sweep deletes no tag.
        assert left == {("digitalocean_tag", "provision:prod:pool:general"),
                        ("digitalocean_tag", "provision:prod:autoscaled")}
        assert not any("provision:prod:pool:general" in (d.get("tags") or [])
                       for d in after["digitalocean_droplet"].values())
        assert sorted(re.sub(r"-[0-9a-f]{5}$", "", d["name"])
                      for d in after["digitalocean_droplet"].values()) == [
            "prod-eu-cp-1", "prod-eu-general-1", "prod-eu-general-as-0a1b2c3d", "prod2-cp-1",
            "prod2-general-1"]

        # The neighbours' own status still shows them whole.
        eu = json.loads(sim.run("status", str(configs["prod-eu"]), "--output", "json").stdout)
        assert eu["cloud"]["floating_ip_holder"] == "prod-eu-cp-1"

