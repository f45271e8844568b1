"""The failover agent's token: a scoped one, or the operator's explicit consent.

The agent (provisioner/agents/failover.py) reads its token from the control-plane nodes'
user-data, which DigitalOcean keeps for the droplet's life and serves to root on the node
(README, "Secrets and the threat model"). DigitalOcean's custom-scoped tokens (API >
Tokens > Custom Scopes; scopes named `<resource>:<action>`) let the agent have only what it
calls: `reserved_ip:read`, `reserved_ip:update` and `droplet:read`. `up` and `plan` refuse
to put the full read/write token there unless `--allow-full-token` says so.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.pipeline import infra_stage
from provisioner.pipeline.infra_stage import FullTokenRefused
from provisioner.pipeline.prepare import prepare
from tests.support.rendering import ROOT
from tests.support.sim import FAILOVER_TOKEN, TOKEN, Simulation, simulation

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        yield running


def _without_scoped_token(sim: Simulation) -> None:
    sim.env.pop("PROVISION_FAILOVER_TOKEN", None)


def test_plan_and_up_refuse_without_a_scoped_token(sim: Simulation) -> None:
    _without_scoped_token(sim)
    config = str(sim.config)
    for args in (("plan", config), ("up", config, "--yes", "--until", "infra")):
        result = sim.run(*args)
        assert result.code == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert "PROVISION_FAILOVER_TOKEN is not set" in lines[0]
        assert "reserved_ip:read, reserved_ip:update and droplet:read" in lines[0]
        assert "--allow-full-token" in lines[0]
        assert "Traceback" not in result.stderr + result.stdout
    assert sim.droplet_names() == [], "refused before anything was created"


def test_plan_with_a_scoped_token_goes_ahead_quietly(sim: Simulation) -> None:
    result = sim.run("plan", str(sim.config))
    assert result.code == 0, result.stderr
    assert "--allow-full-token" not in result.stderr
    assert "PROVISION_FAILOVER_TOKEN" not in result.stderr


def test_allow_full_token_goes_ahead_and_says_so(sim: Simulation) -> None:
    _without_scoped_token(sim)
    result = sim.run("plan", str(sim.config), "--allow-full-token")
    assert result.code == 0, result.stderr
    assert ("warning: PROVISION_FAILOVER_TOKEN is not set; --allow-full-token: the "
            "control-plane nodes' user-data carries the full API token") in result.stderr


def test_the_token_terraform_receives_is_the_chosen_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    prepared = prepare(config, None)
    said: list[str] = []

    def secrets(failover: str) -> dict[str, str]:
        env = infra_stage.terraform_env(prepared, TOKEN, failover)
        return dict(json.loads(env["TF_VAR_bootstrap_secrets"]))

    monkeypatch.setenv("PROVISION_FAILOVER_TOKEN", FAILOVER_TOKEN)
    chosen = infra_stage.failover_token(prepared, TOKEN, False, said.append)
    assert chosen == FAILOVER_TOKEN and not said
    assert secrets(chosen)["failover_token"] == FAILOVER_TOKEN

    monkeypatch.delenv("PROVISION_FAILOVER_TOKEN")
    with pytest.raises(FullTokenRefused):
        infra_stage.failover_token(prepared, TOKEN, False, said.append)
    chosen = infra_stage.failover_token(prepared, TOKEN, True, said.append)
    assert chosen == TOKEN and len(said) == 1
    assert secrets(chosen)["failover_token"] == TOKEN


def test_no_floating_ip_no_agent_no_refusal(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """With `endpoint: load_balancer` no node runs the agent: nothing to refuse."""
    import yaml

    doc = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    doc["control_plane"]["endpoint"] = "load_balancer"
    doc["access"]["api_cidrs"] = ["0.0.0.0/0"]
    doc["apps"] = doc["apps"][1:]  # `api` behind a load balancer would take the API's name
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    monkeypatch.delenv("PROVISION_FAILOVER_TOKEN", raising=False)
    prepared = prepare(config, None)
    assert prepared.env.control_plane.endpoint == "load_balancer"
    assert infra_stage.failover_token(prepared, TOKEN, False, lambda m: None) == TOKEN
