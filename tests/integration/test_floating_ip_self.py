"""The floating IP's holder reaches its own endpoint, in a network that does not hairpin.

DigitalOcean does not put a reserved IP on the droplet's interfaces: traffic for it is
delivered to the droplet's anchor IP, an address aliased on eth0 ("Network traffic
between a Floating IP and a Droplet flows through an anchor IP, which is an IP address
aliased to the Droplet's public network interface (eth0)", DigitalOcean documentation,
products/networking/reserved-ips/how-to/find-anchor-ips/). Whether a packet the holder
sends to its own reserved IP is turned around by DigitalOcean's network (hairpin) is not
documented anywhere, and the holder is the first client of the endpoint: kubeadm init's
own calls, its kubelet, kube-proxy and the add-on install all use floating_ip:6443. So the
failover agent rewrites the holder's own connections to its private address (nat OUTPUT,
chain PROVISION-API-ENDPOINT) and leaves everyone else on the normal path.

Topology (namespaces of this run only)::

      cp1 10.125.0.1 ─┐                       cp1 pub0 10.126.1.2 ── 10.126.1.1 ┐
      cp2 10.125.0.2 ─┼─ bridge (the VPC)     cp2 pub0 10.126.2.2 ── 10.126.2.1 ┴ edge
      cloud 10.125.0.100 (fake API) ─┘        (edge: "DigitalOcean's network")

Each cp's default route leads to ``edge``, which delivers the floating IP to the holder's
"anchor" address (DNAT, moved by the harness to whichever droplet the fake API says holds
the address) and drops every packet it would send back out of the link it came in on: a
hairpin. Nothing here has the floating IP on an interface.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION
from tests.support import netns
from tests.support.netns import ROOT, Topology, wait_for

pytestmark = pytest.mark.integration

AGENT = ROOT / "provisioner" / "agents" / "failover.py"
CLUSTER = "self"
TAG = f"provision:{CLUSTER}:controller"
TOKEN = "self-reach-test-token"
FLOATING_IP = "198.51.100.20"  # TEST-NET-2, routed only inside this run's namespaces
PRIVATE = {1: "10.125.0.1", 2: "10.125.0.2"}
ANCHOR = {1: "10.126.1.2", 2: "10.126.2.2"}
EDGE = {1: "10.126.1.1", 2: "10.126.2.1"}
CLOUD = "10.125.0.100"
API_PORT = 8080
CHAIN = "PROVISION-API-ENDPOINT"


@dataclass
class World:
    topology: Topology
    workdir: Path
    droplet_ids: dict[int, int] = field(default_factory=dict)
    apiservers: dict[int, netns.Process] = field(default_factory=dict)

    @property
    def account(self) -> Path:
        return self.workdir / "account.json"

    def build(self) -> None:
        topo = self.topology
        for number, address in PRIVATE.items():
            topo.add_host(f"cp{number}", address)
        topo.add_host("cloud", CLOUD)
        topo.add_namespace("edge")
        edge = topo.hosts["edge"].namespace
        netns._run(["ip", "netns", "exec", edge, "sysctl", "-qw", "net.ipv4.ip_forward=1"])
        for number in PRIVATE:
            name = f"cp{number}"
            topo.link(name, "pub0", f"{ANCHOR[number]}/24", "edge", f"to-{name}",
                      f"{EDGE[number]}/24")
            topo.ip(name, "route", "add", "default", "via", EDGE[number], "dev", "pub0")
            # A hairpin: in and out of the same link. DigitalOcean documents none; here
            # there is none, so only the agent's rule can make the holder reach itself.
            self.edge_iptables("-A", "FORWARD", "-i", f"to-{name}", "-o", f"to-{name}",
                               "-j", "DROP")
        self.seed_account()
        api = topo.python("cloud", "fake-digitalocean", "-m", "tests.fakes.doapi.serve",
                          "--state", str(self.account), "--host", CLOUD, "--port",
                          str(API_PORT), "--token", TOKEN, "--requests",
                          str(self.workdir / "requests.jsonl"), "--lifetime", "240")
        wait_for("the fake DigitalOcean API",
                 lambda: "listening" in api.read_stdout() or not api.alive(), 30)
        assert api.alive(), api.output()
        for number in PRIVATE:
            self.start_apiserver(number)
            self.write_settings(number)

    def seed_account(self) -> None:
        """Two tagged control-plane droplets; the floating IP exists, assigned to nobody."""
        fake = FakeDigitalOcean(self.account, TOKEN)
        for number, address in PRIVATE.items():
            droplet_id = fake.add_droplet(f"{CLUSTER}-cp-{number}", tags=[TAG])
            with Cloud(self.account).transaction() as account:
                record = account.get("digitalocean_droplet", str(droplet_id))
                assert record is not None
                record["ipv4_address_private"] = address
            self.droplet_ids[number] = droplet_id
        fake.provider_create("digitalocean_reserved_ip", region=DEFAULT_REGION,
                             ip_address=FLOATING_IP)

    def start_apiserver(self, number: int) -> None:
        name = f"cp{number}"
        server = self.topology.python(name, f"apiserver-{name}-{time.monotonic_ns()}", "-m",
                                      "tests.support.netns", "apiserver", "--name", name,
                                      "--port", "6443", "--lifetime", "240")
        wait_for(f"{name}'s API server",
                 lambda: "listening" in server.read_stdout() or not server.alive(), 30)
        assert server.alive(), server.output()
        self.apiservers[number] = server

    def settings_path(self, number: int) -> Path:
        return self.workdir / f"cp{number}" / "failover.json"

    def write_settings(self, number: int) -> None:
        host = self.workdir / f"cp{number}"
        host.mkdir(parents=True, exist_ok=True)
        self.settings_path(number).write_text(json.dumps({
            "cluster": CLUSTER, "floating_ip": FLOATING_IP, "token": TOKEN,
            "controller_tag": TAG, "droplet_id": str(self.droplet_ids[number]),
            "private_ip": PRIVATE[number], "api_endpoint": f"http://{CLOUD}:{API_PORT}/v2/",
            "keepalived_conf": str(host / "keepalived.conf"), "reload_command": "",
            "state_file": str(host / "state"), "log_file": str(host / "agent.log"),
        }))

    def agent(self, number: int, *args: str) -> None:
        """The real agent on cp`number`, as keepalived, the timer or the bootstrap runs it."""
        self.topology.run(f"cp{number}", [sys.executable, str(AGENT), "--config",
                                          str(self.settings_path(number)), *args], timeout=90)

    def holder(self) -> int | None:
        record = Cloud(self.account).snapshot()["resources"]["digitalocean_reserved_ip"][
            FLOATING_IP]
        by_id = {d: n for n, d in self.droplet_ids.items()}
        return None if record.get("droplet_id") is None else by_id[int(record["droplet_id"])]

    def route_to_holder(self) -> int:
        """What DigitalOcean's network does on an assignment: deliver to the anchor IP."""
        current = self.holder()
        assert current is not None
        self.edge_iptables("-t", "nat", "-F", "PREROUTING")
        self.edge_iptables("-t", "nat", "-A", "PREROUTING", "-d", f"{FLOATING_IP}/32",
                           "-j", "DNAT", "--to-destination", ANCHOR[current])
        return current

    def edge_iptables(self, *args: str) -> str:
        return self.topology.run("edge", ["iptables", "-w", "5", *args]).stdout

    def hairpins_dropped(self) -> int:
        shown = self.edge_iptables("-L", "FORWARD", "-v", "-n", "-x")
        return sum(int(line.split()[0]) for line in shown.splitlines()[2:] if "DROP" in line)

    def whoami(self, number: int) -> str:
        """Who answers floating_ip:6443 for a client on cp`number` ('unreachable' if nobody)."""
        code = ("import sys, urllib.request\n"
                "opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))\n"
                "try:\n"
                f"    print(opener.open('http://{FLOATING_IP}:6443/whoami', timeout=3)"
                ".read().decode())\n"
                "except Exception as e:\n"
                "    print('unreachable', type(e).__name__, e)\n")
        return self.topology.run(f"cp{number}", [sys.executable, "-c", code]).stdout.strip()

    def nat_rules(self, number: int) -> list[str]:
        return self.topology.run(f"cp{number}", ["iptables", "-w", "5", "-t", "nat", "-S"]
                                 ).stdout.splitlines()

    def diagnostics(self) -> str:
        parts = [p.output(3000) for p in self.topology.processes]
        for log in sorted(self.workdir.glob("cp*/agent.log")):
            parts.append(f"--- {log.parent.name} agent log:\n{log.read_text()[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    topology = Topology(f"fs{os.getpid()}", tmp_path / "logs")
    built = World(topology, tmp_path)
    try:
        built.build()
        yield built
    except BaseException:
        print(built.diagnostics())
        raise
    finally:
        topology.close()


def test_the_holder_reaches_itself_and_the_others_take_the_normal_path(world: World) -> None:
    started = time.monotonic()
    # Bootstrap on cp1: claim before kubeadm init. The address is free: the agent assigns
    # it and points cp1's own connections to floating_ip:6443 at its private address.
    world.agent(1, "claim")
    assert world.route_to_holder() == 1
    assert world.whoami(1) == "cp1"  # what kubeadm init, the kubelet, kube-proxy need
    assert world.whoami(2) == "cp1"  # the normal path, through the "cloud"
    rules = world.nat_rules(1)
    assert rules.count(f"-A OUTPUT -j {CHAIN}") == 1
    assert [r for r in rules if r.startswith(f"-A {CHAIN}")] == [
        f"-A {CHAIN} -d {FLOATING_IP}/32 -p tcp -m tcp --dport 6443 -j DNAT "
        f"--to-destination {PRIVATE[1]}:6443"]
    assert not [r for r in world.nat_rules(2) if r.startswith(f"-A {CHAIN}")]

    # Without the rule the holder cannot reach its own endpoint here: the network drops
    # the hairpin (this is what the rule is for). The timer's pass puts it back, once.
    dropped = world.hairpins_dropped()
    world.topology.run("cp1", ["iptables", "-w", "5", "-t", "nat", "-F", CHAIN])
    assert world.whoami(1).startswith("unreachable")
    assert world.hairpins_dropped() > dropped
    world.agent(1, "endpoint")
    world.agent(1, "endpoint")
    assert world.nat_rules(1) == rules
    assert world.whoami(1) == "cp1"

    # keepalived's first notification on cp1 is BACKUP (it still holds the address): kept.
    world.agent(1, "notify", "INSTANCE", "api", "BACKUP", "250")
    assert world.whoami(1) == "cp1"
    world.agent(1, "notify", "INSTANCE", "api", "MASTER", "250")
    assert world.whoami(1) == "cp1"

    # Failover: cp2 becomes MASTER and takes the address; DigitalOcean routes it to cp2.
    world.agent(2, "notify", "INSTANCE", "api", "MASTER", "230")
    assert world.route_to_holder() == 2
    assert world.whoami(2) == "cp2"  # the new holder reaches itself, no hairpin needed
    # cp1 is told it is no longer MASTER: its rule goes, it takes the normal path to cp2
    # (its own API server still answers, so "cp2" can only come through the "cloud").
    world.agent(1, "notify", "INSTANCE", "api", "BACKUP", "250")
    assert world.whoami(1) == "cp2"
    assert not [r for r in world.nat_rules(1) if r.startswith(f"-A {CHAIN}")]

    # cp2's API server fails: FAULT removes its rule at once; cp1 takes over.
    world.apiservers[2].stop(timeout=5)
    world.agent(2, "notify", "INSTANCE", "api", "FAULT", "230")
    world.agent(1, "notify", "INSTANCE", "api", "MASTER", "250")
    assert world.route_to_holder() == 1
    assert world.whoami(1) == "cp1"
    assert world.whoami(2) == "cp1"
    assert time.monotonic() - started < 180
