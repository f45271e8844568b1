"""Terraform's ``-parallelism``, chosen by provision from the number of droplets and
DigitalOcean's 250 requests a minute (provisioner/infra/parallelism.py), overridable, and
on the real Terraform command line (observed at the subprocess boundary, the one place
this suite mocks).

The cost of a droplet create it assumes is the pinned provider's (terraform-provider-
digitalocean v2.34.1, ``resource_droplet.go``: POST, then GET polls from a
``StateChangeConf`` with ``Delay`` 10 s and ``MinTimeout`` 3 s): its constants live once,
in provisioner/infra/parallelism.py, which the simulated provider
(tests/fakes/doprovider/apicalls.py) also reads; they are checked against the cited lines.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from provisioner.infra import parallelism, retries
from tests.fakes.doprovider import apicalls
from tests.support.rendering import set_workers
from tests.support.sim import simulation

pytestmark = pytest.mark.integration


def test_the_poll_schedule_is_the_pinned_providers() -> None:
    """The schedule's constants against the lines of terraform-provider-digitalocean
    v2.34.1 they come from, written down here from the source (not from the code under
    test): ``digitalocean/droplet/resource_droplet.go`` line 750 ``Delay: 10 *
    time.Second``, line 751 ``MinTimeout: 3 * time.Second``; the vendored plugin SDK's
    ``helper/retry/state.go`` line 106 ``wait = 100 * time.Millisecond``, line 185
    ``wait *= 2``, lines 193-196 bounding it below by MinTimeout and above by
    ``10*time.Second``. The simulated provider plays the same constants (apicalls imports
    them), so this is what holds both to the provider."""
    assert (parallelism.POLL_DELAY, parallelism.POLL_MIN) == (10.0, 3.0)
    assert (parallelism.POLL_FIRST_WAIT, parallelism.POLL_MAX) == (0.1, 10.0)
    # 10 s, then waits of max(0.2, 3) = 3, 6, 10 (12 capped), 10 ...
    assert parallelism.droplet_polls(30) == [10, 13, 19, 29, 39]
    assert (parallelism.CREATE_CALLS, parallelism.CREATE_SECONDS) == (6, 39.0)
    assert apicalls.droplet_polls is parallelism.droplet_polls


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


def _terraform_envs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The environment of every Terraform command provision starts, as it reaches Popen."""
    seen: list[dict[str, str]] = []
    real = subprocess.Popen

    def recording(args: Any, *rest: Any, **options: Any) -> Any:
        if isinstance(args, list) and "provisioner.infra.embedded" in args:
            seen.append(dict(options.get("env") or {}))
        return real(args, *rest, **options)

    monkeypatch.setattr("provisioner.infra.runner.subprocess.Popen", recording)
    return seen


RETRY_NAMES = (retries.RETRY_MAX_ENV, retries.WAIT_MIN_ENV, retries.WAIT_MAX_ENV)


def test_terraform_gets_provisions_retry_settings_unless_the_user_set_them(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The provider reads ``DIGITALOCEAN_HTTP_RETRY_MAX`` / ``_WAIT_MIN`` / ``_WAIT_MAX``
    from its environment (terraform-provider-digitalocean v2.34.1 ``provider.go`` lines
    76-93); tests/contract/test_rate_limits.py shows what the values provision passes
    survive and what the defaults do not."""
    envs = _terraform_envs(monkeypatch)
    with simulation(tmp_path) as sim:
        assert sim.run("plan", str(sim.config)).code == 0
        assert envs and all({k: env.get(k) for k in RETRY_NAMES} == {
            retries.RETRY_MAX_ENV: "8", retries.WAIT_MIN_ENV: "1",
            retries.WAIT_MAX_ENV: "60"} for env in envs)

        envs.clear()
        sim.env[retries.RETRY_MAX_ENV] = "2"
        sim.env[retries.WAIT_MAX_ENV] = "5.5"
        assert sim.run("plan", str(sim.config)).code == 0
        assert envs and all({k: env.get(k) for k in RETRY_NAMES} == {
            retries.RETRY_MAX_ENV: "2", retries.WAIT_MIN_ENV: "1",
            retries.WAIT_MAX_ENV: "5.5"} for env in envs)


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
        sim.write_config(edit=lambda doc: set_workers(doc["worker_pools"][0], 50))
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
