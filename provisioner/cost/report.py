"""The cost parts of `plan` and `check`, as JSON and as text, without Click.

`plan` shows what the environment will cost a month and the change from what runs now, at
the account's own droplet prices (`plan --offline`: list prices, no "before"); `check` the
plan's cost at list prices against ``budget:`` and, online, the run rate. The commands
(cli/plan.py, cli/check.py) only call these and print what they return.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from provisioner.config.model import Environment
from provisioner.cost import estimate
from provisioner.cost.prices import list_prices
from provisioner.cost.text import format_change, format_cost
from provisioner.errors import ProvisionError

Json = dict[str, Any]
# The keys `plan --output json` carries (both None when the account did not answer).
NOT_SHOWN: Json = {"cost": None, "cost_change": None}


def plan_costs(env: Environment, token: str, infrastructure: Path) -> tuple[Json, str | None]:
    """`plan`'s cost keys at the account's prices, and a warning when they are not shown.

    Informative: an account that does not answer here (after the plan read it) costs the
    figures, not the plan; they are left out with a warning.
    """
    from provisioner.cost.online import account_costs

    try:
        planned, running = account_costs(env, token, infrastructure)
    except ProvisionError as e:
        return dict(NOT_SHOWN), f"warning: monthly cost not shown: {e}"
    return {"cost": planned.as_json(), "cost_change": estimate.change(running, planned)}, None


def plan_costs_text(costs: Json) -> str:
    """`plan`'s cost table and change ("" when not shown)."""
    if costs["cost"] is None:
        return ""
    return ("\n" + format_cost(costs["cost"], "Monthly cost after this plan")
            + format_change(costs["cost_change"]))


def offline_plan_costs(env: Environment) -> Json:
    """`plan --offline`'s cost keys: list prices, and no "before" (no API call)."""
    cost = estimate.plan_cost(env, list_prices())
    return {"cost": cost.as_json(), "cost_change": estimate.change(None, cost)}


def offline_plan_costs_text(costs: Json) -> str:
    return ("\n" + format_cost(costs["cost"], "Monthly cost")
            + format_change(costs["cost_change"]).rstrip("\n")
            + " (offline: what runs now is not read; `provision plan` without "
              "--offline compares)\n")


def check_costs(env: Environment) -> tuple[Json, list[dict[str, str]]]:
    """`check`'s ``cost`` (the plan's at list prices, with the budget) and its budget
    findings, from one estimate."""
    planned = estimate.plan_cost(env, list_prices())
    cost = planned.as_json()
    cost["budget"] = float(env.budget.monthly_usd) if env.budget else None
    return cost, estimate.budget_findings(env.budget, planned)


def run_rate(env: Environment, token: str, infrastructure: Path
             ) -> tuple[Json, list[dict[str, str]]]:
    """`check --online`: the run rate at the account's prices and its budget finding."""
    from provisioner.cost.online import account_costs

    _planned, running = account_costs(env, token, infrastructure)
    return running.as_json(), estimate.budget_findings(env.budget, running=running)


def check_cost_line(cost: Json, run_rate_json: Json | None) -> str:
    """`check`'s text: the plan's monthly cost, the budget, and the run rate when read."""
    low, high = cost["total"]["min"], cost["total"]["max"]
    text = f"\nMonthly cost of the plan: ${low:,.2f}" + (
        f"-${high:,.2f} (at min and at max autoscale)" if high != low else "") + (
        " at list prices")
    if cost["budget"] is not None:
        text += f"; budget ${cost['budget']:,.2f}"
    if run_rate_json is not None:
        text += (f"\nRun rate now: ${run_rate_json['total']['min']:,.2f} a month at the "
                 "account's prices")
    return text + "\n"
