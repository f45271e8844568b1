"""Costs through the real CLI: `plan --offline` (text and JSON), an autoscaled pool's range,
`check` against `budget:` on both sides of it, and a bad `budget:` value.

The production example's figures are computed here by hand from the list prices in
provisioner/cost/prices.json (each written out below), not by calling the code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "production.yaml"

# List prices (provisioner/cost/prices.json), US$ a month.
S_4VCPU_8GB = 48.00  # docs.digitalocean.com/products/droplets/details/pricing
S_2VCPU_4GB = 24.00
LB_NODE = 12.00  # one node of a regional load balancer
VOLUME_GIB = 0.10
SPACES = 5.00  # the subscription, 250 GiB included
ASSIGNED_IP = 0.00  # a reserved IPv4 held by a droplet is free

# examples/production.yaml, by hand:
CONTROL_PLANE = 3 * S_4VCPU_8GB  # control_plane: count 3, size s-4vcpu-8gb -> 144.00
# worker_pools[general]: autoscale {min: 3, max: 9}, s-4vcpu-8gb -> 144.00 .. 432.00
GENERAL_MIN, GENERAL_MAX = 3 * S_4VCPU_8GB, 9 * S_4VCPU_8GB
FLOATING_IP = 1 * ASSIGNED_IP  # endpoint: floating_ip -> 0.00
API_LB = 1 * LB_NODE  # apps[api].expose: load_balancer -> prod.api, one node -> 12.00
ES_VOLUMES = 3 * 50 * VOLUME_GIB  # apps[elasticsearch]: 3 replicas x 50Gi -> 15.00
BACKUPS = SPACES  # backups: bucket acme-etcd-backups -> 5.00
FIXED = CONTROL_PLANE + FLOATING_IP + API_LB + ES_VOLUMES + BACKUPS  # 176.00
TOTAL_MIN = FIXED + GENERAL_MIN  # 144 + 144 + 0 + 12 + 15 + 5 = 320.00
TOTAL_MAX = FIXED + GENERAL_MAX  # 144 + 432 + 0 + 12 + 15 + 5 = 608.00


def _write(tmp_path: Path, edit: Any = None) -> Path:
    doc = yaml.safe_load(EXAMPLE.read_text())
    if edit is not None:
        edit(doc)
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _run(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args))


def _plan_json(config: Path) -> dict[str, Any]:
    result = _run("plan", str(config), "--offline", "--output", "json")
    assert result.exit_code == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_the_production_examples_monthly_cost_is_the_hand_computed_table(
        tmp_path: Path) -> None:
    doc = yaml.safe_load(EXAMPLE.read_text())
    # The figures above assume the example as it stands; a changed example needs new ones.
    assert [(p["name"], p.get("count"), p["autoscale"], p["size"])
            for p in doc["worker_pools"]] == [
        ("general", None, {"min": 3, "max": 9}, "s-4vcpu-8gb")
    ], "examples/production.yaml changed: redo the table"
    assert (round(TOTAL_MIN, 2), round(TOTAL_MAX, 2)) == (320.00, 608.00)

    cost = _plan_json(_write(tmp_path))["cost"]
    monthly = {line["item"]: (line["monthly"]["min"], line["monthly"]["max"])
               for line in cost["lines"]}
    assert monthly == {
        "control plane: 3 x s-4vcpu-8gb": (CONTROL_PLANE, CONTROL_PLANE),
        "worker pool general: 3-9 x s-4vcpu-8gb": (GENERAL_MIN, GENERAL_MAX),
        "API floating IP (reserved IPv4)": (FLOATING_IP, FLOATING_IP),
        "load balancer prod.api": (API_LB, API_LB),
        "volumes elasticsearch/data: 3 x 50 GiB": (pytest.approx(ES_VOLUMES),
                                                   pytest.approx(ES_VOLUMES)),
        "Spaces subscription (backups bucket acme-etcd-backups)": (BACKUPS, BACKUPS),
    }
    assert cost["total"] == {"min": pytest.approx(TOTAL_MIN), "max": pytest.approx(TOTAL_MAX)}
    assert cost["unpriced"] == []
    assert "list prices" in cost["prices"]


def test_offline_plan_text_shows_each_line_and_the_total(tmp_path: Path) -> None:
    result = _run("plan", str(_write(tmp_path)), "--offline")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert "Monthly cost (US$ a month):" in text
    table = text.split("Monthly cost (US$ a month):", 1)[1]
    for item, figure in (("control plane: 3 x s-4vcpu-8gb", "$144.00"),
                         ("worker pool general: 3-9 x s-4vcpu-8gb", "$144.00-$432.00"),
                         ("load balancer prod.api", "$12.00"),
                         ("volumes elasticsearch/data: 3 x 50 GiB", "$15.00"),
                         ("Spaces subscription", "$5.00")):
        line = next(ln for ln in table.splitlines() if item in ln)
        assert line.rstrip().split("#")[0].rstrip().endswith(figure), line
    total = next(ln for ln in table.splitlines() if ln.strip().startswith("total"))
    assert total.split("(")[0].strip().endswith("$320.00-$608.00")  # a range, never one end
    assert "Cost after this plan: $320.00-$608.00 a month" in text


def _autoscaled(doc: dict[str, Any]) -> None:
    doc["worker_pools"].append({"name": "burst", "size": "s-2vcpu-4gb",
                                "autoscale": {"min": 1, "max": 4}})


def test_an_autoscaled_pool_is_costed_at_min_and_at_max(tmp_path: Path) -> None:
    config = _write(tmp_path, _autoscaled)
    cost = _plan_json(config)["cost"]
    burst = next(ln for ln in cost["lines"] if ln["item"].startswith("worker pool burst"))
    assert burst["item"] == "worker pool burst: 1-4 x s-2vcpu-4gb"
    assert burst["monthly"] == {"min": 1 * S_2VCPU_4GB, "max": 4 * S_2VCPU_4GB}
    assert cost["total"] == {"min": pytest.approx(TOTAL_MIN + 1 * S_2VCPU_4GB),   # 344.00
                             "max": pytest.approx(TOTAL_MAX + 4 * S_2VCPU_4GB)}   # 704.00
    text = _run("plan", str(config), "--offline").stdout
    assert "$24.00-$96.00" in text  # the pool's line: never only one end
    assert "$344.00-$704.00" in text


def _budget(amount: Any, autoscaled: bool = False) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["budget"] = {"monthly_usd": amount}
        if autoscaled:
            _autoscaled(doc)
    return edit


def _budget_findings(config: Path) -> list[dict[str, str]]:
    result = _run("check", str(config), "--output", "json")
    assert result.exit_code == 0, result.stderr
    return [f for f in json.loads(result.stdout)["findings"] if f["subject"] == "budget"]


def test_check_is_quiet_at_or_under_the_budget(tmp_path: Path) -> None:
    """The example as written (budget 900): even at max autoscale (608.00) it is under."""
    result = _run("check", str(EXAMPLE), "--output", "json")
    assert result.exit_code == 0, result.stderr
    assert [f for f in json.loads(result.stdout)["findings"] if f["subject"] == "budget"] == []
    assert _budget_findings(_write(tmp_path, _budget(608))) == []  # exactly the plan's max
    text = _run("check", str(_write(tmp_path, _budget(900)))).stdout
    assert ("Monthly cost of the plan: $320.00-$608.00 (at min and at max autoscale) at list "
            "prices; budget $900.00") in text


def test_check_warns_above_the_budget_and_strict_fails_on_it(tmp_path: Path) -> None:
    config = _write(tmp_path, _budget("319.99"))  # under even the floor (320.00)
    [finding] = _budget_findings(config)
    assert finding["severity"] == "high"
    assert ("the plan costs $320.00 a month (up to $608.00), above budget.monthly_usd "
            "$319.99") in finding["problem"]
    text = _run("check", str(config))
    assert text.exit_code == 0  # a finding, as check's others: --strict makes it fail
    assert "[high] budget:" in text.stdout
    assert _run("check", str(config), "--strict").exit_code == 3


def test_only_max_autoscale_above_the_budget_is_a_medium_finding(tmp_path: Path) -> None:
    # With a burst pool: 344.00 at min, 704.00 at max (see above): 400 lies between.
    [finding] = _budget_findings(_write(tmp_path, _budget(400, autoscaled=True)))
    assert finding["severity"] == "medium"
    assert "$344.00-$704.00" in finding["problem"]
    assert _run("check", str(_write(tmp_path, _budget(400, autoscaled=True))),
                "--strict").exit_code == 0
    assert _budget_findings(_write(tmp_path, _budget(704, autoscaled=True))) == []
    # The example alone: 320.00-608.00; a budget of 500 is met at min, not at max.
    [finding] = _budget_findings(_write(tmp_path, _budget(500)))
    assert finding["severity"] == "medium"
    assert "$320.00-$608.00" in finding["problem"]


@pytest.mark.parametrize(("value", "problem"), [
    ("lots", "'lots' is not an amount of dollars"),
    ("-5", "'-5' is not an amount of dollars"),
    ("0", "0 is out of range"),
    ("1.005", "'1.005' is not an amount of dollars"),
    ("[900]", "expected an amount of dollars, got a list"),
])
def test_a_bad_budget_names_file_line_key_and_exits_2(tmp_path: Path, value: str,
                                                     problem: str) -> None:
    config = tmp_path / "prod.yaml"
    text = EXAMPLE.read_text().replace("  monthly_usd: 900", f"  monthly_usd: {value}")
    assert text != EXAMPLE.read_text()
    config.write_text(text)
    line = text.splitlines().index(f"  monthly_usd: {value}") + 1
    for command in ("validate", "check"):
        result = _run(command, str(config))
        assert result.exit_code == 2, result.output
        assert f"{config}:{line}: budget.monthly_usd: {problem} (" in result.stderr
        assert "Traceback" not in result.output


def test_an_unknown_budget_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    config = _write(tmp_path, lambda doc: doc.update(budget={"monthly": 900}))
    result = _run("validate", str(config))
    assert result.exit_code == 2
    assert "budget.monthly: unknown key (did you mean 'monthly_usd'?)" in result.stderr
    assert "budget.monthly_usd: is required" in result.stderr


def test_the_readme_costs_table_shows_the_hand_computed_figures() -> None:
    """README "Costs" shows the same production figures, the autoscaled pool and the total
    as ranges (a table with one end only would understate what the file may run)."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Costs\n", 1)[1].split("\n## ", 1)[0]
    rows = {cells[0]: cells[1:] for line in section.splitlines() if line.startswith("| ")
            for cells in [[c.strip() for c in line.strip("|").split("|")]]}
    assert rows["control plane"] == ["3 x s-4vcpu-8gb", "$48.00", f"${CONTROL_PLANE:.2f}"]
    assert rows["worker pool general (autoscaled)"] == [
        "3-9 x s-4vcpu-8gb", "$48.00", f"${GENERAL_MIN:.2f}-${GENERAL_MAX:.2f}"]
    assert rows["**total** (at min and at max autoscale)"][-1] == (
        f"**${TOTAL_MIN:.2f}-${TOTAL_MAX:.2f}**")
    assert f"budget ${900:.2f}" in section
