"""Hostile checks of `check`'s budget: a plan whose droplets have no known price.

provisioner/cost/prices.json lists 17 sizes; DigitalOcean sells many more (so-, gd-, gpu-
and the premium -amd/-intel slugs), and `validate` accepts any slug. `plan` says what it
left out of its total; `check` compares that partial total with the budget and reports
nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


def test_a_budget_check_does_not_pass_over_unpriced_droplets(tmp_path: Path) -> None:
    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    for pool in doc["worker_pools"]:
        pool["size"] = "so-8vcpu-64gb"  # not in the price table
    doc["budget"] = {"monthly_usd": 400}
    config = tmp_path / "prod.yaml"
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(cli, ["check", str(config), "--output", "json"])
    assert result.exit_code == 0, result.stderr
    budget = [f for f in json.loads(result.stdout)["findings"] if f["subject"] == "budget"]
    # 3..9 droplets of unknown price: the budget cannot be said to hold.
    assert budget, "check is silent although the plan's total leaves out the worker pool"
    text = CliRunner().invoke(cli, ["check", str(config)]).stdout
    assert "so-8vcpu-64gb" in text
