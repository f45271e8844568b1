"""Availability of a fleet in nines: regions in parallel behind a global load balancer.

The model, stated once (it is also in the report, under ``model.assumptions``):

* Each region's own figures come from the per-environment model (analysis/availability.py,
  its functions unchanged): its apps are served while every app behind the region's load
  balancers is up (each app: at least one replica's node up; the apps taken in series, so
  the region needs all of them), its API while a majority of its control plane is up.
* A whole region fails with probability ``q`` (``availability.region_failure_probability``,
  an input), independently of the other regions and of its droplets; its users reach its
  apps through its regional load balancer, in series (``availability.
  regional_lb_availability``, default 0.999: DigitalOcean's Regional Load Balancers SLA):
  the region serves ``(1 - q) * A_lb * A_env``.
* The regions are independent; the fleet serves while at least one region serves
  (``1 - prod(1 - A_region)``), behind the global load balancer, a component in series
  (``availability.global_lb_availability``, default 0.9999: DigitalOcean's Global Load
  Balancers SLA). The time the global load balancer takes to notice a region is down and move
  its users is not counted (steady state).

Everything is computed from unavailabilities, as the per-environment model does, so several
nines do not round to 1.0.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from provisioner.analysis.availability import (
    api_unavailability,
    app_unavailability,
    figures,
)
from provisioner.analysis.spof import schedulable_workers
from provisioner.config.model import Environment
from provisioner.fleet.model import Fleet


@dataclass(frozen=True)
class Region:
    """What one region's environment looks like to the model."""

    name: str
    replicas: tuple[int, ...]  # of each app the region serves
    workers: int
    control_plane: int


def region_of(env: Environment) -> Region:
    served = [a for a in env.apps if a.expose == "load_balancer"] or list(env.apps)
    return Region(env.name, tuple(a.min_replicas for a in served), schedulable_workers(env),
                  env.control_plane.count)


def _series(unavailabilities: Sequence[float]) -> float:
    """Down when any part is down: ``1 - prod(1 - u)``, kept small-number exact."""
    down = 0.0
    for u in unavailabilities:
        down = down + u - down * u
    return down


def _parallel(unavailabilities: Sequence[float]) -> float:
    """Down when every part is down."""
    down = 1.0
    for u in unavailabilities:
        down *= u
    return down if unavailabilities else 1.0


def apps_unavailability(region: Region, p: float, q: float, lb: float = 1.0) -> float:
    """The region's apps not served: the region down, its load balancer down, or any app's
    replicas all down."""
    return _series([q, 1.0 - lb,
                    *(app_unavailability(r, region.workers, p) for r in region.replicas)])


def api_region_unavailability(region: Region, p: float, q: float) -> float:
    return _series([q, api_unavailability(region.control_plane, p)])


def fleet_unavailability(regions: Sequence[Region], p: float, q: float, glb: float,
                         lb: float = 1.0, part: str = "apps") -> float:
    """The fleet down: the global load balancer down, or every region down."""
    if part == "apps":
        down = [apps_unavailability(r, p, q, lb) for r in regions]
    else:
        down = [api_region_unavailability(r, p, q) for r in regions]
    return _series([1.0 - glb, _parallel(down)])


def _row(label: str, regions: Sequence[Region], a: Any,
         base: float | None = None) -> dict[str, Any]:
    p, q = a.droplet_availability, a.region_failure_probability
    apps = figures(fleet_unavailability(regions, p, q, a.global_lb_availability,
                                        a.regional_lb_availability))
    api = figures(fleet_unavailability(regions, p, q, 1.0, part="api"))
    return {"option": label, "regions": len(regions),
            "apps": apps.as_dict(), "api": api.as_dict(),
            "minutes_saved_per_year": (None if base is None
                                       else base - apps.downtime_minutes_per_year)}


def _marginal(regions: Sequence[Region], a: Any) -> list[dict[str, Any]]:
    """``regions`` as they are, then with one region more (like the last), one replica more
    of every app in every region, or the next control-plane size (counts stay odd)."""
    names = ", ".join(r.name for r in regions)
    now = _row(f"{names} as it is", regions, a)
    base = now["apps"]["downtime_minutes_per_year"]
    more_replicas = [Region(r.name, tuple(n + 1 for n in r.replicas), r.workers,
                            r.control_plane) for r in regions]
    bigger_control = [Region(r.name, r.replicas, r.workers, min(5, r.control_plane + 2))
                      for r in regions]
    return [
        now,
        _row(f"  +1 region (like {regions[-1].name})", [*regions, regions[-1]], a, base),
        _row("  +1 replica of every app in each region", more_replicas, a, base),
        _row("  +2 control-plane nodes in each (3 -> 5: odd counts)", bigger_control, a, base),
    ]


def report(fleet: Fleet) -> dict[str, Any]:
    """The table for 1, 2 and 3 regions (the fleet's own, in rollout order; a region like
    the last one when it has fewer), and what one more region, one more replica of every app
    or the next control-plane size buys: from the canary's region alone, and from the fleet
    as it is."""
    a = fleet.availability
    p, q, glb = a.droplet_availability, a.region_failure_probability, a.global_lb_availability
    lb = a.regional_lb_availability
    regions = [region_of(m.env) for _, m in fleet.ordered()]
    like = regions[-1]
    table = []
    for n in (1, 2, 3):
        chosen = (regions + [like] * n)[:n]
        table.append(_row(f"{n} region{'s' if n > 1 else ''} ("
                          + ", ".join(r.name if i < len(regions) else f"another like {r.name}"
                                      for i, r in enumerate(chosen)) + ")", chosen, a))
    marginal = _marginal(regions[:1], a) + _marginal(regions, a)
    return {
        "fleet": fleet.name,
        "model": {
            "droplet_availability": p, "region_failure_probability": q,
            "global_lb_availability": glb, "regional_lb_availability": lb,
            "assumptions": [
                f"each region is down as a whole with probability {q} (an input), "
                "independently of the others and of its droplets",
                "a region serves while its regional load balancer is up (up "
                f"{lb}: DigitalOcean's Regional Load Balancers SLA unless given) and every "
                "app behind it has a replica on a node that is up (the per-environment "
                "model, apps in series)",
                "the fleet serves while one region serves, behind the global load "
                f"balancer, in series, up {glb} (DigitalOcean's Global Load Balancers SLA "
                "unless given)",
                "API: some region's control plane has quorum (no global load balancer in "
                "front of the APIs)",
                "steady state: the time to move users off a failed region is not counted",
            ],
        },
        "regions": [{"name": r.name, "apps_unavailability": apps_unavailability(r, p, q, lb),
                     "api_unavailability": api_region_unavailability(r, p, q)}
                    for r in regions],
        "table": table,
        "marginal": marginal,
    }


def _nines(value: float | None) -> str:
    return "inf" if value is None else f"{value:.2f}"


def _minutes(value: float) -> str:
    return f"{value:,.1f} min" if value >= 0.1 else f"{value * 60:,.2f} s"


def format_report(result: dict[str, Any]) -> str:
    """The tables as text."""
    lines = [f"Fleet {result['fleet']}: availability across regions"]
    lines += [f"  - {a}" for a in result["model"]["assumptions"]]
    header = f"  {'':<66} {'apps':>9} {'nines':>6} {'down/year':>12} {'API nines':>10}"
    for title, rows, saved in (("By number of regions", result["table"], False),
                               ("What one more buys", result["marginal"], True)):
        lines += ["", f"{title}:", header + ("   saved/year" if saved else "")]
        for row in rows:
            apps = row["apps"]
            text = (f"  {row['option']:<66} {apps['availability'] * 100:>8.5f}% "
                    f"{_nines(apps['nines']):>6} {_minutes(apps['downtime_minutes_per_year']):>12}"
                    f" {_nines(row['api']['nines']):>10}")
            if saved and row["minutes_saved_per_year"] is not None:
                text += f"   {_minutes(row['minutes_saved_per_year']):>10}"
            lines.append(text)
    return "\n".join(lines) + "\n"
