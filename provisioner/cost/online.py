"""Costs with the account: its own droplet prices, and what it runs of the environment."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from provisioner.config.model import Environment
from provisioner.cost.estimate import Estimate, group_sizes, plan_cost, run_rate, sizes_of
from provisioner.cost.prices import list_prices, with_account_sizes


def recorded_floating_ip(env: Environment, infrastructure: Path) -> str | None:
    """The API's reserved IP the last `up` recorded (an unassigned one is billed)."""
    from provisioner.status import read_endpoint

    if env.control_plane.endpoint != "floating_ip":
        return None
    endpoint = read_endpoint(infrastructure).get("endpoint")
    return endpoint if isinstance(endpoint, str) else None


def account_costs(env: Environment, token: str,
                  infrastructure: Path | None = None) -> tuple[Estimate, Estimate]:
    """(the plan's cost, the run rate now), both with the account's /v2/sizes prices."""
    from provisioner.cloud.billable import running, size_prices

    found = running(env, token, recorded_floating_ip(env, infrastructure)
                    if infrastructure else None)
    prices = with_account_sizes(list_prices(), size_prices(token),
                                sizes_of(env) + group_sizes(found.droplets))
    return plan_cost(env, prices, _image_gib(env, token)), run_rate(found, prices)


def _image_gib(env: Environment, token: str) -> Decimal | None:
    """The ``snapshot:<name>`` image's size_gigabytes, chosen as Terraform chooses it."""
    if env.digitalocean.snapshot is None:
        return None
    from provisioner.cloud.image_build import snapshots
    from provisioner.cloud.node_image import snapshot_record
    from provisioner.cloud.sweep import api_manager

    found = snapshot_record(env, snapshots(api_manager(token)))
    size = None if found is None else found.get("size_gigabytes")
    return None if size is None else Decimal(str(size))
