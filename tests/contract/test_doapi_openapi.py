"""The fake DigitalOcean API and its clients, held to DigitalOcean's OpenAPI description.

The description is digitalocean/openapi (commit 7c1300c479fed9c353cda9fc21cd968619552304,
`specification/DigitalOcean-public.v2.yaml` and the files its operations reach), copied
into tests/data/digitalocean-openapi/ (provenance in tests/data/README.md). The fake
checks every exchange against it when `validate=True` (tests/fakes/doapi/openapi.py); the
`fake` fixture and `simulation()` turn that on and fail a test whose traffic disagrees.

Here: the oracle bites (wrong bodies are reported), and every endpoint the fake serves is
driven by the project's real clients (provision over python-digitalocean, the node's
failover agent over urllib, the rollout gate's load balancer metrics read over urllib,
the simulated Terraform provider through a real Terraform
apply of examples/production.yaml) with no disagreement at all.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import digitalocean
import pytest

from provisioner import gate
from provisioner.agents import failover
from provisioner.autoscaler.doclient import DoClient
from provisioner.cloud import catalog, image_build, inventory, preflight, sweep
from provisioner.config.load import load_environment
from provisioner.render.names import resource_names
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.doapi.openapi import OpenApi, shared
from tests.fakes.doapi.routes import _ROUTES
from tests.support import fake_iptables
from tests.support.do_account import TOKEN
from tests.support.sim import simulation


def _post(fake: FakeDigitalOcean, path: str, body: Any) -> int:
    request = urllib.request.Request(
        fake.endpoint + path, method="POST", data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


# ------------------------------------------------------------------- the oracle bites


def test_a_wrong_request_body_is_reported(fake: FakeDigitalOcean) -> None:
    """reservedIPsActions_post.yml: the body is `reserved_ip_action_assign` when `type` is
    assign (its discriminator), which requires an integer `droplet_id`."""
    droplet = fake.add_droplet("n-1", region="nyc3")
    address = fake.provider_create("digitalocean_reserved_ip", region="nyc3")["ip_address"]

    # The fake itself is lenient (int("12") works): only the description catches it.
    assert _post(fake, f"reserved_ips/{address}/actions",
                 {"type": "assign", "droplet_id": str(droplet)}) == 201
    _post(fake, f"reserved_ips/{address}/actions", {"type": "assign"})
    _post(fake, f"reserved_ips/{address}/actions", {"type": "move", "droplet_id": droplet})

    found = [(v.side, v.where, v.message) for v in fake.take_violations()]
    assert ("request", "$.droplet_id", f"'{droplet}' is not of type 'integer'") in found
    assert ("request", "$", "'droplet_id' is a required property") in found
    assert any(where == "$" and "'move'" in message and "is not valid under any" in message
               for _, where, message in found)


def test_a_wrong_response_body_is_reported(
    fake: FakeDigitalOcean, monkeypatch: pytest.MonkeyPatch
) -> None:
    """droplets/models/droplet.yml: `id` is an integer and `memory` is required."""
    from tests.fakes.doapi.views import View

    real = View.droplet

    def broken(self: View, record: dict[str, Any]) -> dict[str, Any]:
        body = real(self, record)
        body["id"] = str(body["id"])  # a string where an integer belongs
        del body["memory"]  # a required key missing
        return body

    droplet = fake.add_droplet("n-1")
    monkeypatch.setattr(View, "droplet", broken)
    digitalocean.Manager(token=TOKEN).get_droplet(droplet)  # the client does not mind

    found = {(v.side, v.where, v.message) for v in fake.take_violations()}
    assert found == {
        ("response", "$.droplet.id", f"'{droplet}' is not of type 'integer'"),
        ("response", "$.droplet", "'memory' is a required property"),
    }


def test_unknown_query_values_status_and_missing_body_are_reported() -> None:
    """The checks that do not need a server: parameters, undescribed statuses, bodies."""
    api = OpenApi()
    over = api.check("GET", "/v2/droplets", {"per_page": "500"}, None, 200,
                     {"droplets": [], "links": {}, "meta": {"total": 0}})
    assert [str(v) for v in over] == [
        "GET /v2/droplets -> 200: request at per_page: query parameter: "
        "500 is greater than the maximum of 200"]
    gone = api.check("DELETE", "/v2/droplets/12", {}, None, 204, {"unexpected": True})
    assert [v.message for v in gone] == ["a body where the description has none (204)"]
    empty = api.check("GET", "/v2/account", {}, None, 200, None)
    assert [v.message for v in empty] == ["no body where the description has one (200)"]
    bad_id = api.check("GET", "/v2/droplets/abc", {}, None, 404,
                       {"id": "not_found", "message": "gone"})
    assert [v.where for v in bad_id] == ["droplet_id"]
    nullable = api.check("GET", "/v2/reserved_ips/192.0.2.1", {}, None, 200, {"reserved_ip": {
        "ip": "192.0.2.1", "droplet": None, "locked": False, "project_id": "x",
        "region": {"slug": "nyc3", "name": "New York 3", "features": [], "available": True,
                   "sizes": []}}})
    assert nullable == []  # `droplet` is nullable (reserved_ips/models/reserved_ip.yml)


# ---------------------------------------------------- every endpoint, real clients only


def _operations(fake: FakeDigitalOcean) -> set[str]:
    """The described operations (METHOD template) the logged requests went to."""
    description = shared()
    found = set()
    for record in fake.request_log:
        op = description.operation_of(record.method, record.path)
        if op is not None:
            found.add(f"{record.method} {op}")
    return found


def _served(description: OpenApi) -> set[str]:
    """The operations the fake serves (one sample path per route, mapped by the description)."""
    samples = {"id": "12", "ip": "192.0.2.1", "kind": "reserved_ips", "key": "12",
               "name": "k8s", "action": "3"}
    found = set()
    for method, pattern, _ in _ROUTES:
        path = pattern.pattern
        for group, value in samples.items():
            path = path.replace(f"(?P<{group}>floating_ips|reserved_ips)", value)
            path = path.replace(f"(?P<{group}>[^/]+)", value).replace(f"(?P<{group}>\\d+)", value)
        op = description.operation_of(method, path)
        assert op is not None, f"the fake serves {method} {path}, which is not described"
        found.add(f"{method} {op}")
        if "reserved_ips" in path:  # the same routes answer the deprecated floating_ips
            legacy = description.operation_of(method, path.replace("reserved_ips", "floating_ips"))
            found.add(f"{method} {legacy}")
    return found


@pytest.mark.oracle
@pytest.mark.usefixtures("inside_production_window")  # its destroy is not held back
def test_every_endpoint_through_the_real_clients_matches_the_description(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with simulation(tmp_path) as sim:
        fake = sim.api
        for name, value in fake.env().items():  # the in-process calls below
            monkeypatch.setenv(name, value)
        # provision: preflight, catalogue, Terraform apply of examples/production.yaml
        # through the simulated provider, then status (inventory).
        up = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert up.code == 0, up.stderr
        env = load_environment(sim.config)
        view = preflight.read_account(TOKEN)
        assert preflight.problems(env, view) == []
        assert catalog.read_catalog(TOKEN).regions
        address = sim.resources("digitalocean_reserved_ip")[0]["ip_address"]
        cps = {d["name"]: int(d["id"]) for d in sim.resources("digitalocean_droplet")
               if "-cp-" in d["name"]}

        # The failover agent: claim, read the holder, list peers, move the address.
        settings = failover.Settings(
            cluster=env.name, floating_ip=address, token=TOKEN,
            controller_tag=resource_names(env)["digitalocean_tag.controllers"],
            droplet_id=str(cps["prod-cp-1"]), api_endpoint=fake.endpoint, api_timeout=10,
            # claim also points the holder's own endpoint at itself: a stand-in nat table.
            private_ip="10.10.0.2", iptables=str(fake_iptables.install(tmp_path / "nat")))
        assert failover.claim(settings, attempts=2)
        assert failover.holder(settings) == cps["prod-cp-1"]
        assert sorted(failover.peers(settings)) == [1, 2, 3]
        failover.assign_to(settings, cps["prod-cp-2"])
        assert inventory.inventory(env, TOKEN)["floating_ip_holder"] == "prod-cp-2"

        # What the cluster's controllers make (CCM load balancer, CSI volume), then every
        # read and delete the fake serves, through python-digitalocean as provision does.
        lb_id = fake.add_load_balancer("a1b2c3", tags=["k8s"], droplet_ids=[cps["prod-cp-1"]])
        volume_id = fake.add_volume("pvc-1", 10, tags=["k8s"])
        # The rollout gate: the load balancer's HTTP response metrics (provisioner/gate).
        now = time.time()
        fake.monitoring.traffic(lb_id, now - 600, now + 600, **{"2xx": 9, "5xx": 1})
        reading = gate.read_error_rate(
            gate.GateSource(kind="digitalocean", api_url=fake.endpoint, token=TOKEN),
            load_balancer_ids=[lb_id], window_seconds=300,
            now=datetime.fromtimestamp(now, UTC))
        assert reading.requests > 0 and reading.errors > 0
        manager = digitalocean.Manager(token=TOKEN)
        droplet = manager.get_droplet(cps["prod-cp-3"])
        key = manager.get_all_sshkeys()[0]
        assert manager.get_ssh_key(key.id).fingerprint == key.fingerprint
        assert manager.get_all_sizes() and manager.get_all_regions()
        ip = manager.get_floating_ip(address)
        action = ip.unassign()["action"]
        manager.get_data(f"floating_ips/{address}/actions/{action['id']}")
        manager.get_data(f"reserved_ips/{address}/actions/{action['id']}")
        manager.get_action(action["id"])
        manager.get_data(f"reserved_ips/{address}")
        manager.get_data("reserved_ips")
        assert manager.get_load_balancer(lb_id).name == "a1b2c3"
        assert manager.get_volume(volume_id).name == "pvc-1"
        vpc = manager.get_all_vpcs()[0]
        assert manager.get_vpc(vpc.id).id == vpc.id
        firewall = manager.get_all_firewalls()[0]
        assert manager.get_firewall(firewall.id).name == firewall.name
        assert digitalocean.Tag.get_object(TOKEN, "k8s").resources["volumes"]["count"] == 1
        assert manager.get_all_tags()
        assert sweep.wait_released(TOKEN, ["a1b2c3"], [], 0, lambda line: None) == [
            "load balancer a1b2c3"]
        found = sweep.leftovers(env, TOKEN, address)
        assert found.droplets and found.firewalls
        manager.get_data(f"reserved_ips/{address}/actions", type=digitalocean.baseapi.POST,
                         params={"type": "assign", "droplet_id": droplet.id})
        # The autoscaler service's multi-create (provisioner/autoscaler/doclient.py).
        autoscaler = DoClient(fake.origin, TOKEN)
        made = autoscaler.create_droplets(
            ["prod-general-as-0a1b2c3d", "prod-general-as-4e5f6a7b"],
            {"region": "fra1", "size": "s-2vcpu-4gb", "image": "ubuntu-24-04-x64",
             "tags": ["autoscaler-probe"], "user_data": "#!/bin/sh\n",
             "monitoring": True, "ipv6": False, "backups": False, "with_droplet_agent": False})
        assert [d["name"] for d in made] == ["prod-general-as-0a1b2c3d", "prod-general-as-4e5f6a7b"]
        assert all(autoscaler.delete_droplet(int(d["id"])) for d in made)

        # Deletes: the ones sweep makes, a tag, droplets by tag.
        stray_ip = fake.provider_create("digitalocean_reserved_ip", region="fra1")["ip_address"]
        stray = fake.add_droplet("stray", tags=["stray"])
        fake.add_droplet("stray-2", tags=["stray"])
        stray_fw = fake.provider_create("digitalocean_firewall", name="stray-fw", inbound_rule=[
            {"protocol": "tcp", "port_range": "22", "source_addresses": ["0.0.0.0/0"]}])
        sweep.sweep(TOKEN, sweep.Leftovers(
            droplets=[(str(stray), "stray")], load_balancers=[(lb_id, "a1b2c3")],
            volumes=[(volume_id, "pvc-1")], floating_ips=[(stray_ip, stray_ip)],
            firewalls=[(stray_fw["id"], "stray-fw")]), lambda line: None)
        manager.get_data(f"reserved_ips/{address}", type=digitalocean.baseapi.DELETE)
        manager.get_data("droplets?tag_name=stray", type=digitalocean.baseapi.DELETE)
        digitalocean.Tag(token=TOKEN, name="k8s").delete()

        # provision image build: droplet create, its status polled until off (cloud-init's
        # power_state, played here), the snapshot action and its poll, the snapshot list.
        def power_off() -> None:
            for _ in range(600):
                with fake.cloud.transaction() as account:
                    for record in account.table("digitalocean_droplet").values():
                        if "provision:prod:image-build" in (record.get("tags") or []):
                            record["status"] = "off"
                            return
                time.sleep(0.05)

        player = threading.Thread(target=power_off, daemon=True)
        player.start()
        monkeypatch.setenv(image_build.POLL_ENV, "0.05")
        built = image_build.build(env, TOKEN, "#cloud-config\n", lambda line: None)
        player.join(timeout=60)
        assert built.name.startswith("provision-prod-k8s-")

        # provision destroy: Terraform's destroy, the leftover listing.
        down = sim.run("destroy", str(sim.config), "--yes", "--force")
        assert down.code == 0, down.stderr

        used = _operations(fake)
        served = _served(shared())
        assert served - used == set(), "endpoints the fake serves but no client drove"
        assert fake.violations == []


def test_a_terraform_load_balancer_with_a_tcp_health_check_has_a_string_path(
    fake: FakeDigitalOcean,
) -> None:
    """load_balancers/models/health_check.yml: `path` is a string (default "/"). The provider
    keeps no path for a TCP check (null in its state); the API still sends a string, so
    the fake must not pass the provider's null through."""
    fake.provider_create(
        "digitalocean_loadbalancer", name="api", region="fra1",
        forwarding_rule=[{"entry_protocol": "tcp", "entry_port": 6443,
                          "target_protocol": "tcp", "target_port": 6443}],
        healthcheck=[{"protocol": "tcp", "port": 6443}])
    (lb,) = digitalocean.Manager(token=TOKEN).get_all_load_balancers()
    assert lb.health_check.protocol == "tcp"
    assert [str(v) for v in fake.take_violations()] == []
    assert isinstance(lb.health_check.path, str)


def test_a_string_image_is_a_slug_and_a_number_an_id(fake: FakeDigitalOcean) -> None:
    """droplet_create.yml: ``image`` is "The image ID of a public or private image or the
    slug identifier for a public image", string or integer; ``ssh_keys`` "the IDs or
    fingerprints". No public slug is all digits, so the fake refuses a string of digits as
    the API refuses an image it cannot resolve (tests/fakes/doapi/routes.py cites it)."""
    base = {"name": "x", "region": "fra1", "size": "s-2vcpu-4gb"}
    bad = {**base, "image": "170000010"}
    assert _post(fake, "droplets", bad) == 422
    last = fake.requests("POST", "/v2/droplets")[-1]
    assert last.response is not None
    assert (last.response["id"], last.response["message"]) == (
        "unprocessable_entity", "You specified an invalid image for Droplet creation.")
    assert _post(fake, "droplets", {**base, "image": "ubuntu-24-04-x64",
                                        "ssh_keys": ["41000001"]}) == 422
    assert _post(fake, "droplets", {**base, "image": 170000010,
                                        "ssh_keys": [41000001]}) == 202
    assert _post(fake, "droplets", {**base, "name": "y",
                                        "image": "ubuntu-24-04-x64"}) == 202
