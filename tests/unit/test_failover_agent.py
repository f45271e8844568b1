"""The failover agent against the fake DigitalOcean API, in-process (no namespaces).

The integration test (tests/integration/test_failover.py) shows the whole failover working
with real keepalived; these pin down the agent's own decisions quickly and one by one:
what keepalived is told (and that keepalived accepts it), who counts as a peer, when the
floating IP is (re)assigned, how API errors and a silent API are survived, and that a
node that lost a MASTER race stops claiming the address.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from provisioner.agents import failover
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION
from tests.support import fake_iptables

AGENT = Path(failover.__file__)
TOKEN = "agent-test-token"
CLUSTER = "test"
TAG = f"provision:{CLUSTER}:controller"
FLOATING_IP = "198.51.100.10"
CONTROL_PLANE = {1: "10.123.0.1", 2: "10.123.0.2", 3: "10.123.0.3"}
# DigitalOcean's reserved IP endpoints (digitalocean/openapi, specification/resources/
# reserved_ips/reservedIPsActions_post.yml and reservedIPs_get.yml); /v2/floating_ips is
# the deprecated name of the same objects and must not be used.
ASSIGN_PATH = "/v2/reserved_ips/*/actions"
# What `keepalived --config-test` reports here that is not a mistake: no VIP (by design,
# the API moves the address) and, off a configured node, no vrrp0 tunnel interface. The
# integration test runs the same check on a node with the tunnel, with only the first.
EXPECTED_CONFIG_MESSAGES = (
    "No VIP specified; at least one is sensible",
    f"interface {failover.TUNNEL} for vrrp_instance api doesn't exist",
    "Non-existent interface specified in configuration",
    "Unknown interface!",
)


@dataclass
class Account:
    """A running fake API with a seeded account: droplet ids by control-plane number."""

    fake: FakeDigitalOcean
    path: Path
    ids: dict[int, int]
    state_dir: Path

    def settings(self, number: int, **changes: Any) -> failover.Settings:
        """cp`number`'s agent settings, pointed at the fake."""
        base = failover.Settings(
            cluster=CLUSTER, floating_ip=FLOATING_IP, token=TOKEN, controller_tag=TAG,
            droplet_id=str(self.ids[number]), private_ip=CONTROL_PLANE[number],
            api_endpoint=self.fake.endpoint,
            keepalived_conf=str(self.state_dir / f"cp{number}" / "keepalived.conf"),
            state_file=str(self.state_dir / f"cp{number}" / "state"), reload_command="",
            iptables=str(_nat_table(self.state_dir / f"cp{number}-nat")),
            # Never this machine's systemd or kubeconfig: tests that need them set them.
            keepalived_active_command="", kubeconfig="")
        return replace(base, **changes)

    def nat(self, number: int) -> dict[str, list[list[str]]]:
        """cp`number`'s nat chains as its (stand-in) iptables holds them."""
        state = self.state_dir / f"cp{number}-nat" / "iptables-state.json"
        return json.loads(state.read_text()) if state.is_file() else {}

    def holder(self) -> int | None:
        """Which cp holds the floating IP according to the account."""
        record = Cloud(self.path).snapshot()["resources"]["digitalocean_reserved_ip"][FLOATING_IP]
        by_id = {d: n for n, d in self.ids.items()}
        return None if record.get("droplet_id") is None else by_id[int(record["droplet_id"])]

    def assigns(self) -> list[Any]:
        """Bodies of the assign POSTs that succeeded."""
        return [r.body for r in self.fake.requests("POST", ASSIGN_PATH) if r.status == 201]


def _nat_table(folder: Path) -> Path:
    """A node's own stand-in iptables; the agent runs on this machine here, where the real
    command would change its nat table."""
    return fake_iptables.install(folder)


@pytest.fixture
def account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Account]:
    """Three tagged control-plane droplets and decoys; the floating IP on cp1."""
    path = tmp_path / "account.json"
    fake = FakeDigitalOcean(path, TOKEN)
    ids = {}
    droplets = [(f"{CLUSTER}-cp-{n}", [TAG], a) for n, a in CONTROL_PLANE.items()] + [
        (f"{CLUSTER}-worker-1", [f"provision:{CLUSTER}:worker"], "10.123.0.60"),
        ("other-cp-1", ["provision:other:controller"], "10.124.0.1"),  # another cluster
        (f"{CLUSTER}-cp-4", [TAG], None),  # being created: no private address yet
    ]
    for name, tags, address in droplets:
        droplet_id = fake.add_droplet(name, tags=tags)
        with Cloud(path).transaction() as state:
            record = state.get("digitalocean_droplet", str(droplet_id))
            assert record is not None
            record["ipv4_address_private"] = address
        if name.startswith(f"{CLUSTER}-cp-") and address:
            ids[failover.controller_number(name)] = droplet_id
    fake.provider_create("digitalocean_reserved_ip", region=DEFAULT_REGION,
                         ip_address=FLOATING_IP, droplet_id=ids[1])
    # Only the settings' endpoint counts: a stray variable must not redirect the agent.
    monkeypatch.setenv("DIGITALOCEAN_END_POINT", "http://127.0.0.1:9/unused/")
    with fake:
        yield Account(fake, path, ids, tmp_path)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The agent's backoff sleeps, recorded instead of slept."""
    slept: list[float] = []
    monkeypatch.setattr("provisioner.agents.failover.time.sleep", slept.append)
    return slept


# ------------------------------------------------------------------- names and peers


@pytest.mark.parametrize(("name", "number"), [
    ("prod-cp-1", 1), ("prod-cp-2", 2), ("my-prod-cluster-cp-13", 13), ("a-cp-1-cp-3", 3),
])
def test_controller_number(name: str, number: int) -> None:
    assert failover.controller_number(name) == number


@pytest.mark.parametrize("name", [
    "prod-worker-1", "prod-cp-", "prod-cp-2a", "cp-1", "prod-cp-1.example", "prod-cp-x",
])
def test_controller_number_refuses_other_names(name: str) -> None:
    with pytest.raises(ValueError, match="not a control-plane droplet name"):
        failover.controller_number(name)


def test_peers_are_the_tagged_droplets_with_private_addresses(account: Account) -> None:
    """Workers, another cluster's nodes and a droplet without a VPC address are left out."""
    assert failover.peers(account.settings(2)) == CONTROL_PLANE


def test_peers_follow_the_pages(account: Account) -> None:
    """More tagged droplets than one page holds: every page is read."""
    for number in range(5, 210):
        new = account.fake.add_droplet(f"{CLUSTER}-cp-{number}", tags=[TAG])
        with Cloud(account.path).transaction() as state:
            record = state.get("digitalocean_droplet", str(new))
            assert record is not None
            record["ipv4_address_private"] = f"10.123.{number // 200}.{number % 200 + 1}"
    found = failover.peers(account.settings(1))
    assert len(found) == 3 + 205 and found[209] == "10.123.1.10"
    assert len(account.fake.requests("GET", "/v2/droplets")) == 2


def test_peers_follow_the_tag(account: Account) -> None:
    """A droplet tagged later (a replacement node) joins on the next configure."""
    new = account.fake.add_droplet(f"{CLUSTER}-cp-5", tags=[TAG])
    with Cloud(account.path).transaction() as state:
        record = state.get("digitalocean_droplet", str(new))
        assert record is not None
        record["ipv4_address_private"] = "10.123.0.5"
    assert failover.peers(account.settings(1)) == {**CONTROL_PLANE, 5: "10.123.0.5"}


# ------------------------------------------------------------------ keepalived.conf


def _settings_file(account: Account, number: int) -> Path:
    settings = account.settings(number)
    path = account.state_dir / f"cp{number}.json"
    path.write_text(json.dumps({k: getattr(settings, k) for k in
                                failover.Settings.__dataclass_fields__}))
    return path


def _conf(account: Account, number: int) -> str:
    config = _settings_file(account, number)
    command = f"{sys.executable} {AGENT} --config {config}"
    settings = account.settings(number, check_command=f"{command} check",
                                notify_command=f"{command} notify")
    return failover.keepalived_config(settings, number, sorted(CONTROL_PLANE))


def test_keepalived_config_says_what_the_design_needs(account: Account) -> None:
    text = _conf(account, 2)
    assert "state BACKUP" in text and "nopreempt" in text
    assert "interface vrrp0" in text and "unicast_src_ip 169.254.100.2" in text
    peers = re.search(r"unicast_peer \{([^}]*)\}", text)
    assert peers is not None and peers.group(1).split() == ["169.254.100.1", "169.254.100.3"]
    assert "virtual_ipaddress" not in text  # the API moves the address, not ARP
    assert re.search(r'notify ".* notify"', text) and re.search(r'script ".* check"', text)


def test_priorities_decrease_with_the_number_in_steps_above_jitter() -> None:
    """The next node in line must win a takeover alone, not tie with the one after it."""
    priorities = [failover.priority(n) for n in range(1, 8)]
    assert all(1 <= p <= 254 for p in priorities)
    skews = [(256 - p) / 256 for p in priorities]
    assert all(b - a >= 0.05 for a, b in itertools.pairwise(skews)), skews
    assert failover.priority(40) == 1  # never out of range, however many nodes


def _config_test(keepalived: str, conf: Path) -> tuple[int, list[str]]:
    result = subprocess.run([keepalived, "--config-test", "-f", str(conf)],
                            capture_output=True, text=True, timeout=30)
    problems = [line for line in (result.stderr + result.stdout).splitlines()
                if line.strip() and not any(m in line for m in EXPECTED_CONFIG_MESSAGES)]
    return result.returncode, problems


@pytest.fixture
def keepalived() -> str:
    """keepalived with a configuration test mode (``-t``), or a skip."""
    binary = shutil.which("keepalived") or shutil.which("keepalived", path="/usr/sbin:/sbin")
    if binary is None:
        pytest.skip("keepalived is not installed (.ci/run installs it)")
    usage = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=30)
    if "--config-test" not in usage.stdout + usage.stderr:
        pytest.skip("this keepalived has no --config-test")
    return binary


def test_keepalived_accepts_the_configuration(account: Account, keepalived: str) -> None:
    """keepalived's own parser finds nothing wrong but the two expected messages.

    It counts the deliberate absence of a VIP as an error (exit 5), and off a node the
    tunnel interface does not exist; anything else (an unknown keyword, a script that
    script security refuses, a bad address) is a failure.
    """
    for number in CONTROL_PLANE:
        conf = account.state_dir / f"keepalived-cp{number}.conf"
        conf.write_text(_conf(account, number))
        code, problems = _config_test(keepalived, conf)
        assert code in (0, 5) and problems == [], (code, problems)


def test_keepalived_config_test_catches_mistakes(account: Account, keepalived: str) -> None:
    """The filter above hides only the expected messages: a typo is still reported."""
    conf = account.state_dir / "broken.conf"
    conf.write_text(_conf(account, 1).replace("advert_int 1", "advert_interval 1"))
    code, problems = _config_test(keepalived, conf)
    assert code != 0 and any("advert_interval" in p for p in problems), problems


# ----------------------------------------------------------------------- assignment


def test_assign_moves_the_floating_ip(account: Account, sleeps: list[float]) -> None:
    """Read with GET /v2/reserved_ips/{ip}, move with POST /v2/reserved_ips/{ip}/actions.

    Paths and bodies from digitalocean/openapi (main, 2026-08):
    specification/resources/reserved_ips/reservedIPs_get.yml and
    reservedIPsActions_post.yml with models/reserved_ip_actions.yml (`type: assign`,
    integer `droplet_id`). Nothing may use the deprecated /v2/floating_ips endpoints.
    """
    assert failover.assign(account.settings(2))
    assert account.holder() == 2
    assert account.assigns() == [{"type": "assign", "droplet_id": account.ids[2]}]
    paths = [(r.method, r.path) for r in account.fake.request_log]
    assert paths == [("GET", f"/v2/reserved_ips/{FLOATING_IP}"),
                     ("POST", f"/v2/reserved_ips/{FLOATING_IP}/actions"),
                     ("GET", f"/v2/reserved_ips/{FLOATING_IP}")], paths


def test_api_errors_name_the_request_and_the_apis_message(account: Account) -> None:
    """A wrong token gets the API's 401, reported with its message, not a traceback."""
    with pytest.raises(failover.ApiError, match=r"GET reserved_ips/.*: HTTP 401 \S"):
        failover.holder(account.settings(1, token="not-the-token"))


def test_assign_is_a_no_op_when_already_assigned(account: Account,
                                                 sleeps: list[float]) -> None:
    assert failover.assign(account.settings(1))
    assert account.holder() == 1
    assert account.fake.requests("POST") == []
    assert sleeps == []


@pytest.mark.parametrize("status", [500, 503])
def test_assign_retries_server_errors(account: Account, sleeps: list[float],
                                      status: int) -> None:
    account.fake.faults.fail(2, status=status)
    assert failover.assign(account.settings(3))
    assert account.holder() == 3
    statuses = [r.status for r in account.fake.request_log]
    assert statuses[:2] == [status, status], statuses
    assert account.assigns() == [{"type": "assign", "droplet_id": account.ids[3]}]
    assert sleeps[:2] == [0.5, 1.0]  # backoff before each retry


def test_assign_gives_up_after_its_attempts(account: Account, sleeps: list[float]) -> None:
    account.fake.faults.fail(50)
    assert not failover.assign(account.settings(2), attempts=4)
    assert account.holder() == 1
    assert sleeps == [0.5, 1.0, 2.0, 4.0]


def test_assign_stops_once_no_longer_master(account: Account, sleeps: list[float]) -> None:
    """A node that lost a MASTER race must not take the address from the real MASTER."""
    assert not failover.assign(account.settings(3), still_master=lambda: False)
    assert account.holder() == 1
    assert account.fake.requests("POST") == []


def test_assign_takes_the_address_back_while_master(account: Account,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Two nodes were MASTER for a moment: the loser's late POST lands after ours.

    The node still MASTER sees someone else holding the address on its next check and
    assigns it again.
    """
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        if not slept:  # right after our first assignment: the other node's arrives
            failover.assign_to(account.settings(3), account.ids[3])
        slept.append(seconds)

    monkeypatch.setattr("provisioner.agents.failover.time.sleep", sleep)
    assert failover.assign(account.settings(2), still_master=lambda: True)
    assert account.holder() == 2
    assert [b["droplet_id"] for b in account.assigns()] == [
        account.ids[2], account.ids[3], account.ids[2]]


def test_requests_have_a_timeout_by_default() -> None:
    settings = failover.Settings(cluster="c", floating_ip=FLOATING_IP, token=TOKEN,
                                 controller_tag=TAG)
    assert settings.api_timeout == failover.API_TIMEOUT and 0 < failover.API_TIMEOUT <= 30
    assert settings.api_endpoint is None and failover.API.endswith("/v2/")


def test_a_silent_api_is_retried_not_waited_for(account: Account) -> None:
    """Each request times out, so the retries (and finally the give-up) happen."""
    account.fake.faults.latency = 1.0
    started = time.monotonic()
    assert not failover.assign(account.settings(2, api_timeout=0.2), attempts=2)
    assert time.monotonic() - started < 5
    account.fake.faults.latency = 0.0
    assert account.holder() == 1


# ------------------------------------------------------------ notify: state ordering


def test_a_later_notification_supersedes_an_earlier_one(account: Account,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Order is keepalived's fork order (start time, pid), not the order the scripts run."""
    settings = account.settings(2)
    orders = iter([["boot", 100, 500], ["boot", 101, 501], ["boot", 100, 499],
                   ["new-boot", 5, 20]])
    monkeypatch.setattr(failover, "_notification_order", lambda: next(orders))
    master = failover.record_state(settings, "MASTER")
    assert master is not None and master()
    backup = failover.record_state(settings, "BACKUP")
    assert backup is not None and backup() and not master()
    assert failover.record_state(settings, "MASTER") is None  # started before BACKUP
    assert json.loads(Path(settings.state_file).read_text())["state"] == "BACKUP"
    after_reboot = failover.record_state(settings, "MASTER")
    assert after_reboot is not None and after_reboot() and not backup()


def test_notification_order_is_this_process() -> None:
    boot, started, pid = failover._notification_order()
    assert pid == os.getpid() and isinstance(started, int)
    assert boot or sys.platform != "linux"


def test_notify_master_assigns_and_backup_does_not(account: Account,
                                                   sleeps: list[float]) -> None:
    config = _settings_file(account, 2)
    assert failover.main(["--config", str(config), "notify", "INSTANCE", "api", "BACKUP",
                          "230"]) == 0
    assert account.holder() == 1 and account.assigns() == []
    assert failover.main(["--config", str(config), "notify", "INSTANCE", "api", "MASTER",
                          "230"]) == 0
    assert account.holder() == 2
    state = json.loads(Path(account.settings(2).state_file).read_text())
    assert state["state"] == "MASTER"


def test_superseded_master_notification_does_nothing(account: Account,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = _settings_file(account, 3)
    Path(account.settings(3).state_file).parent.mkdir(parents=True, exist_ok=True)
    Path(account.settings(3).state_file).write_text(
        json.dumps({"state": "BACKUP", "order": ["boot", 200, 10]}))
    monkeypatch.setattr(failover, "_notification_order", lambda: ["boot", 199, 9])
    assert failover.main(["--config", str(config), "notify", "INSTANCE", "api", "MASTER",
                          "210"]) == 0
    assert account.holder() == 1
    assert account.fake.request_log == []


# -------------------------------------------------------------------- health check


@pytest.fixture
def local_api() -> Iterator[Callable[[int], str]]:
    """An HTTP server on 127.0.0.1 whose /readyz answers the status it is told."""
    status = {"code": 200}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(status["code"])
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, format: str, *args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def url(code: int) -> str:
        status["code"] = code
        return f"http://127.0.0.1:{server.server_address[1]}/readyz"

    yield url
    server.shutdown()
    server.server_close()


def test_check_passes_only_while_ready(account: Account,
                                       local_api: Callable[[int], str]) -> None:
    assert failover.check(account.settings(1, check_url=local_api(200))) == 0
    assert failover.check(account.settings(1, check_url=local_api(503))) == 1
    closed = local_api(200).rsplit(":", 1)[0] + ":9/readyz"  # discard port: nothing listens
    assert failover.check(account.settings(1, check_url=closed)) == 1


def test_a_failing_notify_leaves_its_reason_in_the_log_file(tmp_path: Path) -> None:
    """keepalived sends a notify command's output to /dev/null: a failure must still be
    written where someone reads it (the settings' log file; syslog on a node), and the
    command exits 1 instead of dying with a traceback nobody sees."""
    log_file = tmp_path / "agent.log"
    state_dir = tmp_path / "state-is-a-folder"
    state_dir.mkdir()
    settings = tmp_path / "failover.json"
    settings.write_text(json.dumps({
        "cluster": CLUSTER, "floating_ip": FLOATING_IP, "token": TOKEN, "controller_tag": TAG,
        "state_file": str(state_dir), "log_file": str(log_file)}))
    result = subprocess.run([sys.executable, str(AGENT), "--config", str(settings), "notify",
                             "INSTANCE", "api", "MASTER", "150"], capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    logged = log_file.read_text()
    assert "keepalived state MASTER" in logged
    assert "cannot record the state in" in logged
    # Off a droplet the metadata service does not answer (how depends on the machine):
    # whatever the exception, it is in the log with the command that failed.
    assert re.search(r"\] notify failed: \w+", logged), logged
    assert TOKEN not in logged


# ------------------------------------------------- the holder's way to its own endpoint


def _rule(number: int) -> list[str]:
    return ["-d", f"{FLOATING_IP}/32", "-p", "tcp", "-m", "tcp", "--dport", "6443", "-j",
            "DNAT", "--to-destination", f"{CONTROL_PLANE[number]}:6443"]


def _notify(account: Account, number: int, state: str) -> int:
    return failover.main(["--config", str(_settings_file(account, number)), "notify",
                          "INSTANCE", "api", state, "200"])


@pytest.mark.parametrize(("state", "holder", "wanted"), [
    (None, 1, True),  # before keepalived ever ran: kubeadm init on the node that claimed it
    ("BACKUP", 1, True),  # keepalived's first state on that node: keep reaching itself
    ("MASTER", 1, True),
    ("STOP", 1, True),  # keepalived stopped, address not moved yet: still routed here
    ("FAULT", 1, False),  # own API server failed its check: never to itself
    ("MASTER", 2, False),  # the API says another droplet holds it
    ("BACKUP", None, False),
])
def test_endpoint_rule_follows_the_holder_except_in_fault(state: str | None, holder: int | None,
                                                           wanted: bool) -> None:
    assert failover.endpoint_wanted(state, holder, 1) is wanted


def test_claim_points_the_holder_at_itself_before_kubeadm_init(account: Account) -> None:
    """cp1 claims (it holds the address): its own connections to floating_ip:6443 go to
    its private address; cp2 claims while cp1 holds it: nothing rewritten there."""
    assert failover.claim(account.settings(1))
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == [_rule(1)]
    assert account.nat(1)["OUTPUT"] == [["-j", "PROVISION-API-ENDPOINT"]]
    assert failover.claim(account.settings(2))
    assert account.nat(2)["PROVISION-API-ENDPOINT"] == []
    assert account.holder() == 1


def test_claim_of_a_free_address_assigns_then_rewrites(account: Account,
                                                       sleeps: list[float]) -> None:
    with Cloud(account.path).transaction() as state:
        record = state.get("digitalocean_reserved_ip", FLOATING_IP)
        assert record is not None
        record["droplet_id"] = None
    assert failover.claim(account.settings(1))
    assert account.holder() == 1
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == [_rule(1)]


def test_the_rule_is_idempotent(account: Account) -> None:
    settings = account.settings(1)
    assert failover.set_endpoint_rule(settings, present=True)
    assert not failover.set_endpoint_rule(settings, present=True)
    assert not failover.reconcile_endpoint(settings)
    assert account.nat(1) == {"OUTPUT": [["-j", "PROVISION-API-ENDPOINT"]],
                              "PROVISION-API-ENDPOINT": [_rule(1)]}
    assert failover.set_endpoint_rule(settings, present=False)
    assert not failover.set_endpoint_rule(settings, present=False)
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == []
    assert account.nat(1)["OUTPUT"] == [["-j", "PROVISION-API-ENDPOINT"]]


def test_failover_moves_the_rule_with_the_address(account: Account,
                                                  sleeps: list[float]) -> None:
    """Startup BACKUP on the holder keeps the rule; the new MASTER takes address and rule;
    the old holder's next notification (here BACKUP) sends it the normal path."""
    assert failover.claim(account.settings(1))
    assert _notify(account, 1, "BACKUP") == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == [_rule(1)]
    assert _notify(account, 1, "MASTER") == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == [_rule(1)]
    assert _notify(account, 2, "MASTER") == 0
    assert account.holder() == 2
    assert account.nat(2)["PROVISION-API-ENDPOINT"] == [_rule(2)]
    assert _notify(account, 1, "BACKUP") == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == []


def test_fault_removes_the_rule_while_still_holding(account: Account) -> None:
    assert failover.claim(account.settings(1))
    assert _notify(account, 1, "FAULT") == 0
    assert account.holder() == 1  # nobody has taken it yet
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == []
    # The timer does not put it back while the node is in FAULT.
    assert failover.main(["--config", str(_settings_file(account, 1)), "endpoint"]) == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == []


def test_the_timer_removes_a_rule_nobody_told_it_about(account: Account,
                                                       sleeps: list[float]) -> None:
    """cp1's keepalived crashed: no notification there when cp2 takes the address; the
    agent's timer pass asks the API and removes cp1's rule."""
    assert failover.claim(account.settings(1))
    assert _notify(account, 2, "MASTER") == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == [_rule(1)]
    assert failover.main(["--config", str(_settings_file(account, 1)), "endpoint"]) == 0
    assert account.nat(1)["PROVISION-API-ENDPOINT"] == []


def test_a_stale_decision_is_not_applied(account: Account) -> None:
    settings = account.settings(1)
    assert not failover.set_endpoint_rule(settings, present=True, still_valid=lambda: False)
    assert account.nat(1) == {}


def test_the_token_goes_only_to_the_configured_api() -> None:
    """A page link is followed only to the same scheme and host (a prefix test let
    "https://api.digitalocean.com.evil" pass), and a redirect is refused, not followed:
    urllib re-sends the Authorization header to wherever it points."""
    same = failover._same_origin
    assert same("https://api.digitalocean.com/v2/droplets?page=2", "https://api.digitalocean.com/v2/")
    assert not same("https://api.digitalocean.com.evil/v2/droplets", "https://api.digitalocean.com")
    assert not same("http://api.digitalocean.com/v2/droplets", "https://api.digitalocean.com/v2/")

    received: list[str] = []

    class Elsewhere(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.headers.get("Authorization", ""))
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, format: str, *args: object) -> None:
            pass

    other = ThreadingHTTPServer(("127.0.0.1", 0), Elsewhere)

    class Redirecting(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", f"http://127.0.0.1:{other.server_address[1]}/steal")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    api = ThreadingHTTPServer(("127.0.0.1", 0), Redirecting)
    for server in (other, api):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = failover.Settings(cluster=CLUSTER, floating_ip=FLOATING_IP, token=TOKEN,
                                     controller_tag=TAG, api_timeout=5,
                                     api_endpoint=f"http://127.0.0.1:{api.server_address[1]}/v2/")
        with pytest.raises(failover.ApiError, match="HTTP 302"):
            failover.api(settings, "GET", "droplets")
        assert received == []
    finally:
        for server in (other, api):
            server.shutdown()
            server.server_close()


# ------------------------------------------ reboot, liveness and the timer's reconcile


def test_prestart_builds_from_the_peers_last_seen_while_the_api_fails(
        account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a reboot keepalived.service's ExecStartPre (``prestart``) must bring the tunnel
    up even if the API does not answer yet: it uses the peers the last run remembered. With
    nothing remembered it fails, and systemd's Restart= tries again."""
    built: list[dict[int, str]] = []
    monkeypatch.setattr(failover, "build_tunnel",
                        lambda settings, me, ip, found: built.append(dict(found)))
    settings = account.settings(2)
    assert failover.configure(settings)  # the API answers: peers remembered
    remembered = json.loads((account.state_dir / "cp2" / "provision-peers.json").read_text())
    assert remembered == {str(n): a for n, a in CONTROL_PLANE.items()}
    Path(settings.keepalived_conf).unlink()
    account.fake.faults.fail(count=1, status=503)
    assert failover.configure(settings, reload=False, fallback=True)
    assert built[-1] == CONTROL_PLANE
    assert Path(settings.keepalived_conf).read_text() == _conf_of(settings, 2)
    # The timer's own pass does not fall back: a failing API is reported, not hidden.
    account.fake.faults.fail(count=1, status=503)
    with pytest.raises(failover.ApiError, match="HTTP 503"):
        failover.configure(settings)
    fresh = account.settings(3)
    account.fake.faults.fail(count=1, status=503)
    with pytest.raises(failover.ApiError):
        failover.configure(fresh, reload=False, fallback=True)  # nothing remembered


def _conf_of(settings: failover.Settings, number: int) -> str:
    return failover.keepalived_config(settings, number, sorted(CONTROL_PLANE))


def _record(account: Account, number: int, state: str) -> None:
    assert failover.record_state(account.settings(number), state) is not None


def test_the_timer_puts_the_address_on_the_master(account: Account) -> None:
    """The notify's attempts all failed (the API was down during the failover): cp2 is
    MASTER, the address still on cp1. One timer pass: one read, one assignment."""
    _record(account, 2, "MASTER")
    before = len(account.fake.requests())
    assert failover.reconcile_endpoint(account.settings(2), take=True)
    assert account.holder() == 2
    calls = [(r.method, r.path) for r in account.fake.requests()[before:]]
    assert calls == [("GET", f"/v2/reserved_ips/{FLOATING_IP}"),
                     ("POST", f"/v2/reserved_ips/{FLOATING_IP}/actions")]
    assert account.nat(2)["PROVISION-API-ENDPOINT"] == [_rule(2)]
    # Already there: one read, nothing else.
    before = len(account.fake.requests())
    failover.reconcile_endpoint(account.settings(2), take=True)
    assert [r.method for r in account.fake.requests()[before:]] == ["GET"]


@pytest.mark.parametrize("state", ["BACKUP", "FAULT", "STOP", None])
def test_the_timer_takes_the_address_only_as_master(account: Account,
                                                    state: str | None) -> None:
    if state:
        _record(account, 2, state)
    failover.reconcile_endpoint(account.settings(2), take=True)
    assert account.holder() == 1
    assert account.assigns() == []


def test_a_notification_during_the_pass_stops_the_assignment(
        account: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    _record(account, 2, "MASTER")
    real_holder = failover.holder

    def holder_then_backup(settings: failover.Settings) -> int | None:
        found = real_holder(settings)
        _record(account, 2, "BACKUP")  # keepalived moved on while the API was read
        return found

    monkeypatch.setattr(failover, "holder", holder_then_backup)
    failover.reconcile_endpoint(account.settings(2), take=True)
    assert account.holder() == 1 and account.assigns() == []


def _commands(tmp_path: Path, active: str, restart_exit: int) -> dict[str, str]:
    """A liveness check that prints `active` (exit 0 only for "active") and a restart
    that leaves a mark; real processes, as systemctl would be."""
    mark = tmp_path / "restarted"
    code = 0 if active == "active" else 3
    return {"keepalived_active_command": f"sh -c 'echo {active}; exit {code}'",
            "keepalived_restart_command":
                f"sh -c 'echo restarting >{mark}; echo no unit >&2; exit {restart_exit}'"}


@pytest.mark.parametrize(("active", "restart_exit", "outcome", "restarted"), [
    ("active", 0, "active", False),
    ("activating", 0, "active", False),  # systemd is restarting it itself (Restart=)
    ("inactive", 0, "restarted", True),
    ("failed", 1, "failed", True),
])
def test_a_dead_keepalived_is_restarted(account: Account, tmp_path: Path, active: str,
                                        restart_exit: int, outcome: str, restarted: bool,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    settings = account.settings(2, **_commands(tmp_path, active, restart_exit))
    _record(account, 2, "MASTER")
    assert failover.ensure_keepalived(settings) == outcome
    assert (tmp_path / "restarted").is_file() is restarted
    # A dead keepalived's last MASTER is stale: the timer must not act on it.
    assert failover.recorded_state(settings) == ("STOP" if restarted else "MASTER")
    if outcome == "failed":
        assert "keepalived did not restart (exit 1): no unit" in capsys.readouterr().err


def test_the_timer_pass_restarts_keepalived_before_acting_on_its_state(
        account: Account, tmp_path: Path) -> None:
    """cp1's keepalived died as MASTER, cp2 took over (address on cp2): cp1's timer pass
    restarts keepalived and does not take the address back on its stale record."""
    _record(account, 1, "MASTER")
    _record(account, 2, "MASTER")
    assert failover.reconcile_endpoint(account.settings(2), take=True)
    settings_file = _settings_file(account, 1)
    data = json.loads(settings_file.read_text())
    data.update(_commands(tmp_path, "inactive", 0), log_file=str(tmp_path / "cp1.log"))
    settings_file.write_text(json.dumps(data))
    assert failover.main(["--config", str(settings_file), "configure"]) == 0
    assert (tmp_path / "restarted").is_file()
    assert account.holder() == 2
    assert [b["droplet_id"] for b in account.assigns()] == [account.ids[2]]
    assert "keepalived is not running (inactive): restarting it" in \
        (tmp_path / "cp1.log").read_text()


def test_the_timer_pass_goes_on_when_the_api_fails(account: Account, tmp_path: Path) -> None:
    """configure fails (the droplet list): keepalived is still checked, the address still
    reconciled, and the pass says it failed."""
    _record(account, 2, "MASTER")
    settings_file = _settings_file(account, 2)
    data = json.loads(settings_file.read_text())
    data.update(_commands(tmp_path, "inactive", 0))
    settings_file.write_text(json.dumps(data))
    account.fake.faults.fail(count=1, status=500)  # the droplet list
    assert failover.main(["--config", str(settings_file), "configure"]) == 1
    assert (tmp_path / "restarted").is_file()


def test_the_rendered_units_start_keepalived_after_its_tunnel() -> None:
    """What a control-plane node gets: keepalived.service's drop-in runs ``prestart``
    before keepalived and restarts it whatever ended it; the timer's period is 30 s with
    1 s accuracy (systemd's default AccuracySec=1min would stretch it to 90 s). The units
    travel in the bundle: read as the node gets them (rendering.on_node), 0644."""
    from tests.support.rendering import materialize, on_node, rendered

    config = yaml_load(materialize(rendered("production")["cloud-init/controller-init.yaml"]))
    node = on_node(config)
    units = ("/etc/systemd/system/keepalived.service.d/provision-failover.conf",
             "/etc/systemd/system/provision-failover.service",
             "/etc/systemd/system/provision-failover.timer")
    assert all(node[path].mode == 0o644 for path in units), {p: node[p].mode for p in units}
    files = {path: file.content for path, file in node.items()}
    dropin = files["/etc/systemd/system/keepalived.service.d/provision-failover.conf"]
    assert re.search(r"^ExecStartPre=/usr/bin/python3 /usr/local/lib/provision/failover.py "
                     r"prestart$", dropin, re.M)
    assert re.search(r"^Restart=always$", dropin, re.M)
    assert re.search(r"^StartLimitIntervalSec=0$", dropin, re.M)
    timer = files["/etc/systemd/system/provision-failover.timer"]
    assert re.search(r"^OnUnitActiveSec=30s$", timer, re.M)
    assert re.search(r"^AccuracySec=1s$", timer, re.M)


def yaml_load(text: str) -> Any:
    import yaml

    return yaml.safe_load(text)


# ------------------------------------- token rotation and status, through the Kubernetes API
# The agent talks to the API as the CSR approver does: kubectl with the node's admin
# kubeconfig (/etc/kubernetes/admin.conf on every kubeadm control-plane node), here real
# kubectl against the fake API server over TLS.

KUBECTL = str(Path(sys.executable).parent / "kubectl")
NEW_TOKEN = "dop_v1_" + "b" * 64


@dataclass
class Kube:
    api: Any
    kubeconfig: Path

    def secret(self, token: str) -> None:
        import base64

        self.api.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                         "metadata": {"name": "provision-failover", "namespace": "kube-system"},
                         "data": {"token": base64.b64encode(token.encode()).decode()}})

    def annotations(self, node: str) -> dict[str, str]:
        found = self.api.get("v1", "Node", node) or {}
        return dict((found.get("metadata") or {}).get("annotations") or {})


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[Kube]:
    if not Path(KUBECTL).is_file():
        pytest.skip("kubectl is not installed beside this interpreter")
    from tests.fakes.kubeapi import FakeKubeAPI

    with FakeKubeAPI(tls=True, tokens={"admin-token": "kubernetes-admin"}) as api:
        api.add_node(f"{CLUSTER}-cp-2", address=CONTROL_PLANE[2])
        yield Kube(api, api.write_kubeconfig(tmp_path / "admin.conf", token="admin-token"))


def _timer_file(account: Account, kube: Kube, tmp_path: Path, **changes: Any) -> Path:
    """cp2's settings as cloud-init writes them (0600), with the Kubernetes API reachable."""
    path = _settings_file(account, 2)
    data = json.loads(path.read_text())
    data.update(kubeconfig=str(kube.kubeconfig), kubectl=KUBECTL, kube_server=kube.api.base_url,
                node_name=f"{CLUSTER}-cp-2",
                log_file=str(tmp_path / "cp2.log"), keepalived_active_command="true", **changes)
    path.write_text(json.dumps(data, indent=2))
    path.chmod(0o600)
    return path


def test_a_rotated_token_is_copied_into_the_settings(account: Account, kube: Kube,
                                                     tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """`provision rotate` writes the new token into Secret kube-system/provision-failover
    and revokes the old one: the next timer pass saves it (atomically, 0600) and uses it
    for its DigitalOcean calls in the same pass."""
    path = _timer_file(account, kube, tmp_path)
    before = json.loads(path.read_text())
    kube.secret(NEW_TOKEN)
    account.fake.tokens = (NEW_TOKEN,)  # the old token no longer works
    _record(account, 2, "MASTER")
    assert failover.main(["--config", str(path), "configure"]) == 0
    after = json.loads(path.read_text())
    assert after == {**before, "token": NEW_TOKEN}
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}")] == []
    assert account.holder() == 2  # the pass went on with the new token
    logged = (tmp_path / "cp2.log").read_text() + capsys.readouterr().err
    assert "new failover token from Secret kube-system/provision-failover, saved" in logged
    assert NEW_TOKEN not in logged and TOKEN not in logged
    # Unchanged Secret: the file is left alone.
    stamp = path.stat().st_mtime_ns, path.stat().st_ino
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp


@pytest.mark.parametrize("value", ["", "two words", "x"])
def test_an_unusable_secret_is_not_copied(account: Account, kube: Kube, tmp_path: Path,
                                          value: str) -> None:
    path = _timer_file(account, kube, tmp_path)
    before = path.read_text()
    kube.secret(value)
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert path.read_text() == before


def test_the_node_carries_its_vrrp_state(account: Account, kube: Kube, tmp_path: Path) -> None:
    """What `status` and `check` read: the state keepalived last notified, keepalived's
    health and when the agent last looked (RFC 3339, UTC)."""
    path = _timer_file(account, kube, tmp_path)
    _record(account, 2, "MASTER")
    started = time.time()
    assert failover.main(["--config", str(path), "configure"]) == 0
    found = kube.annotations(f"{CLUSTER}-cp-2")
    assert found[failover.ANNOTATION_STATE] == "MASTER"
    assert found[failover.ANNOTATION_KEEPALIVED] == "active"
    checked = time.mktime(time.strptime(found[failover.ANNOTATION_CHECKED],
                                        "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert started - 2 <= checked <= time.time() + 1
    # keepalived found dead and not restartable: STOPPED, failed.
    data = json.loads(path.read_text())
    data.update(keepalived_active_command="false", keepalived_restart_command="false")
    path.write_text(json.dumps(data))
    assert failover.main(["--config", str(path), "configure"]) == 1
    found = kube.annotations(f"{CLUSTER}-cp-2")
    assert found[failover.ANNOTATION_STATE] == "STOPPED"
    assert found[failover.ANNOTATION_KEEPALIVED] == "failed"


def test_a_failing_kubernetes_api_never_stops_the_failover_work(
        account: Account, kube: Kube, tmp_path: Path) -> None:
    """The Kubernetes API answers 503, then not at all: the pass still puts the address on
    the MASTER, logs what it could not do and reports success for the failover work."""
    path = _timer_file(account, kube, tmp_path)
    _record(account, 2, "MASTER")
    kube.api.inject_error(503, count=50)
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert account.holder() == 2
    logged = (tmp_path / "cp2.log").read_text()
    assert "token not checked: RuntimeError: reading Secret kube-system/provision-failover" \
        in logged
    assert "state not published: RuntimeError: annotating node test-cp-2" in logged
    kube.api.stop()
    with Cloud(account.path).transaction() as state:  # a partition left it on cp1
        record = state.get("digitalocean_reserved_ip", FLOATING_IP)
        assert record is not None
        record["droplet_id"] = account.ids[1]
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert account.holder() == 2


def test_kubectl_goes_to_this_nodes_own_api_server(account: Account, kube: Kube,
                                                   tmp_path: Path) -> None:
    """admin.conf names the endpoint (the floating IP, which may sit on a dead droplet when
    the pass matters); the agent asks its own API server, at its private address (the
    advertise address, which kubeadm puts in the serving certificate)."""
    import yaml

    config = yaml.safe_load(kube.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = "https://127.0.0.2:9"  # nothing listens
    kube.kubeconfig.write_text(yaml.safe_dump(config))
    settings = account.settings(2, kubeconfig=str(kube.kubeconfig), kubectl=KUBECTL,
                                private_ip="127.0.0.1", api_port=kube.api.port,
                                node_name=f"{CLUSTER}-cp-2")
    _record(account, 2, "BACKUP")
    failover.publish(settings, "active")
    assert kube.annotations(f"{CLUSTER}-cp-2")[failover.ANNOTATION_STATE] == "BACKUP"


# ------------------------------------------------------- two MASTERs, and a dead holder


def _peers_answer(account: Account, number: int, url: str) -> failover.Settings:
    """cp`number`'s settings, with every peer's /readyz at the local stand-in."""
    return account.settings(number, peer_check_url=url + "?peer={ip}")


def test_two_masters_do_not_pass_the_address_back_and_forth(
        account: Account, local_api: Callable[[int], str],
        capsys: pytest.CaptureFixture[str]) -> None:
    """A VRRP split (the tunnel between cp1 and cp2 broken, both still reaching the API):
    both are MASTER. Without damping each timer pass takes the address from the other,
    so the endpoint moves every period. cp1 held it in its MASTER term and cp2 took it: cp1
    finds cp2's API server answering and leaves the address there; one assignment only."""
    url = local_api(200)
    _record(account, 1, "MASTER")
    _record(account, 2, "MASTER")
    holders = []
    for _ in range(3):
        for number in (1, 2):
            failover.reconcile_endpoint(_peers_answer(account, number, url), take=True)
            holders.append(account.holder())
    assert len(account.assigns()) <= 1, f"assignments: {len(account.assigns())}, {holders}"
    assert holders[-1] == holders[-2]
    assert "two masters" in capsys.readouterr().err


def test_a_dead_holder_is_still_taken_from(account: Account,
                                           local_api: Callable[[int], str]) -> None:
    """Issue 14 defect 4 stays repaired: cp1 held the address in its MASTER term, then a
    peer (cp2) got it and died, or was partitioned (its API server no longer answers /readyz
    from here): cp1's pass takes it back."""
    _record(account, 1, "MASTER")
    failover.reconcile_endpoint(_peers_answer(account, 1, local_api(200)), take=True)
    failover.assign_to(account.settings(2), account.ids[2])  # cp2 took it, then went away
    failover.reconcile_endpoint(_peers_answer(account, 1, local_api(503)), take=True)
    assert account.holder() == 1
    # Not answering at all (nothing listens) is the same as not ready.
    failover.assign_to(account.settings(2), account.ids[2])
    closed = local_api(200).rsplit(":", 1)[0] + ":9/readyz"
    failover.reconcile_endpoint(_peers_answer(account, 1, closed), take=True)
    assert account.holder() == 1


def test_a_live_peer_that_held_the_address_before_this_term_is_taken_from(
        account: Account, local_api: Callable[[int], str]) -> None:
    """cp1's keepalived crashed while its API server runs on: cp2 is the MASTER failover
    chose and never held the address in this term, so it takes it though cp1 answers."""
    _record(account, 2, "MASTER")
    failover.reconcile_endpoint(_peers_answer(account, 2, local_api(200)), take=True)
    assert account.holder() == 2


def test_keepalived_conf_is_never_readable_by_others(account: Account, tmp_path: Path) -> None:
    """It holds the VRRP password: created 0600, not written with the umask's mode and
    narrowed afterwards. An audit hook looks at the folder at every audited operation
    (open, chmod, rename ...) while `configure` writes it, under a permissive umask."""
    settings = account.settings(2)
    folder = Path(settings.keepalived_conf).parent
    folder.mkdir(parents=True, exist_ok=True)
    seen: list[str] = []
    watching = [True]

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if not watching[0] or event.startswith(("os.listdir", "os.scandir")):
            return
        watching[0] = False  # the hook's own file system calls are not watched
        try:
            for entry in os.scandir(folder):
                if "keepalived.conf" not in entry.name:
                    continue
                mode = entry.stat().st_mode & 0o777
                if mode & 0o077:
                    seen.append(f"{event}: {entry.name} {oct(mode)}")
        finally:
            watching[0] = True

    old = os.umask(0o022)
    sys.addaudithook(hook)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(failover, "build_tunnel", lambda *args: None)
            assert failover.configure(settings, reload=False)
    finally:
        watching[0] = False  # audit hooks cannot be removed: this one stays off
        os.umask(old)
    assert Path(settings.keepalived_conf).stat().st_mode & 0o777 == 0o600
    assert seen == []


# ------------------------------------------------------- a rotated token is checked first
WRONG_TOKEN = "dop_v1_" + "c" * 64  # well-formed, but DigitalOcean rejects it


def test_a_rejected_token_is_not_adopted(account: Account, kube: Kube, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Whoever can write Secret kube-system/provision-failover (or a mistyped `provision
    rotate`) must not replace a working token with one DigitalOcean refuses (401 on
    GET /v2/reserved_ips/{ip}, digitalocean/openapi reservedIPs_get.yml responses): the
    agent keeps its token, logs the refusal (never the value) and publishes the fingerprint
    of the token it runs with, which `rotate` compares with the new one's."""
    path = _timer_file(account, kube, tmp_path)
    before = path.read_text()
    kube.secret(WRONG_TOKEN)
    _record(account, 2, "MASTER")
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert path.read_text() == before
    assert account.holder() == 2  # failover still works, with the old token
    logged = (tmp_path / "cp2.log").read_text() + capsys.readouterr().err
    assert f"fingerprint {failover.fingerprint(WRONG_TOKEN)}) is refused" in logged
    assert "HTTP 401" in logged
    assert WRONG_TOKEN not in logged and TOKEN not in logged
    published = kube.annotations(f"{CLUSTER}-cp-2")[failover.ANNOTATION_TOKEN]
    assert published == failover.fingerprint(TOKEN) != failover.fingerprint(WRONG_TOKEN)
    assert re.fullmatch(r"[0-9a-f]{12}", published)


def test_an_accepted_token_is_adopted_and_its_fingerprint_published(
        account: Account, kube: Kube, tmp_path: Path) -> None:
    path = _timer_file(account, kube, tmp_path)
    kube.secret(NEW_TOKEN)
    account.fake.tokens = (TOKEN, NEW_TOKEN)  # the new one works, the old not yet revoked
    assert failover.main(["--config", str(path), "configure"]) == 0
    assert json.loads(path.read_text())["token"] == NEW_TOKEN
    assert kube.annotations(f"{CLUSTER}-cp-2")[failover.ANNOTATION_TOKEN] == \
        failover.fingerprint(NEW_TOKEN)
