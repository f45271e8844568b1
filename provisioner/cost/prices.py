"""Prices: the bundled list-price table, and the account's own droplet prices over it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from importlib import resources
from typing import Any


@dataclass(frozen=True)
class Prices:
    """Monthly US-dollar prices of what an environment runs."""

    droplets: Mapping[str, Decimal]
    load_balancer_node: Decimal
    reserved_ip_assigned: Decimal
    reserved_ip_unassigned: Decimal
    volume_gib: Decimal
    spaces_subscription: Decimal
    spaces_included_gib: int
    # Where the droplet prices come from, and where the rest do.
    droplet_source: str
    list_source: str
    # Sizes the account did not price, taken from the list instead (named in the output).
    from_list: tuple[str, ...] = field(default=())
    # A GiB-month of droplet snapshot (the pre-baked node image of ``snapshot:<name>``).
    snapshot_gib: Decimal | None = None

    def droplet(self, size: str) -> Decimal | None:
        """A size's monthly price, or None when neither the account nor the list has it."""
        return self.droplets.get(size)

    def describe(self) -> str:
        """One line saying where the figures come from."""
        text = f"droplets: {self.droplet_source}; the rest: {self.list_source}"
        if self.from_list:
            text += f" (list prices also for {', '.join(self.from_list)})"
        return text


def _table() -> dict[str, Any]:
    raw = resources.files("provisioner.cost").joinpath("prices.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(raw)
    return data


def list_prices() -> Prices:
    """The bundled table: what ``plan --offline`` and ``check`` price with."""
    t = _table()
    droplets = t["droplets"]
    spaces = t["spaces_subscription"]
    return Prices(
        droplets={slug: Decimal(p) for slug, p in droplets["price_monthly"].items()},
        load_balancer_node=Decimal(t["load_balancer_node"]["price_monthly"]),
        reserved_ip_assigned=Decimal(t["reserved_ipv4"]["assigned_monthly"]),
        reserved_ip_unassigned=Decimal(t["reserved_ipv4"]["unassigned_monthly"]),
        volume_gib=Decimal(t["volume_gib"]["price_monthly"]),
        snapshot_gib=Decimal(t["snapshot_gib"]["price_monthly"]),
        spaces_subscription=Decimal(spaces["price_monthly"]),
        spaces_included_gib=int(spaces["includes_gib"]),
        droplet_source=f"list prices ({droplets['source']}, read {droplets['read']})",
        list_source=f"list prices (provisioner/cost/prices.json, read {t['read']})",
    )


def with_account_sizes(base: Prices, account: Mapping[str, Decimal],
                       wanted: tuple[str, ...] = ()) -> Prices:
    """The account's /v2/sizes prices, the list's for a wanted size the account omits."""
    merged = {**base.droplets, **account}
    missing = tuple(sorted({s for s in wanted if s not in account and s in base.droplets}))
    return replace(base, droplets=merged, from_list=missing,
                   droplet_source="the account's /v2/sizes price_monthly")
