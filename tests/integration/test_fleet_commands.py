"""The fleet-wide commands: one loop over the environments, one summary, the worst exit
code; a failure stops the commands that change things, read-only ones report every
environment. Evacuate and restore-traffic: recorded, shown by status."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from provisioner.cli.main import cli
from tests.support import clock
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("fleet", "fra1", "ams3", "nyc3"):
        shutil.copy(ROOT / "examples" / "fleet" / f"{name}.yaml", tmp_path / f"{name}.yaml")
    for name in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("USER", "alice")
    # Saturday 03:00 UTC: every example region's window is closed, whatever the suite's
    # PROVISION_TEST_NOW says (the refusals below depend on it).
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    return tmp_path / "fleet.yaml"


def run(*args: str) -> Result:
    result = CliRunner().invoke(cli, list(args))
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_plan_offline_renders_every_environment_with_one_json_summary(fleet: Path) -> None:
    result = run("plan", str(fleet), "--offline", "--output", "json")
    assert result.exit_code == 0, result.stderr
    summary = json.loads(result.stdout)  # one document: the environments' own inside it
    assert summary["fleet"] == "acme" and summary["exit_code"] == 0
    assert [(e["environment"], e["stage"]) for e in summary["environments"]] == [
        ("fra1", "canary"), ("ams3", "wave 1"), ("nyc3", "wave 2")]
    assert [e["result"]["environment"] for e in summary["environments"]] == [
        "fra1", "ams3", "nyc3"]
    for name in ("fra1", "ams3", "nyc3"):  # each in its own work folder
        assert (fleet.parent / ".provision" / name / "terraform.tfvars.json").is_file() or any(
            (fleet.parent / ".provision" / name).iterdir())


def test_a_read_only_command_reports_every_failure(fleet: Path) -> None:
    result = run("plan", str(fleet))  # online, and no token: each environment fails
    assert result.exit_code == 2
    assert result.stdout.count("exit 2") == 3, result.stdout
    assert "skipped" not in result.stdout


def test_a_changing_command_stops_at_the_first_failure(fleet: Path) -> None:
    # Saturday: fra1's window is closed.
    result = run("up", str(fleet), "--yes")
    assert result.exit_code == 3
    assert "  fra1  canary  refused     exit 3   deploys to fra1 are not allowed now" in (
        result.stdout)
    assert "  ams3  wave 1  skipped" in result.stdout
    assert "fra1 failed: the fleet stops here; 2 environment(s) left untouched" in result.stderr


def test_destroy_goes_in_reverse_order(fleet: Path) -> None:
    result = run("destroy", str(fleet), "--yes")
    assert result.exit_code == 2
    assert result.stdout.startswith("== nyc3 (wave 2): provision destroy nyc3.yaml")
    lines = [line for line in result.stdout.splitlines() if line.startswith("  ")]
    assert [line.split()[0] for line in lines] == ["nyc3", "ams3", "fra1"]
    assert "skipped" in lines[1] and "skipped" in lines[2]


def test_options_of_one_environment_are_refused_with_a_fleet(fleet: Path) -> None:
    result = run("plan", str(fleet), "--workdir", str(fleet.parent / "w"))
    assert result.exit_code == 2
    assert "--workdir names one environment's own" in result.stderr


def test_evacuate_and_restore_are_recorded_and_shown(fleet: Path) -> None:
    result = run("evacuate", str(fleet), "--region", "fra1", "--reason", "INC-77: 5xx")
    assert result.exit_code == 0, result.stderr
    assert "evacuated fra1: INC-77: 5xx" in result.stderr
    assert "no global load balancer yet (`provision up FLEET` makes it once every " \
           "region is up): recorded only" in result.stderr
    status = run("status", str(fleet))
    assert "fra1: EVACUATED since" in status.stdout and "by alice" in status.stdout
    assert "INC-77: 5xx" in status.stdout
    # The last region serving is never taken out.
    assert run("evacuate", str(fleet), "--region", "ams3", "--reason", "x").exit_code == 0
    last = run("evacuate", str(fleet), "--region", "nyc3", "--reason", "x")
    assert last.exit_code == 2 and "would leave no region serving" in last.stderr
    assert run("restore-traffic", str(fleet), "--region", "fra1").exit_code == 0
    data = json.loads(run("status", str(fleet), "--output", "json").stdout)["traffic"]
    assert list(data["evacuated"]) == ["ams3"]
    assert [(r["action"], r["region"]) for r in data["history"]] == [
        ("evacuate", "fra1"), ("evacuate", "ams3"), ("restore", "fra1")]
    record = fleet.parent / ".provision" / "acme.fleet" / "traffic.json"
    assert json.loads(record.read_text())[0]["by"].startswith("alice")


def test_evacuate_names_an_unknown_region_and_needs_a_fleet(fleet: Path) -> None:
    unknown = run("evacuate", str(fleet), "--region", "lon1", "--reason", "x")
    assert unknown.exit_code == 2
    assert "--region lon1: not one of fleet acme's environments (fra1, ams3, nyc3)" in (
        unknown.stderr)
    single = run("evacuate", str(fleet.parent / "fra1.yaml"), "--region", "fra1",
                 "--reason", "x")
    assert single.exit_code == 2 and "is not a fleet file" in single.stderr


def test_check_gives_the_nines_across_regions(fleet: Path) -> None:
    result = run("check", str(fleet), "--output", "json")
    assert result.exit_code == 0, result.stderr
    availability = json.loads(result.stdout)["availability"]
    nines = [row["apps"]["nines"] for row in availability["table"]]
    assert [row["regions"] for row in availability["table"]] == [1, 2, 3]
    assert nines[0] < nines[1] <= nines[2] <= 4.0 + 1e-9, "capped by the global LB's 0.9999"
    # One region: the region (0.001) and its load balancer (0.999) in series with the apps
    # (1e-9), behind the global load balancer: U = 1 - 0.9999 * 0.999 * 0.999 * (1 - 1e-9).
    assert nines[0] == pytest.approx(-math.log10(1 - 0.9999 * 0.999 * 0.999 * (1 - 1e-9)))
    assert round(nines[0], 2) == 2.68 and round(nines[2], 2) == 4.0
    marginal = {row["option"].strip(): row for row in availability["marginal"]}
    assert marginal["+1 region (like fra1)"]["minutes_saved_per_year"] > 1000


def test_up_and_destroy_sum_up_in_one_json_document(fleet: Path) -> None:
    up = run("up", str(fleet), "--yes", "--output", "json")
    summary = json.loads(up.stdout)
    assert up.exit_code == summary["exit_code"] == 3
    assert [(e["environment"], e["status"]) for e in summary["environments"]] == [
        ("fra1", "refused"), ("ams3", "skipped"), ("nyc3", "skipped")]
    destroy = run("destroy", str(fleet), "--yes", "--output", "json")
    assert [e["environment"] for e in json.loads(destroy.stdout)["environments"]] == [
        "nyc3", "ams3", "fra1"]
