"""The monthly cost of an environment: pure functions over the Environment or what runs.

A figure is a range (low, high): an autoscaled worker pool or app may run anywhere between
its min and max, and a plan never shows only one end of that. Money is Decimal, so a sum of
cents is exact; JSON carries it as a number rounded to cents.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from provisioner import lb_names
from provisioner.config.model import Budget, Environment
from provisioner.cost.prices import Prices

ZERO = Decimal(0)
CENT = Decimal("0.01")
Range = tuple[Decimal, Decimal]


@dataclass(frozen=True)
class Line:
    """One thing that costs money: how many (low-high), of what, at what unit price."""

    item: str
    low: Decimal
    high: Decimal
    unit: str
    unit_price: Decimal | None  # None: no price known for it (named, never counted as 0)
    note: str = ""

    @property
    def monthly(self) -> Range | None:
        """Its monthly cost at the low and the high end, or None when unpriced."""
        if self.unit_price is None:
            return None
        return self.low * self.unit_price, self.high * self.unit_price

    def as_json(self) -> dict[str, Any]:
        """Numbers as JSON numbers, money rounded to cents."""
        cost = self.monthly
        return {"item": self.item, "quantity": {"min": _num(self.low), "max": _num(self.high)},
                "unit": self.unit,
                "unit_price": None if self.unit_price is None else money(self.unit_price),
                "monthly": None if cost is None else {"min": money(cost[0]),
                                                      "max": money(cost[1])},
                "note": self.note}


@dataclass(frozen=True)
class Estimate:
    """Lines and their total; ``prices`` says where the figures come from."""

    lines: tuple[Line, ...]
    prices: str
    notes: tuple[str, ...] = field(default=())

    @property
    def total(self) -> Range:
        """The sum of every priced line, low and high."""
        priced = [c for c in (line.monthly for line in self.lines) if c is not None]
        return sum((c[0] for c in priced), ZERO), sum((c[1] for c in priced), ZERO)

    @property
    def unpriced(self) -> tuple[str, ...]:
        """Items no price was found for: the total leaves them out, and says so."""
        return tuple(line.item for line in self.lines if line.unit_price is None)

    def as_json(self) -> dict[str, Any]:
        """What ``--output json`` carries."""
        low, high = self.total
        return {"currency": "USD", "prices": self.prices,
                "lines": [line.as_json() for line in self.lines],
                "total": {"min": money(low), "max": money(high)},
                "unpriced": list(self.unpriced), "notes": list(self.notes)}


def money(value: Decimal) -> float:
    """Dollars rounded to cents, for JSON."""
    return float(value.quantize(CENT))


def _num(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?\Z", re.ASCII)
_FACTOR = {None: 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
           "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50,
           "Ei": 2**60}


def volume_gib(size: str) -> int | None:
    """Whole GiB a claim of ``size`` is billed as: volumes are sized in whole GiB
    (the API's ``size_gigabytes`` is an integer), at least 1; None when not a plain
    quantity."""
    match = _QUANTITY.match(size.strip())
    if not match:
        return None
    size_bytes = Decimal(match.group(1)) * _FACTOR[match.group(2)]
    return max(1, math.ceil(size_bytes / Decimal(2**30)))


# `provision image build` snapshots a droplet with a 25 GB disk (cloud/image_build.py
# DEFAULT_SIZE): its snapshot is at most that (DigitalOcean bills a snapshot by its own
# size_gigabytes, at most the source disk). Offline, the image is priced at that bound.
ASSUMED_IMAGE_GIB = Decimal(25)


def plan_cost(env: Environment, prices: Prices,
              image_gib: Decimal | None = None) -> Estimate:
    """What the environment file makes run, a month, with ``prices``; ``image_gib``: the
    size of the ``snapshot:<name>`` image as the account lists it (None: not read)."""
    cp = env.control_plane
    lines = [Line(f"control plane: {cp.count} x {cp.size}", Decimal(cp.count),
                  Decimal(cp.count), f"droplet {cp.size}", prices.droplet(cp.size))]
    for pool in env.worker_pools:
        if pool.autoscale is not None:
            low, high = pool.autoscale.min, pool.autoscale.max
            lines.append(Line(f"worker pool {pool.name}: {low}-{high} x {pool.size}",
                              Decimal(low), Decimal(high), f"droplet {pool.size}",
                              prices.droplet(pool.size),
                              "autoscaled: Terraform keeps min, the autoscaler adds up to "
                              "max"))
        else:
            lines.append(Line(f"worker pool {pool.name}: {pool.count} x {pool.size}",
                              Decimal(pool.count), Decimal(pool.count),
                              f"droplet {pool.size}", prices.droplet(pool.size)))
    if cp.endpoint == "floating_ip":
        lines.append(Line("API floating IP (reserved IPv4)", Decimal(1), Decimal(1),
                          "reserved IPv4, assigned", prices.reserved_ip_assigned,
                          "free while assigned to a droplet, as keepalived keeps it"))
    else:
        lines.append(Line(f"load balancer {lb_names.api_load_balancer(env.name)} (API)",
                          Decimal(1), Decimal(1), "load balancer node",
                          prices.load_balancer_node))
    for app in env.apps:
        if app.expose == "load_balancer":
            lines.append(Line(f"load balancer {lb_names.load_balancer(env.name, app.name)}",
                              Decimal(1), Decimal(1), "load balancer node",
                              prices.load_balancer_node,
                              "made by the cloud controller manager, one node"))
    for app in env.apps:
        low = app.autoscale.min if app.autoscale else app.replicas
        high = app.autoscale.max if app.autoscale else app.replicas
        for volume in app.volumes:
            gib = volume_gib(volume.size)
            if gib is None:
                lines.append(Line(f"volumes {app.name}/{volume.name}: {volume.size}",
                                  Decimal(low), Decimal(high), "volume", None,
                                  "size not understood"))
                continue
            lines.append(Line(
                f"volumes {app.name}/{volume.name}: "
                + (f"{low}-{high}" if low != high else f"{low}") + f" x {gib} GiB",
                Decimal(low * gib), Decimal(high * gib), "GiB of volume", prices.volume_gib,
                "one per replica"))
    notes = []
    snapshot = env.digitalocean.snapshot
    if snapshot is not None:
        image_size = ASSUMED_IMAGE_GIB if image_gib is None else image_gib
        lines.append(Line(f"node image snapshot {snapshot}: {_num(image_size)} GiB",
                          image_size, image_size,
                          "GiB of droplet snapshot", prices.snapshot_gib,
                          "its size in the account (GET /v2/snapshots)" if image_gib
                          is not None else f"assumed at most {_num(ASSUMED_IMAGE_GIB)} GiB "
                          "(the build droplet's disk); online, its listed size"))
    if env.backups is not None:
        lines.append(Line(f"Spaces subscription (backups bucket {env.backups.bucket})",
                          Decimal(1), Decimal(1), "subscription", prices.spaces_subscription,
                          f"account-wide, includes {prices.spaces_included_gib} GiB: the "
                          "etcd snapshots are objects in it"))
        notes.append(f"etcd snapshots ({env.backups.keep_hourly} hourly + "
                     f"{env.backups.keep_daily} daily kept) are counted within the Spaces "
                     f"subscription's {prices.spaces_included_gib} GiB")
    return Estimate(tuple(lines), prices.describe(), tuple(notes))


@dataclass(frozen=True)
class Running:
    """What the account holds of one environment, as far as it costs money."""

    droplets: tuple[tuple[str, str, str], ...] = ()  # (role, name, size)
    load_balancers: tuple[tuple[str, int], ...] = ()  # (name, nodes)
    reserved_ips: tuple[tuple[str, bool], ...] = ()  # (address, assigned)
    volumes: tuple[tuple[str, int], ...] = ()  # (name, GiB)
    spaces: str | None = None  # the backups bucket the file names, if any


def run_rate(running: Running, prices: Prices) -> Estimate:
    """The monthly rate of what runs now: droplets grouped by role and size."""
    groups: dict[tuple[str, str], int] = {}
    for role, _name, size in running.droplets:
        groups[(role, size)] = groups.get((role, size), 0) + 1
    lines = [Line(f"{role}: {n} x {size}", Decimal(n), Decimal(n), f"droplet {size}",
                  prices.droplet(size))
             for (role, size), n in sorted(groups.items())]
    for name, nodes in running.load_balancers:
        lines.append(Line(f"load balancer {name}", Decimal(nodes), Decimal(nodes),
                          "load balancer node", prices.load_balancer_node))
    for address, assigned in running.reserved_ips:
        lines.append(Line(f"reserved IP {address}", Decimal(1), Decimal(1),
                          "reserved IPv4, " + ("assigned" if assigned else "unassigned"),
                          prices.reserved_ip_assigned if assigned
                          else prices.reserved_ip_unassigned))
    for name, gib in running.volumes:
        lines.append(Line(f"volume {name}: {gib} GiB", Decimal(gib), Decimal(gib),
                          "GiB of volume", prices.volume_gib))
    if running.spaces:
        lines.append(Line(f"Spaces subscription (backups bucket {running.spaces})",
                          Decimal(1), Decimal(1), "subscription", prices.spaces_subscription,
                          "from the file's backups: section; account-wide"))
    return Estimate(tuple(lines), prices.describe())


def change(before: Estimate | None, after: Estimate) -> dict[str, Any]:
    """before -> after and the difference, low and high; before None: not known."""
    a_low, a_high = after.total
    result: dict[str, Any] = {"after": {"min": money(a_low), "max": money(a_high)},
                              "before": None, "delta": None}
    if before is not None:
        b_low, b_high = before.total
        result["before"] = {"min": money(b_low), "max": money(b_high)}
        result["delta"] = {"min": money(a_low - b_low), "max": money(a_high - b_high)}
    return result


def budget_findings(budget: Budget | None, planned: Estimate | None = None,
                    running: Estimate | None = None) -> list[dict[str, str]]:
    """``check``'s findings against ``budget:``.

    The plan is compared at its high end (an autoscaled pool at its max): above the budget
    at its low end too is money spent for certain (high), only at the high end a risk
    (medium). The run rate above the budget is spent already (high).
    """
    if budget is None:
        return []
    limit = budget.monthly_usd
    found = []
    fix = ("lower sizes or counts (or autoscale max), or raise budget.monthly_usd if the "
           "spend is intended")
    if planned is not None:
        low, high = planned.total
        if low > limit:
            found.append({"severity": "high", "subject": "budget",
                          "problem": f"the plan costs ${_usd(low)} a month"
                                     + (f" (up to ${_usd(high)})" if high != low else "")
                                     + f", above budget.monthly_usd ${_usd(limit)}",
                          "fix": fix})
        elif high > limit:
            found.append({"severity": "medium", "subject": "budget",
                          "problem": f"the plan costs ${_usd(low)}-${_usd(high)} a month: at "
                                     f"max autoscale above budget.monthly_usd ${_usd(limit)}",
                          "fix": fix})
    if planned is not None:
        found += _unpriced_finding(planned, "the plan's", limit)
    if running is not None:
        found += _unpriced_finding(running, "the run rate's", limit)
        rate = running.total[0]
        if rate > limit:
            found.append({"severity": "high", "subject": "budget",
                          "problem": f"what runs now costs ${_usd(rate)} a month, above "
                                     f"budget.monthly_usd ${_usd(limit)}",
                          "fix": "remove what is not needed (provision status lists it), or "
                                 "raise budget.monthly_usd"})
    return found


def _unpriced_finding(estimate: Estimate, whose: str, limit: Decimal
                      ) -> list[dict[str, str]]:
    """A total that leaves items out cannot be said to hold the budget: name them."""
    if not estimate.unpriced:
        return []
    return [{"severity": "medium", "subject": "budget",
             "problem": f"{whose} total leaves out what has no known price, so "
                        f"budget.monthly_usd ${_usd(limit)} is not checked for: "
                        + "; ".join(estimate.unpriced),
             "fix": "use a size in provisioner/cost/prices.json (or check --online, which "
                    "prices the account's sizes), or add the price there with its source"}]


def _usd(value: Decimal) -> str:
    return f"{value.quantize(CENT):,}"


def sizes_of(env: Environment) -> tuple[str, ...]:
    """Every droplet size the file uses."""
    return tuple(dict.fromkeys([env.control_plane.size,
                                *(p.size for p in env.worker_pools)]))


def group_sizes(droplets: Iterable[tuple[str, str, str]]) -> tuple[str, ...]:
    """Every size among running droplets."""
    return tuple(dict.fromkeys(size for _, _, size in droplets))
