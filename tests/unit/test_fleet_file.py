"""The fleet file: FILE:LINE: key: problem (hint), exit 2, every problem at once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.errors import ConfigError
from provisioner.fleet.model import Fleet
from provisioner.fleet.reader import is_fleet_file, load_fleet, parse_duration
from tests.support.rendering import ROOT

EXAMPLE = ROOT / "examples" / "fleet"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    for name in ("fra1", "ams3", "nyc3"):
        shutil.copy(EXAMPLE / f"{name}.yaml", tmp_path / f"{name}.yaml")
    return tmp_path


def fleet_text(rollout: str = "  canary: fra1\n  waves: [[ams3], [nyc3]]\n  bake: 10m\n",
               extra: str = "", environments: str = "[fra1.yaml, ams3.yaml, nyc3.yaml]") -> str:
    return (f"fleet: acme\nenvironments: {environments}\nrollout:\n{rollout}{extra}")


def problems(folder: Path, text: str) -> list[str]:
    path = folder / "fleet.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_fleet(path)
    return str(caught.value).splitlines()


def test_the_example_loads_in_rollout_order() -> None:
    fleet = load_fleet(EXAMPLE / "fleet.yaml")
    assert fleet.name == "acme"
    assert [(stage, m.name) for stage, m in fleet.ordered()] == [
        ("canary", "fra1"), ("wave 1", "ams3"), ("wave 2", "nyc3")]
    assert fleet.rollout.bake_seconds == 600
    assert fleet.gate.window_seconds == 300 and fleet.gate.min_requests == 500
    assert {m.env.deploy_policy.timezone for m in fleet.members} == {
        "Europe/Berlin", "Europe/Amsterdam", "America/New_York"}


def test_a_fleet_is_told_from_an_environment_by_its_fleet_key(tmp_path: Path) -> None:
    assert is_fleet_file(EXAMPLE / "fleet.yaml")
    assert not is_fleet_file(EXAMPLE / "fra1.yaml")
    assert not is_fleet_file(tmp_path / "missing.yaml")
    (tmp_path / "list.yaml").write_text("- fleet: acme\n")
    assert not is_fleet_file(tmp_path / "list.yaml")


def test_an_environment_missing_from_the_rollout_is_named_with_its_line(folder: Path) -> None:
    lines = problems(folder, fleet_text("  canary: fra1\n  waves: [[ams3]]\n"))
    assert lines == [f"{folder / 'fleet.yaml'}:5: rollout.waves: nyc3 is in environments but "
                     "not in the rollout (name every environment exactly once: the canary, "
                     "then in a wave)"]


def test_twice_in_the_rollout_and_unknown_names(folder: Path) -> None:
    lines = problems(folder, fleet_text(
        "  canary: fra1\n  waves:\n    - [ams3, fra1]\n    - [nyc3, lon1]\n  bake: 10x\n"))
    text = "\n".join(lines)
    assert ":6: rollout.waves[0][1]: 'fra1' is already in the rollout at rollout.canary" in text
    assert ":7: rollout.waves[1][1]: 'lon1' is not one of the fleet's environments" in text
    assert ":8: rollout.bake: '10x' is not a duration" in text


def test_duplicate_environment_names_and_missing_files(folder: Path) -> None:
    (folder / "copy.yaml").write_text((folder / "fra1.yaml").read_text())
    lines = problems(folder, fleet_text(environments="[fra1.yaml, copy.yaml, ams3.yaml, "
                                        "nyc3.yaml, nope.yaml, fra1.yaml]"))
    text = "\n".join(lines)
    assert ":2: environments[1]: environment name 'fra1' is also the name in fra1.yaml" in text
    assert ":2: environments[4]: 'nope.yaml': no such file" in text
    assert ":2: environments[5]: 'fra1.yaml' is already listed at environments[0]" in text


def test_a_broken_environment_reports_in_its_own_file(folder: Path) -> None:
    env = folder / "ams3.yaml"
    env.write_text(env.read_text().replace("count: 3\n    size", "count: three\n    size"))
    lines = problems(folder, fleet_text())
    assert any(line.startswith(f"{folder / 'fleet.yaml'}:2: environments[1]: 'ams3.yaml' has "
                               "problems") for line in lines)
    assert any(line.startswith(f"{env}:") and "worker_pools[0].count" in line for line in lines)


def test_gate_and_availability_keys_are_checked(folder: Path) -> None:
    lines = problems(folder, fleet_text(extra=(
        "gate:\n  source: prometheus\n  max_5xx_ratio: 2\n  on_breach: panic\n  windw: 5m\n"
        "availability:\n  region_failure_probability: .nan\n")))
    text = "\n".join(lines)
    assert "gate.url: is required with source: prometheus" in text
    assert ":9: gate.max_5xx_ratio: expected a number from 0.0 to 1.0, got '2'" in text
    assert ":10: gate.on_breach: 'panic' is not allowed" in text
    assert ":11: gate.windw: unknown key (did you mean 'window'?)" in text
    assert ":13: availability.region_failure_probability: expected a number" in text


def test_the_cli_says_it_on_one_line_each_and_exits_2(folder: Path) -> None:
    from provisioner.cli.main import cli

    path = folder / "fleet.yaml"
    path.write_text(fleet_text("  canary: fra2\n  waves: [[ams3], [nyc3]]\n"))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert f"{path}:4: rollout.canary: 'fra2' is not one of the fleet's environments" in (
        result.stderr)
    assert "Traceback" not in result.output


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200),
                                                ("10", None), ("1.5h", None)])
def test_durations(text: str, seconds: int | None) -> None:
    assert parse_duration(text) == seconds


def test_a_digitalocean_gate_needs_an_http_load_balancer_in_every_region(folder: Path) -> None:
    """DigitalOcean reports HTTP response codes only for HTTP load balancers (README, "The
    5xx gate and the global load balancer"); a region whose apps have none would never
    gather gate.min_requests, so the fleet file is refused at validate, at gate.source."""
    ams3 = folder / "ams3.yaml"
    ams3.write_text(ams3.read_text().replace("load_balancer: {type: http}",
                                             "load_balancer: {type: network}"))
    gate = "gate:\n  source: digitalocean\n  max_5xx_ratio: 0.01\n"
    assert problems(folder, fleet_text(extra=gate)) == [
        f"{folder / 'fleet.yaml'}:8: gate.source: ams3.yaml: no app has an HTTP load balancer, "
        "and DigitalOcean reports HTTP response codes only for those (the gate would read "
        "nothing) (give an app `expose: load_balancer` and `load_balancer: {type: http}`, or "
        "use source: prometheus, or rollout.bake: 0s)"]
    # Prometheus reads what the user's own metrics say; no bake reads nothing at all.
    assert load_fleet_text(folder, fleet_text(extra="gate:\n  source: prometheus\n  url: "
                                              "http://prom:9090\n  query: x$region\n  "
                                              "total_query: y$region\n"))
    assert load_fleet_text(folder, fleet_text(
        rollout="  canary: fra1\n  waves: [[ams3], [nyc3]]\n  bake: 0s\n", extra=gate))


def load_fleet_text(folder: Path, text: str) -> object:
    path = folder / "fleet.yaml"
    path.write_text(text)
    return load_fleet(path)


def test_a_prometheus_gate_takes_the_total_query_the_gate_needs(folder: Path) -> None:
    """provisioner.gate's Prometheus source counts 5xx with ``query`` and all responses
    with ``total_query`` (gate/source.py; README "The 5xx gate"): the fleet file must
    carry both to it, and refuse a Prometheus gate without the total."""
    from provisioner.fleet import gating

    prometheus = ("gate:\n  source: prometheus\n  url: http://prom:9090\n"
                  "  query: sum(increase(x{code=~\"5..\",r=\"$region\"}[$window]))\n")
    fleet = load_fleet_text(folder, fleet_text(
        extra=prometheus + "  total_query: sum(increase(x{r=\"$region\"}[$window]))\n"))
    assert isinstance(fleet, Fleet)
    source = gating.source(fleet.gate, "")
    assert (source.kind, source.url, source.total_query) == (
        "prometheus", "http://prom:9090", 'sum(increase(x{r="$region"}[$window]))')
    assert "gate.total_query: is required with source: prometheus" in "\n".join(
        problems(folder, fleet_text(extra=prometheus)))


def test_a_prometheus_query_without_region_is_refused_with_several_environments(
        folder: Path) -> None:
    """One query for every region judges the canary on whatever it counts (the whole
    fleet, diluting a canary-only breach): with several environments each query must
    carry ``$region`` (the environment's name, filled in per region by fleet/gating.py)."""
    text = "\n".join(problems(folder, fleet_text(extra=(
        "gate:\n  source: prometheus\n  url: http://prom:9090\n"
        "  query: sum(increase(x{code=~\"5..\"}[$window]))\n"
        "  total_query: sum(increase(x{r=\"$region\"}[$window]))\n"))))
    assert "gate.query: must contain $region with several environments" in text
    assert "gate.total_query" not in text
