"""Terraform's ``-parallelism``, chosen by provision from the number of droplets and
DigitalOcean's 250 requests a minute (provisioner/infra/parallelism.py), overridable, and
on the real Terraform command line (observed at the subprocess boundary, the one place
this suite mocks).

The cost of a droplet create it assumes is the pinned provider's (terraform-provider-
digitalocean v2.34.1, ``resource_droplet.go``: POST, then GET polls from a
``StateChangeConf`` with ``Delay`` 10 s and ``MinTimeout`` 3 s), which the simulated
provider plays (tests/fakes/doprovider/apicalls.py): the two must agree.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.infra import parallelism
from tests.fakes.doprovider import apicalls
from tests.support.sim import simulation

pytestmark = pytest.mark.integration


def test_the_create_cost_is_the_simulated_providers() -> None:
    polls = apicalls.droplet_polls(30)
    assert 1 + len(polls) == parallelism.CREATE_CALLS
    assert polls[-1] == parallelism.CREATE_SECONDS


@pytest.mark.parametrize(("workers", "chosen"), [(3, 10), (50, 21), (500, 21)])
def test_the_choice_for_3_50_and_500_workers(workers: int, chosen: int) -> None:
    """Three control-plane droplets plus the workers; at least Terraform's 10, at most
    what 80 % of 250 requests a minute sustains at 6 requests per 39 s create."""
    assert parallelism.choose(3 + workers) == chosen


def test_the_ceiling_follows_the_limit() -> None:
    assert parallelism.sustained(250) == 21
    assert parallelism.sustained(500) == 43
    assert parallelism.sustained(50) == 10  # never below Terraform's own default


def _terraform_lines(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Every Terraform command line provision starts, as it reaches Popen."""
    seen: list[list[str]] = []
    real = subprocess.Popen

    def recording(args: Any, *rest: Any, **options: Any) -> Any:
        if isinstance(args, list) and "provisioner.infra.embedded" in args:
            seen.append([str(a) for a in args])
        return real(args, *rest, **options)

    monkeypatch.setattr("provisioner.infra.runner.subprocess.Popen", recording)
    return seen


def _flags(lines: list[list[str]], command: str) -> list[str]:
    return [arg for line in lines if command in line for arg in line
            if arg.startswith("-parallelism=")]


def test_plan_and_up_pass_the_choice_and_the_override(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _terraform_lines(monkeypatch)
    with simulation(tmp_path) as sim:
        assert sim.run("plan", str(sim.config)).code == 0
        assert _flags(lines, "plan") == ["-parallelism=10"]  # 3 + 3 droplets

        lines.clear()
        result = sim.run("up", str(sim.config), "--yes", "--until", "infra",
                         "--parallelism", "17")
        assert result.code == 0, result.stderr
        assert _flags(lines, "plan") == ["-parallelism=17"]
        assert _flags(lines, "apply") == ["-parallelism=17"]

        lines.clear()
        sim.env["PROVISION_PARALLELISM"] = "12"
        result = sim.run("destroy", str(sim.config), "--yes", "--force", "--override-window",
                         "--reason", "test")
        assert result.code == 0, result.stderr
        assert _flags(lines, "plan") == ["-parallelism=12"]  # the destroy plan
        assert _flags(lines, "apply") == ["-parallelism=12"]


def test_fifty_workers_plan_at_the_rate_limits_ceiling(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _terraform_lines(monkeypatch)
    with simulation(tmp_path) as sim:
        sim.write_config(edit=lambda doc: doc["worker_pools"][0].update(count=50))
        sim.api.seed(droplet_limit=100)
        result = sim.run("plan", str(sim.config))
        assert result.code == 0, result.stderr
    assert _flags(lines, "plan") == ["-parallelism=21"]


@pytest.mark.parametrize("value", ["0", "-3", "257", "ten", "1e3"])
def test_a_wrong_parallelism_is_a_usage_error(tmp_path: Path, value: str) -> None:
    with simulation(tmp_path) as sim:
        result = sim.run("plan", str(sim.config), "--parallelism", value)
    assert result.code == 2
    assert "--parallelism" in result.stderr and "Traceback" not in result.stderr
