"""`check --online` compares the run rate with the budget: a droplet of a size neither the
account's /v2/sizes nor prices.json prices must be named, not silently left out."""

from __future__ import annotations

from decimal import Decimal

from provisioner.config.model import Budget
from provisioner.cost.estimate import Running, budget_findings, run_rate
from provisioner.cost.prices import list_prices


def test_the_run_rate_names_droplets_it_cannot_price() -> None:
    running = Running(droplets=(("worker", "prod-general-1", "s-2vcpu-4gb"),
                                ("worker", "prod-general-as-0a1b2c3d", "so-8vcpu-64gb")))
    found = budget_findings(Budget(monthly_usd=Decimal(400)),
                            running=run_rate(running, list_prices()))
    assert [f["severity"] for f in found] == ["medium"]
    assert "so-8vcpu-64gb" in found[0]["problem"] and "$400.00" in found[0]["problem"]


def test_everything_priced_under_the_budget_is_quiet() -> None:
    running = Running(droplets=(("worker", "prod-general-1", "s-2vcpu-4gb"),))
    assert budget_findings(Budget(monthly_usd=Decimal(400)),
                           running=run_rate(running, list_prices())) == []
