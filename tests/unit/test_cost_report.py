"""The cost work of `plan` and `check` lives in provisioner/cost/report.py, Click-free; the
commands only call it. `check` estimates the plan's cost once, for its figure and for its
budget finding alike (two estimates could disagree, and each one is work)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.cost import estimate, report
from tests.support.rendering import ROOT, example

EXAMPLE = ROOT / "examples" / "production.yaml"


def test_check_estimates_the_plan_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real = estimate.plan_cost

    def counted(*args: Any, **kwargs: Any) -> estimate.Estimate:
        calls.append("plan_cost")
        return real(*args, **kwargs)

    monkeypatch.setattr(estimate, "plan_cost", counted)
    result = CliRunner().invoke(cli, ["check", str(EXAMPLE), "--output", "json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["cost"]["total"] == {"min": 320.0, "max": 608.0}
    assert calls == ["plan_cost"]


@pytest.mark.parametrize("command", ["plan.py", "check.py"])
def test_the_commands_reach_the_cost_package_only_through_report(command: str) -> None:
    tree = ast.parse((ROOT / "provisioner" / "cli" / command).read_text())
    used = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
            and (node.module or "").startswith("provisioner.cost")}
    assert used == {"provisioner.cost.report"}


def test_report_is_click_free() -> None:
    tree = ast.parse(Path(report.__file__).read_text())
    names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not {n for n in names if n.split(".")[0] == "click" or n.startswith(
        "provisioner.cli")}


def test_check_costs_and_its_line_from_one_estimate() -> None:
    cost, findings = report.check_costs(example("production"))
    assert (cost["total"], cost["budget"], findings) == (
        {"min": 320.0, "max": 608.0}, 900.0, [])  # examples/production.yaml: budget 900
    assert report.check_cost_line(cost, None) == (
        "\nMonthly cost of the plan: $320.00-$608.00 (at min and at max autoscale) at list "
        "prices; budget $900.00\n")
