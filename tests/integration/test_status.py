"""`provision status` reads the simulated cloud and the fake cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.sim import simulation

pytestmark = pytest.mark.integration
SECRETS = {"PROD_DATABASE_URL": "postgres://db", "PROD_STRIPE_API_KEY": "sk"}


def test_status_shows_droplets_floating_ip_nodes_apps_and_last_deploy(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        sim.write_config({"deploy_policy": {}})
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        sim.claim_floating_ip("prod-cp-1")  # what the first node does at first boot
        for i in (1, 2, 3):
            kube.add_node(f"prod-general-{i}")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        env = {**sim.env, **SECRETS}
        deployed = CliRunner(env=env).invoke(cli, ["deploy", str(sim.config), "--kubeconfig",
                                                   str(kubeconfig)])
        assert deployed.exit_code == 0, deployed.stderr

        result = CliRunner(env=env).invoke(cli, ["status", str(sim.config), "--kubeconfig",
                                                 str(kubeconfig), "--output", "json"])
        assert result.exit_code == 0, result.stderr
        status = json.loads(result.stdout)
        cloud = status["cloud"]
        assert [d["name"] for d in cloud["droplets"]["control-plane"]] == [
            "prod-cp-1", "prod-cp-2", "prod-cp-3"]
        assert len(cloud["droplets"]["workers"]) == 3
        assert cloud["floating_ip_holder"] == "prod-cp-1"
        assert all(d["private_ip"] for d in cloud["droplets"]["workers"])
        cluster = status["cluster"]
        assert [n["ready"] for n in cluster["nodes"]] == [True, True, True]
        apps = {a["name"]: a for a in cluster["apps"]}
        # api's replicas belong to its autoscaler (none runs in the fake): compare, not count.
        assert apps["api-blue"]["available"] == apps["api-blue"]["desired"] >= 1
        assert apps["elasticsearch"]["desired"] == 3
        assert apps["elasticsearch"]["kind"] == "StatefulSet"
        assert cluster["last_deploy"]["images"]["api"] == "ghcr.io/acme/api:1.4.2"
        assert "@" in cluster["last_deploy"]["by"]

        text = CliRunner(env=env).invoke(cli, ["status", str(sim.config), "--kubeconfig",
                                               str(kubeconfig)])
        assert "prod-cp-1" in text.stdout and "<- floating IP" in text.stdout
        assert "nodes: 3/3 Ready" in text.stdout
        assert "last deploy:" in text.stdout


def test_status_without_token_or_cluster_says_what_is_missing(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        env = {k: v for k, v in sim.env.items() if not k.startswith("DIGITALOCEAN_")}
        env["DIGITALOCEAN_TOKEN"] = ""
        result = CliRunner(env=env).invoke(cli, ["status", str(sim.config)])
        assert result.exit_code == 0, result.stderr
        assert "droplets: no DIGITALOCEAN_TOKEN" in result.stdout
        assert "cluster: no kubeconfig yet" in result.stdout
