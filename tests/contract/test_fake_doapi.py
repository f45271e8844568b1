"""Contract tests of the fake DigitalOcean API (tests/fakes/doapi), kept honest by the real
client: every call goes through python-digitalocean, pointed at the fake over HTTP.

python-digitalocean objects built by a Manager (Account, a droplet's destroy(), a floating
IP's assign()...) read the end point from DIGITALOCEAN_END_POINT, not from the Manager's
`end_point`, so the fixture sets the environment variable; that is also how the product
would be pointed at the fake.
"""

from __future__ import annotations

import ipaddress
import json
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any

import digitalocean
import pytest
from digitalocean.baseapi import DELETE, DataReadError, NotFoundError

from tests.fakes.doapi import FakeDigitalOcean, generate_ssh_public_key
from tests.fakes.doprovider.cloud import Cloud
from tests.oracles.terraform import (
    copy_module,
    prepare_plugin_env,
    state_resources,
    terraform_apply,
    terraform_init,
    terraform_plan,
    terraform_show_state,
)
from tests.support.do_account import TOKEN

NOT_FOUND = {"id": "not_found", "message": "The resource you were accessing could not be found."}




@pytest.fixture
def manager(fake: FakeDigitalOcean) -> digitalocean.Manager:
    return digitalocean.Manager(token=TOKEN, end_point=fake.endpoint)


def _account(fake: FakeDigitalOcean) -> dict[str, Any]:
    return Cloud(fake.cloud.path).snapshot()


# --------------------------------------------------------------- account and catalogue


def test_account_reports_seeded_limits_and_the_override(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.seed(droplet_limit=7)
    account = manager.get_account()
    assert (account.status, account.droplet_limit, account.email_verified) == ("active", 7, True)
    assert account.floating_ip_limit == 3 and account.uuid

    fake.faults.droplet_limit = 2  # failure injection wins over the stored profile
    assert manager.get_account().droplet_limit == 2


def test_regions_and_sizes_by_default_follow_the_provider_catalogue(
    manager: digitalocean.Manager,
) -> None:
    regions = {r.slug: r for r in manager.get_all_regions()}
    assert {"nyc3", "fra1", "ams3", "sfo3", "sgp1", "lon1"} <= {
        slug for slug, r in regions.items() if r.available
    }
    assert regions["nyc2"].available is False and regions["nyc2"].sizes == []  # legacy
    assert regions["fra1"].name == "Frankfurt 1" and "storage" in regions["fra1"].features
    assert "s-2vcpu-4gb" in regions["fra1"].sizes

    sizes = {s.slug: s for s in manager.get_all_sizes()}
    assert {"s-1vcpu-1gb", "s-2vcpu-4gb", "s-4vcpu-8gb", "c-4", "g-2vcpu-8gb"} <= set(sizes)
    small = sizes["s-2vcpu-4gb"]
    assert (small.vcpus, small.memory, small.disk, small.price_monthly) == (2, 4096, 80, 24.0)
    assert "fra1" in small.regions and "nyc2" not in small.regions


def test_unavailable_region_and_missing_size_are_reported_consistently(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.faults.unavailable_regions.add("fra1")
    fake.faults.sizes_not_offered["nyc3"] = {"c-4"}
    regions = {r.slug: r for r in manager.get_all_regions()}
    assert regions["fra1"].available is False and regions["fra1"].sizes == []
    assert "c-4" not in regions["nyc3"].sizes and "c-4" in regions["ams3"].sizes
    c4 = next(s for s in manager.get_all_sizes() if s.slug == "c-4")
    assert "nyc3" not in c4.regions and "fra1" not in c4.regions and "ams3" in c4.regions


def test_seeded_catalogue_replaces_the_defaults(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.seed(regions=["nyc3", "fra1"], sizes=["s-1vcpu-1gb", "c-4"])
    assert [r.slug for r in manager.get_all_regions()] == ["nyc3", "fra1"]
    assert {s.slug: s.regions for s in manager.get_all_sizes()} == {
        "s-1vcpu-1gb": ["fra1", "nyc3"],
        "c-4": ["fra1", "nyc3"],
    }
    with pytest.raises(ValueError, match="unknown size"):
        fake.seed(sizes=["s-2vcpu-4g"])  # a typo the provider would reject as well


def test_ssh_keys_by_id_fingerprint_and_public_key(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    public = generate_ssh_public_key("ops@example.com")
    (seeded,) = fake.seed(ssh_keys={"ops": public})
    fake.seed(ssh_keys={"ops again": public})  # same key: kept once, like the API

    (listed,) = manager.get_all_sshkeys()
    assert (listed.id, listed.name, listed.public_key) == (int(seeded["id"]), "ops", public)
    assert manager.get_ssh_key(listed.id).fingerprint == seeded["fingerprint"]
    by_fingerprint = digitalocean.SSHKey(token=TOKEN, fingerprint=seeded["fingerprint"])
    by_fingerprint.load()
    assert by_fingerprint.id == listed.id
    assert digitalocean.SSHKey(token=TOKEN).load_by_pub_key(public).name == "ops"
    # The provider's table: `data "digitalocean_ssh_key"` and imports see the same key.
    assert _account(fake)["resources"]["digitalocean_ssh_key"][seeded["id"]]["name"] == "ops"


# ----------------------------------------------------------------------------- droplets


def test_droplets_by_tag_with_networks_size_and_region(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    cp = fake.add_droplet("c1-cp-1", region="fra1", size="s-2vcpu-4gb", tags=["k8s", "cp"])
    fake.add_droplet("c1-worker-1", region="fra1", tags=["k8s"])
    fake.add_droplet("other", region="nyc3")

    tagged = manager.get_all_droplets(tag_name="k8s")
    assert sorted(d.name for d in tagged) == ["c1-cp-1", "c1-worker-1"]
    assert len(manager.get_all_droplets()) == 3

    droplet = manager.get_droplet(cp)
    stored = _account(fake)["resources"]["digitalocean_droplet"][str(cp)]
    assert droplet.ip_address == stored["ipv4_address"]
    assert droplet.private_ip_address == stored["ipv4_address_private"]
    assert ipaddress.ip_address(droplet.private_ip_address).is_private
    assert (droplet.size_slug, droplet.vcpus, droplet.memory) == ("s-2vcpu-4gb", 2, 4096)
    assert droplet.region["slug"] == "fra1" and droplet.vpc_uuid == stored["vpc_uuid"]
    assert droplet.tags == ["k8s", "cp"] and droplet.status == "active"


def test_deleting_droplets_one_by_one_and_by_tag(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    first = fake.add_droplet("a-1", tags=["doomed"])
    fake.add_droplet("a-2", tags=["doomed"])
    keep = fake.add_droplet("b-1", tags=["keep"])

    assert manager.get_droplet(first).destroy() is True  # 204
    assert manager.get_data("droplets?tag_name=doomed", type=DELETE) is True
    assert [d.id for d in manager.get_all_droplets()] == [keep]

    deletes = [e for e in _account(fake)["events"] if e["op"] == "delete"]
    assert [(e["name"], e.get("via")) for e in deletes] == [("a-1", "api"), ("a-2", "api")]
    with pytest.raises(NotFoundError):
        manager.get_droplet(first)


def test_pagination_follows_links_pages_next(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    ids = [fake.add_droplet(f"node-{i:02d}", tags=["many"]) for i in range(60)]
    fake.clear_log()

    droplets = manager.get_all_droplets(params={"per_page": 25})
    assert [d.id for d in droplets] == ids  # all 60, oldest first, none twice
    pages = [r.query.get("page", "1") for r in fake.requests("GET", "/v2/droplets")]
    assert pages == ["1", "2", "3"]
    assert fake.request_log[0].response["meta"] == {"total": 60}

    last = manager.get_data("droplets", params={"page": 3, "per_page": 25})
    assert len(last["droplets"]) == 10
    assert set(last["links"]["pages"]) == {"first", "prev"}  # no next on the last page


# ----------------------------------------------------------------- reserved/floating IPs


def test_floating_ip_assignment_reaches_the_provider_account(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    node = fake.add_droplet("lb-1", region="nyc3")
    address = fake.provider_create("digitalocean_reserved_ip", region="nyc3")["ip_address"]

    ip = manager.get_floating_ip(address)
    assert ip.droplet is None and ip.region["slug"] == "nyc3"
    before = time.time()
    action = ip.assign(node)["action"]
    assert (action["type"], action["status"], action["resource_type"]) == (
        "assign_ip",
        "completed",
        "floating_ip",
    )
    assert action["resource_id"] == int(ipaddress.IPv4Address(address))
    assert manager.get_action(action["id"]).status == "completed"

    # The provider's table holds the assignment; the API reports the droplet.
    stored = _account(fake)["resources"]["digitalocean_reserved_ip"][address]
    assert stored["droplet_id"] == node
    assert manager.get_floating_ip(address).droplet["id"] == node
    (received,) = fake.requests("POST", "/v2/floating_ips/*/actions")
    assert received.body == {"type": "assign", "droplet_id": node} and received.at >= before

    ip.unassign()
    assert _account(fake)["resources"]["digitalocean_reserved_ip"][address]["droplet_id"] is None


def test_reserved_ips_path_serves_the_same_objects(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    """The reserved IP endpoints the failover agent uses, in DigitalOcean's documented shape.

    digitalocean/openapi (main, 2026-08), specification/resources/reserved_ips/:
    reservedIPsActions_post.yml (POST /v2/reserved_ips/$RESERVED_IP/actions, body
    models/reserved_ip_actions.yml: `type` assign|unassign, integer `droplet_id` for
    assign; 201 with responses/reserved_ip_action.yml: `action` with type `assign_ip`,
    resource_type `reserved_ip`) and reservedIPs_get.yml (200, responses/reserved_ip.yml:
    `reserved_ip` with models/reserved_ip.yml's ip, region, droplet (null when
    unassigned), locked, project_id).
    """
    node = fake.add_droplet("n-1", region="nyc3")
    elsewhere = fake.add_droplet("n-2", region="fra1")
    address = fake.provider_create("digitalocean_reserved_ip", region="nyc3")["ip_address"]

    def call(method: str, path: str, body: Any = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{fake.endpoint}{path}", method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())

    status, shown = call("GET", f"reserved_ips/{address}")
    assert status == 200 and set(shown) == {"reserved_ip"}
    assert set(shown["reserved_ip"]) == {"ip", "region", "droplet", "locked", "project_id"}
    assert shown["reserved_ip"]["droplet"] is None and shown["reserved_ip"]["ip"] == address
    status, done = call("POST", f"reserved_ips/{address}/actions",
                        {"type": "assign", "droplet_id": node})
    assert status == 201 and set(done) == {"action"}
    assert (done["action"]["type"], done["action"]["resource_type"]) == ("assign_ip",
                                                                        "reserved_ip")
    assert call("GET", f"reserved_ips/{address}")[1]["reserved_ip"]["droplet"]["id"] == node
    reserved = manager.get_data("reserved_ips")["reserved_ips"]
    floating = manager.get_data("floating_ips")["floating_ips"]
    assert reserved == floating and reserved[0]["droplet"]["id"] == node
    assert manager.get_data(f"reserved_ips/{address}")["reserved_ip"]["ip"] == address

    with pytest.raises(DataReadError, match="fra1"):  # other region: refused like the API
        manager.get_floating_ip(address).assign(elsewhere)

    assert manager.get_floating_ip(address).destroy() is True
    assert manager.get_all_floating_ips() == []


# ---------------------------------------------------- load balancers, volumes, tags, ...


def test_load_balancers_and_volumes_list_and_delete(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    node = fake.add_droplet("w-1", tags=["k8s:c1"])
    lb_id = fake.add_load_balancer("a1b2c3", tags=["k8s:c1"], droplet_ids=[node])
    vol_id = fake.add_volume("pvc-data", 10, tags=["k8s:c1"], droplet_ids=[node])

    (lb,) = manager.get_all_load_balancers()
    assert (lb.id, lb.name, lb.status, lb.droplet_ids) == (lb_id, "a1b2c3", "active", [node])
    assert lb.forwarding_rules[0].entry_port == 80 and lb.tags == ["k8s:c1"]
    (volume,) = manager.get_all_volumes()
    assert (volume.name, volume.size_gigabytes, volume.droplet_ids) == ("pvc-data", 10, [node])
    assert manager.get_droplet(node).volume_ids == [vol_id]

    assert manager.get_load_balancer(lb_id).destroy() is True
    assert manager.get_volume(vol_id).destroy() is True
    assert manager.get_all_load_balancers() == [] and manager.get_all_volumes() == []
    account = _account(fake)
    assert account["resources"]["digitalocean_droplet"][str(node)]["volume_ids"] == []
    projects = account["resources"]["digitalocean_project"].values()
    held = {urn for project in projects for urn in project["resources"]}
    assert f"do:loadbalancer:{lb_id}" not in held and f"do:volume:{vol_id}" not in held


def test_tag_counts_droplets_and_volumes(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.add_droplet("t-1", tags=["k8s:c1"])
    fake.add_droplet("t-2", tags=["k8s:c1"])
    fake.add_volume("pvc-1", 5, tags=["k8s:c1"])

    resources = digitalocean.Tag.get_object(TOKEN, "k8s:c1").resources
    assert resources["count"] == 3
    assert (resources["droplets"]["count"], resources["volumes"]["count"]) == (2, 1)
    assert resources["droplets"]["last_tagged_uri"].startswith(fake.endpoint + "droplets/")
    with pytest.raises(NotFoundError):
        digitalocean.Tag.get_object(TOKEN, "no-such-tag")


def test_deleting_a_tag_untags_what_carried_it(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    """DigitalOcean: "Deleting a tag also untags all the resources that have previously been
    tagged by the Tag" (digitalocean/openapi, specification/resources/tags/tags_delete.yml at
    e4a03ac; pydo 0.18.0 `tags.delete` and doctl 1.146.0 `compute tag delete` say the same).
    So a state that deletes a role tag takes live droplets out of the firewalls that select
    them by it; the fake provider's destroy of a `digitalocean_tag` does the same."""
    kept = fake.add_droplet("t-1", tags=["k8s:c1", "team"])
    fake.add_volume("pvc-1", 5, tags=["k8s:c1"])

    digitalocean.Tag(token=TOKEN, name="k8s:c1").delete()

    assert manager.get_droplet(kept).tags == ["team"]
    assert manager.get_all_volumes()[0].tags == []
    assert [t.name for t in manager.get_all_tags()] == ["team"]
    with pytest.raises(NotFoundError):
        digitalocean.Tag.get_object(TOKEN, "k8s:c1")


def test_firewall_delete(fake: FakeDigitalOcean, manager: digitalocean.Manager) -> None:
    fake.provider_create("digitalocean_firewall", name="fw", tags=["k8s"], inbound_rule=[
        {"protocol": "tcp", "port_range": "22", "source_addresses": ["0.0.0.0/0"]}])
    (fw,) = manager.get_all_firewalls()
    assert fw.destroy() is True
    assert manager.get_all_firewalls() == []


def test_firewalls_and_vpcs_in_api_shape(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    vpc = fake.provider_create("digitalocean_vpc", name="net", region="fra1")
    fake.provider_create(
        "digitalocean_firewall",
        name="fw",
        tags=["k8s"],
        inbound_rule=[{"protocol": "tcp", "port_range": "6443", "source_addresses": ["0.0.0.0/0"]}],
    )

    (fw,) = manager.get_all_firewalls()
    assert (fw.name, fw.status, fw.tags) == ("fw", "succeeded", ["k8s"])
    rule = fw.inbound_rules[0]
    assert (rule.protocol, rule.ports, rule.sources.addresses) == ("tcp", "6443", ["0.0.0.0/0"])
    listed = manager.get_vpc(vpc["id"])
    assert (listed.name, listed.region, listed.ip_range) == ("net", "fra1", vpc["ip_range"])
    assert listed.created_at.endswith("Z")
    assert vpc["id"] in [v.id for v in manager.get_all_vpcs()]


# ------------------------------------------------------------------ errors and faults


def test_wrong_or_empty_token_is_401(fake: FakeDigitalOcean) -> None:
    for token in ("not-the-token", " "):
        with pytest.raises(DataReadError, match="Unable to authenticate you"):
            digitalocean.Manager(token=token).get_all_droplets()
    assert [r.status for r in fake.request_log] == [401, 401]
    assert fake.request_log[0].response["id"] == "unauthorized"


def test_unknown_paths_and_objects_are_404_in_the_api_shape(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    with pytest.raises(NotFoundError):
        manager.get_data("kubernetes/clusters")
    with pytest.raises(NotFoundError):
        manager.get_droplet(123)
    with pytest.raises(NotFoundError):
        manager.get_data("account", type=DELETE)  # known path, unknown method
    for record in fake.request_log:
        assert record.status == 404
        assert {k: record.response[k] for k in ("id", "message")} == NOT_FOUND
    # The description knows neither call as the fake answers it: the real API serves
    # kubernetes/clusters (not copied: the project does not use it) and has no DELETE
    # /v2/account. The fixture's OpenAPI check says so; the 404 for droplet 123 is fine.
    assert [(v.method, v.path, v.message.split(":")[0]) for v in fake.take_violations()] == [
        ("GET", "/v2/kubernetes/clusters", "operation not in the copied description"),
        ("DELETE", "/v2/account", "no such operation in DigitalOcean's API description"),
    ]


def test_throttled_then_successful(fake: FakeDigitalOcean, manager: digitalocean.Manager) -> None:
    fake.faults.throttle(2, retry_after=7)
    for _ in range(2):
        with pytest.raises(DataReadError, match="API Rate limit exceeded"):
            manager.get_account()
    assert manager.get_account().status == "active"

    statuses = [(r.status, r.response_headers.get("Retry-After")) for r in fake.request_log]
    assert statuses == [(429, "7"), (429, "7"), (200, None)]


def test_server_errors_then_successful(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.faults.fail(1, status=503)
    with pytest.raises(DataReadError):
        manager.get_all_regions()
    assert manager.get_all_regions()
    assert [r.status for r in fake.request_log] == [503, 200]


def test_latency_is_added_to_every_request(
    fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    fake.faults.latency = 0.15
    started = time.monotonic()
    manager.get_account()
    assert time.monotonic() - started >= 0.15
    assert fake.request_log[-1].duration >= 0.15


# ------------------------------------------------------- shared state with Terraform

MODULE = """\
terraform {
  required_providers {
    digitalocean = {
      source  = "digitalocean/digitalocean"
      version = "~> 2.34"
    }
  }
}

resource "digitalocean_vpc" "net" {
  name     = "api-net"
  region   = "fra1"
  ip_range = "10.30.0.0/20"
}

resource "digitalocean_droplet" "node" {
  count    = 2
  name     = "api-node-${count.index + 1}"
  image    = "ubuntu-22-04-x64"
  size     = "s-1vcpu-1gb"
  region   = "fra1"
  vpc_uuid = digitalocean_vpc.net.id
  tags     = ["api-test"]
}

# Failover moves the address at run time; Terraform must not move it back.
resource "digitalocean_reserved_ip" "api" {
  region     = "fra1"
  droplet_id = digitalocean_droplet.node[0].id

  lifecycle {
    ignore_changes = [droplet_id]
  }
}
"""


@pytest.mark.oracle
def test_terraform_and_the_api_share_one_account(
    tmp_path: Path, fake: FakeDigitalOcean, manager: digitalocean.Manager
) -> None:
    env = prepare_plugin_env(tmp_path / "tf", token=TOKEN, state_file=fake.cloud.path)
    module = tmp_path / "module"
    module.mkdir()
    (module / "main.tf").write_text(textwrap.dedent(MODULE), encoding="utf-8")
    work = copy_module(module, tmp_path / "work")
    terraform_init(work, env).check()
    terraform_apply(work, env).check()
    state = state_resources(terraform_show_state(work, env))
    node0 = int(state["digitalocean_droplet.node[0]"]["id"])
    node1 = int(state["digitalocean_droplet.node[1]"]["id"])
    address = state["digitalocean_reserved_ip.api"]["ip_address"]

    # What Terraform created is what the API lists.
    droplets = {d.id: d for d in manager.get_all_droplets(tag_name="api-test")}
    assert set(droplets) == {node0, node1}
    assert droplets[node0].ip_address == state["digitalocean_droplet.node[0]"]["ipv4_address"]
    assert droplets[node0].vpc_uuid == state["digitalocean_vpc.net"]["id"]
    (reserved,) = manager.get_data("reserved_ips")["reserved_ips"]
    assert (reserved["ip"], reserved["droplet"]["id"]) == (address, node0)

    # Fail over through the API, as the product would.
    manager.get_floating_ip(address).assign(node1)

    # The provider sees the move on refresh ...
    refresh = terraform_plan(work, env, "-refresh-only", "-json").check(2)
    drift = [m["change"] for m in refresh.json_lines() if m["type"] == "resource_drift"]
    assert [d["resource"]["addr"] for d in drift] == ["digitalocean_reserved_ip.api"]
    # ... and ignore_changes keeps the normal plan empty (exit code 0: no changes).
    plan = terraform_plan(work, env)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert manager.get_floating_ip(address).droplet["id"] == node1
