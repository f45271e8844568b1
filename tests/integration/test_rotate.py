"""`provision rotate` against the fake Kubernetes API and the fake DigitalOcean API.

The failover agents are played by a thread that does what the agent's contract says
(provisioner/agents/failover.py, tested on its own in tests/unit/test_failover_agent.py:
/etc/provision/failover.json follows Secret kube-system/provision-failover key `token` only
once the DigitalOcean API accepts that token; each pass stamps
`provision.dev/failover-checked-at` and the fingerprint of the token it runs with,
`provision.dev/failover-token`, on its own Node): it watches the Secret over HTTP and, once
it changes, asks the fake DigitalOcean API with the new token and annotates the nodes it plays.

The cloud controller manager and the CSI controller read kube-system/digitalocean as an
environment variable (digitalocean-cloud-controller-manager
releases/digitalocean-cloud-controller-manager/v0.1.68.yml: DO_ACCESS_TOKEN;
csi-digitalocean deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml:
csi-do-controller's DIGITALOCEAN_ACCESS_TOKEN), which a running container never sees
change: rotate must roll them, as `kubectl rollout restart` does (kubernetes/kubernetes
staging/src/k8s.io/kubectl/pkg/polymorphichelpers/objectrestarter.go at commit
78fc8e44052f sets kubectl.kubernetes.io/restartedAt on the pod template of a Deployment,
DaemonSet or StatefulSet).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner.agents.failover import ANNOTATION_TOKEN, fingerprint
from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.clock import pinned
from tests.support.sim import FAILOVER_TOKEN, TOKEN, Simulation, simulation

pytestmark = pytest.mark.integration
CONTROLLERS = ("prod-cp-1", "prod-cp-2", "prod-cp-3")
OLD_CLOUD_TOKEN = "old-leaked-token"


def _secret(kube: FakeKubeAPI, name: str, key: str) -> str | None:
    found = kube.get("v1", "Secret", name, "kube-system")
    if found is None:
        return None
    return base64.b64decode(found["data"][key]).decode()


def _cluster(sim: Simulation, kube: FakeKubeAPI) -> None:
    """Nodes, the token Secret as `up` left it, and the token's two readers."""
    # The failover agents' token is a second token of the same account (custom scopes).
    sim.api.tokens = (TOKEN, FAILOVER_TOKEN)
    for name in CONTROLLERS:
        kube.add_node(name, control_plane=True)
    kube.add_node("prod-general-1")
    kube.create({"apiVersion": "v1", "kind": "Secret",
                 "metadata": {"name": "digitalocean", "namespace": "kube-system"},
                 "stringData": {"access-token": OLD_CLOUD_TOKEN}})
    template = {"metadata": {"labels": {"app": "x"}},
                "spec": {"containers": [{"name": "c", "image": "registry.example/ccm:1"}]}}
    for kind, name in (("Deployment", "digitalocean-cloud-controller-manager"),
                       ("StatefulSet", "csi-do-controller")):
        kube.create({"apiVersion": "apps/v1", "kind": kind,
                     "metadata": {"name": name, "namespace": "kube-system"},
                     "spec": {"selector": {"matchLabels": {"app": "x"}}, "template": template,
                              **({"serviceName": "csi-do"} if kind == "StatefulSet" else {})}})
    sim.workdir.mkdir(parents=True, exist_ok=True)
    kube.write_kubeconfig(sim.workdir / "kubeconfig")


OLD_FAILOVER_TOKEN = "failover-token-from-up"


def _accepted(sim: Simulation, token: str) -> bool:
    """What the agent asks before adopting a token: a read with it (HTTP 200, not 401)."""
    request = urllib.request.Request(f"{sim.api.endpoint.rstrip('/')}/reserved_ips",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError:
        return False


@contextmanager
def agents(kube: FakeKubeAPI, playing: tuple[str, ...], seen: list[str], sim: Simulation,
           refusing: tuple[str, ...] = ()) -> Iterator[None]:
    """Failover agents on ``playing``: once the Secret holds a token, a later pass, which
    runs with the new token if the API accepts it (and the node is not in ``refusing``,
    standing for an agent whose API read failed), else with the old one."""
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.1):
            token = _secret(kube, "provision-failover", "token")
            if token is None:
                continue
            seen.append(token)
            stamp = (pinned() + dt.timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
            works = _accepted(sim, token)
            for name in playing:
                running = token if works and name not in refusing else OLD_FAILOVER_TOKEN
                body = {"metadata": {"annotations": {
                    "provision.dev/failover-checked-at": stamp,
                    ANNOTATION_TOKEN: fingerprint(running),
                    "provision.dev/keepalived": "active"}}}
                request = urllib.request.Request(
                    f"{kube.base_url}/api/v1/nodes/{name}", method="PATCH",
                    data=json.dumps(body).encode(),
                    headers={"Content-Type": "application/merge-patch+json"})
                with urllib.request.urlopen(request, timeout=10):
                    pass
            return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _restarted(kube: FakeKubeAPI) -> dict[str, Any]:
    found = {}
    for kind, name in (("Deployment", "digitalocean-cloud-controller-manager"),
                       ("StatefulSet", "csi-do-controller")):
        obj = kube.get("apps/v1", kind, name, "kube-system") or {}
        found[name] = ((obj["spec"]["template"].get("metadata") or {}).get("annotations")
                       or {}).get("kubectl.kubernetes.io/restartedAt")
    return found


def _run(sim: Simulation, *args: str, env: dict[str, str] | None = None) -> Any:
    return CliRunner(env=env or sim.env).invoke(cli, ["rotate", str(sim.config), *args])


def test_rotate_renews_both_tokens_and_waits_for_every_agent(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        seen: list[str] = []
        with agents(kube, CONTROLLERS, seen, sim):
            result = _run(sim, "--wait", "60")
        assert result.exit_code == 0, result.stderr
        # The cluster's cloud token is now the exported one; its readers rolled.
        assert _secret(kube, "digitalocean", "access-token") == TOKEN
        assert set(_restarted(kube).values()) == {pinned().strftime("%Y-%m-%dT%H:%M:%SZ")}
        assert _secret(kube, "provision-failover", "token") == FAILOVER_TOKEN
        assert seen == [FAILOVER_TOKEN]
        output = result.stdout + result.stderr
        assert "cloud-token" in output and "failover-token" in output
        for secret in (TOKEN, FAILOVER_TOKEN, OLD_CLOUD_TOKEN):
            assert secret not in output
        # Droplets are not touched: rotate does not run Terraform.
        assert not (sim.workdir / "state" / "terraform.tfstate").exists()
        # Fresh join credentials: a new bootstrap token Secret, the work folder's copy
        # renewed, neither printed.
        saved = json.loads((sim.workdir / "secrets" / "bootstrap.json").read_text())
        token_id, token_secret = saved["bootstrap_token"].split(".")
        assert _secret(kube, f"bootstrap-token-{token_id}", "token-secret") == token_secret
        assert saved["bootstrap_token"] not in output


def test_rotate_names_the_nodes_whose_agent_did_not_confirm(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        with agents(kube, CONTROLLERS[:2], [], sim):
            result = _run(sim, "--only", "failover-token", "--wait", "3")
        assert result.exit_code == 1, result.stderr
        assert "prod-cp-3 do not run with it" in result.stderr
        assert "prod-cp-1" not in result.stderr.split("agents on", 1)[1].split("do not")[0]
        # Only what was asked for: the cloud token and its readers are as they were.
        assert _secret(kube, "digitalocean", "access-token") == OLD_CLOUD_TOKEN
        assert set(_restarted(kube).values()) == {None}


def test_a_pass_that_kept_the_old_token_is_not_a_confirmation(tmp_path: Path) -> None:
    """An agent whose pass ran after the rotation but kept its old token (it could not
    read the API with the new one) stamped a fresh failover-checked-at: only the token
    fingerprint it publishes tells rotate that it does not run with the new token."""
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        with agents(kube, CONTROLLERS, [], sim, refusing=("prod-cp-2",)):
            result = _run(sim, "--only", "failover-token", "--wait", "3")
        assert result.exit_code == 1, result.stderr
        assert "agents on prod-cp-2 do not run with it" in result.stderr
        for name in CONTROLLERS:
            notes = (kube.get("v1", "Node", name) or {})["metadata"]["annotations"]
            assert "provision.dev/failover-checked-at" in notes  # every one did a pass


def test_a_rejected_failover_token_changes_nothing(tmp_path: Path) -> None:
    """A mistyped PROVISION_FAILOVER_TOKEN (well-formed, but the API answers 401) is
    refused before the Secret is written, as a rejected cloud token is."""
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        wrong = "dop_v1_" + "c" * 64
        env = {**sim.env, "PROVISION_FAILOVER_TOKEN": wrong}
        with agents(kube, CONTROLLERS, [], sim):
            result = _run(sim, "--only", "failover-token", "--wait", "5", env=env)
        assert result.exit_code == 1, result.stderr
        assert "rejects the token in PROVISION_FAILOVER_TOKEN (401): nothing was changed" \
            in result.stderr
        assert wrong not in result.stderr + result.stdout
        assert kube.get("v1", "Secret", "provision-failover", "kube-system") is None


def test_a_rejected_cloud_token_changes_nothing(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        env = {**sim.env, "DIGITALOCEAN_TOKEN": "revoked-token"}
        result = _run(sim, "--only", "cloud-token", env=env)
        assert result.exit_code == 1, result.stderr
        assert "rejects the token in DIGITALOCEAN_TOKEN (401): nothing was changed" \
            in result.stderr
        assert "revoked-token" not in result.stderr + result.stdout
        assert _secret(kube, "digitalocean", "access-token") == OLD_CLOUD_TOKEN
        assert set(_restarted(kube).values()) == {None}


def test_rotate_refuses_what_does_not_apply_or_is_missing(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        # No cluster yet: nothing to rotate.
        result = _run(sim)
        assert result.exit_code == 2
        assert "no kubeconfig at" in result.stderr and "provision up" in result.stderr

        _cluster(sim, kube)
        env = {k: v for k, v in sim.env.items() if k != "PROVISION_FAILOVER_TOKEN"}
        result = _run(sim, env=env)
        assert result.exit_code == 2
        assert "PROVISION_FAILOVER_TOKEN is not set" in result.stderr
        assert _secret(kube, "digitalocean", "access-token") == OLD_CLOUD_TOKEN

        # A load balancer endpoint runs no failover agent.
        def balanced(doc: dict[str, Any]) -> None:
            doc["control_plane"]["endpoint"] = "load_balancer"
            doc["access"]["api_cidrs"] = ["0.0.0.0/0"]  # what a load balancer endpoint needs
            for app in doc["apps"]:  # the API's load balancer takes the name `prod-api`
                app["name"] = f"{app['name']}-app"

        sim.write_config(edit=balanced)
        result = _run(sim, "--only", "failover-token")
        assert result.exit_code == 2
        assert "runs no failover agent" in result.stderr
        result = _run(sim, "--only", "cloud-token", env=env)
        assert result.exit_code == 0, result.stderr
        assert kube.get("v1", "Secret", "provision-failover", "kube-system") is None


def test_rotate_waits_for_another_run_holding_the_work_folder(tmp_path: Path) -> None:
    from provisioner.config import load_environment
    from provisioner.workdir import Workdir

    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        _cluster(sim, kube)
        work = Workdir.for_config(sim.config, load_environment(sim.config), None)
        with work.locked("deploy"):
            result = _run(sim, "--only", "cloud-token")
        assert result.exit_code == 3, result.stderr
        assert _secret(kube, "digitalocean", "access-token") == OLD_CLOUD_TOKEN
        assert yaml.safe_load((sim.workdir / "kubeconfig").read_text())


def test_rotate_waits_five_periods_of_the_agents_timer() -> None:
    """The period is set once, in the timer unit the nodes run (OnUnitActiveSec=30s in
    templates/systemd/provision-failover.timer.j2); rotate's default wait and check's
    staleness follow it (it was 60 s in their comments and figures after the unit changed
    to 30 s)."""
    from provisioner.analysis import live
    from provisioner.pipeline import rotate

    assert live.timer_period() == 30.0
    assert rotate.confirm_wait() == pytest.approx(150.0)
    result = CliRunner().invoke(cli, ["rotate", "--help"])
    assert "[default: five periods of the agent's timer]" in " ".join(result.output.split())


def test_an_unreadable_timer_template_fails_rotate_alone(tmp_path: Path) -> None:
    """The wait's default is read from the timer template when rotate runs: with a
    templates folder that lacks the unit, other commands still work and rotate stops with
    one line (exit 2), not a traceback at import (the CLI imports every command to
    register it)."""
    import subprocess
    import sys

    from tests.support.rendering import ROOT

    (tmp_path / "templates").mkdir()
    probe = (
        "import sys, pathlib\n"
        "import provisioner.resources as r\n"
        f"r.data_dir = lambda name: pathlib.Path({str(tmp_path)!r}) / name\n"
        "from provisioner.pipeline import rotate\n"
        "from provisioner.errors import ProvisionError\n"
        "from provisioner.cli.main import cli\n"
        "try:\n"
        "    rotate.confirm_wait()\n"
        "except ProvisionError as e:\n"
        "    print('error:', e)\n"
        "cli(['--help'], standalone_mode=False)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: cannot read templates/systemd/provision-failover.timer.j2" in result.stdout
    assert "rotate " in result.stdout  # the --help that followed lists the commands
