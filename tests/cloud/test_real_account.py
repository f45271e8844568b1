"""Acceptance on a real DigitalOcean account (opt-in: costs money, needs the internet).

    PROVISION_CLOUD_TEST_TOKEN=dop_v1_... python3 -m pytest tests/cloud -s -p no:cacheprovider

Skipped unless PROVISION_CLOUD_TEST_TOKEN is set (a read/write token of an account kept
for this; nothing else should run there while it does). Optional: ..._REGION (fra1),
..._SSH_KEY (a key fingerprint in the account; the first key otherwise), ..._CIDR (the
network the API and SSH are opened to; 0.0.0.0/0 otherwise, for the run's half hour).

One environment, `acc-<random>`: 3 control planes and 1 worker (s-2vcpu-4gb), one app
behind a DigitalOcean load balancer, one with a 1 GiB volume claim. Stages: up (infra,
cluster with the platform gate, apps), status, deploy, a request through the load
balancer, the failover drill (power off the droplet holding the floating IP; the API must
answer through the floating IP again, from another droplet, within FAILOVER_TARGET), status,
then always destroy and the leftover check (tests/cloud/acceptance.py). Per-stage times
are printed (use -s to see them as they come).
"""

from __future__ import annotations

import json
import os
import secrets
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.cloud import sweep
from provisioner.config.load import load_environment
from tests.cloud.acceptance import (
    ROOT,
    TOKEN_VARIABLE,
    Stopwatch,
    account_ids,
    environment_document,
    leftovers,
    run_stages,
    wait_until,
)

FAILOVER_TARGET = 180.0  # keepalived notices in seconds; the reserved IP moves in ~10-30 s
LB_TARGET = 600.0  # a new DigitalOcean load balancer takes a few minutes to answer

pytestmark = pytest.mark.skipif(
    not os.environ.get(TOKEN_VARIABLE, "").strip(),
    reason=f"set {TOKEN_VARIABLE} to run the acceptance run on a real DigitalOcean account "
           "(it creates billed resources; see README, 'Acceptance on a real account')")


def _get(url: str, timeout: float = 10) -> int:
    """Status of a GET (any HTTP answer counts; TLS not verified: the drill asks whether
    the API answers at the address, the cluster CA is checked by provision itself)."""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=timeout, context=context) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return int(e.code)


def _api(token: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    request = urllib.request.Request(
        f"https://api.digitalocean.com/v2/{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read().decode()
    return json.loads(text) if text.strip() else {}


def test_a_real_account_from_up_to_nothing_left(tmp_path: Path) -> None:
    token = os.environ[TOKEN_VARIABLE].strip()
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGITALOCEAN_")}
    env.update(DIGITALOCEAN_TOKEN=token, DIGITALOCEAN_ACCESS_TOKEN=token,
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    os.environ.pop("DIGITALOCEAN_END_POINT", None)  # python-digitalocean: the real API
    os.environ["DIGITALOCEAN_ACCESS_TOKEN"] = token

    keys = [os.environ.get("PROVISION_CLOUD_TEST_SSH_KEY", "")]
    if not keys[0]:
        keys = [_api(token, "GET", "account/keys")["ssh_keys"][0]["fingerprint"]]
    name = f"acc-{secrets.token_hex(3)}"
    config = tmp_path / f"{name}.yaml"
    config.write_text(yaml.safe_dump(environment_document(
        name, os.environ.get("PROVISION_CLOUD_TEST_REGION", "fra1"), keys,
        [os.environ.get("PROVISION_CLOUD_TEST_CIDR", "0.0.0.0/0")]), sort_keys=False))
    environment = load_environment(config)
    kubeconfig = tmp_path / ".provision" / name / "kubeconfig"
    found: dict[str, Any] = {}
    baseline = account_ids(token)

    def provision(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=tmp_path,
                              env=env, capture_output=True, text=True, timeout=3600)
        print(done.stderr, end="", flush=True)
        assert done.returncode == 0, f"provision {args[0]} exited {done.returncode}"
        return done.stdout

    def status(after_failover: bool = False) -> None:
        shown = json.loads(provision("status", str(config), "--kubeconfig", str(kubeconfig),
                                     "--output", "json"))
        cloud = shown["cloud"]
        assert len(cloud["droplets"]["control-plane"]) == 3
        assert len(cloud["droplets"]["workers"]) == 1
        assert cloud["floating_ip_holder"], "nobody holds the floating IP"
        ready = [n["ready"] for n in shown["cluster"]["nodes"]]
        if after_failover:  # the powered-off control plane is NotReady, the rest serve
            assert cloud["floating_ip_holder"] != found["holder"] and ready.count(False) <= 1
            return
        assert all(ready)
        found.update(floating_ip=cloud["floating_ip"], holder=cloud["floating_ip_holder"],
                     droplets={d["name"]: d["id"] for d in cloud["droplets"]["control-plane"]})

    def request_through_the_load_balancer() -> None:
        (lb_id, _), *_ = sweep.leftovers(environment, token).load_balancers
        lb = _api(token, "GET", f"load_balancers/{lb_id}")["load_balancer"]
        waited = wait_until(lambda: bool(lb.get("ip")) and _get(f"http://{lb['ip']}/") == 200,
                            LB_TARGET, interval=10)
        print(f"load balancer {lb['ip']} answered 200 after {waited:.0f}s")

    def failover_drill() -> None:
        victim = int(found["droplets"][found["holder"]])
        address = found["floating_ip"]
        _api(token, "POST", f"droplets/{victim}/actions", {"type": "power_off"})

        def answered_elsewhere() -> bool:
            held = _api(token, "GET", f"reserved_ips/{address}")["reserved_ip"]["droplet"]
            return (held is not None and int(held["id"]) != victim
                    and _get(f"https://{address}:6443/readyz", timeout=5) in (200, 401, 403))

        waited = wait_until(answered_elsewhere, FAILOVER_TARGET, interval=3)
        print(f"failover: the API answered through {address} after {waited:.0f}s "
              f"(target {FAILOVER_TARGET:.0f}s)")

    def destroy() -> None:
        provision("destroy", str(config), "--yes", "--force", "--kubeconfig", str(kubeconfig))

    def sweep_what_is_left() -> None:
        if sweep.leftovers(environment, token, found.get("floating_ip")).describe():
            provision("destroy", str(config), "--yes", "--force", "--sweep")

    run_stages(
        # A scoped failover token when the runner has one (PROVISION_FAILOVER_TOKEN); a
        # disposable test account may lend the agent its full token instead.
        steps=[("up", lambda: print(provision("up", str(config), "--yes", *(
                   [] if env.get("PROVISION_FAILOVER_TOKEN") else ["--allow-full-token"])),
                   end="")),
               ("status", status),
               ("deploy", lambda: print(provision("deploy", str(config), "--kubeconfig",
                                                  str(kubeconfig)), end="")),
               ("request through the load balancer", request_through_the_load_balancer),
               ("failover drill", failover_drill),
               ("status after failover", lambda: status(after_failover=True))],
        teardown=[("destroy", destroy), ("sweep", sweep_what_is_left)],
        leftovers=lambda: leftovers(token, environment, baseline, found.get("floating_ip")),
        watch=Stopwatch())
