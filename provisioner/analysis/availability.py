"""Expected availability of the API and of each app, from the availability of one droplet.

The model, stated once (it is also in every report, under ``model.assumptions``):

* Every droplet is up a fraction ``p`` of the time (default 0.999, about 8.8 hours down a
  year), independently of the others. Failures shared by many droplets (a region outage, a
  bad rollout, an expired certificate) are outside the model.
* The API is up while a majority of the ``n`` control-plane nodes is up (etcd quorum):
  ``A = sum(C(n, k) p^k (1-p)^(n-k) for k in floor(n/2)+1 .. n)``, times
  ``endpoint_availability``: the floating IP or load balancer as a DigitalOcean service, 1.0
  (not modelled) unless given. Failover time (keepalived moving the floating IP) is not
  counted.
* An app is up while at least one replica is up. Replicas are spread over distinct worker
  nodes while there are enough (maxSkew 1 on ``kubernetes.io/hostname``), so ``r`` replicas on
  ``w`` nodes the app can run on occupy ``min(r, w)`` nodes, and the app is down only when all
  of them are: ``A = 1 - (1-p)^min(r, w)``. A running app keeps serving without the API, so
  the control plane is not counted; the app is modelled from its nodes only. Recovery (a
  replica rescheduled elsewhere, which needs the API) is not counted either: this is the
  steady state of the replicas as placed. ``r`` is the minimum replica count
  (``autoscale.min`` when autoscaling).
* Stateful apps whose members need a majority of themselves (Elasticsearch masters, etcd,
  ZooKeeper) are up less: their ``quorum`` figure counts the app up only while
  ``floor(r/2)+1`` replicas are, on nodes holding up to ``ceil(r/w)`` replicas each.

Figures are computed from the unavailability ``U = 1 - A`` directly (sums of small products),
never as ``1 - A``: for several nines ``A`` rounds to 1.0 in floating point while ``U`` does not.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from provisioner.analysis.spof import (
    findings,
    most_per_node,
    nodes_used,
    schedulable_pools,
    schedulable_workers,
)
from provisioner.config.model import App, Environment

DEFAULT_P = 0.999
"""Availability of one droplet assumed when none is given."""
MINUTES_PER_YEAR = 365.25 * 24 * 60
"""525,960: downtime figures are per Julian year."""
API_NODE_OPTIONS = (1, 3, 5)
"""Control-plane sizes the configuration accepts, compared in every report."""


def _probability(name: str, value: float) -> float:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be between 0 and 1, not {value!r}")
    return value


@dataclass(frozen=True)
class Figures:
    """One availability, said four ways."""

    availability: float
    unavailability: float
    nines: float
    """``-log10(1 - A)``; ``math.inf`` when nothing can fail (shown as ``None`` in reports)."""
    downtime_minutes_per_year: float

    def as_dict(self) -> dict[str, float | None]:
        """JSON-safe: infinite nines become ``None``."""
        return {**asdict(self), "nines": self.nines if math.isfinite(self.nines) else None}


def nines(availability: float) -> float:
    """``-log10(1 - availability)``: 0.999 is 3 nines; ``math.inf`` for 1."""
    return _nines_of(1.0 - _probability("availability", availability))


def _nines_of(unavailability: float) -> float:
    # + 0.0 turns the -0.0 of a certain outage into 0.0.
    return math.inf if unavailability <= 0.0 else -math.log10(unavailability) + 0.0


def downtime_minutes(availability: float) -> float:
    """Expected minutes down per year (365.25 days)."""
    return (1.0 - _probability("availability", availability)) * MINUTES_PER_YEAR


def figures(unavailability: float) -> Figures:
    """The figures of an unavailability ``U = 1 - A``."""
    u = _probability("unavailability", unavailability)
    return Figures(availability=1.0 - u, unavailability=u, nines=_nines_of(u),
                   downtime_minutes_per_year=u * MINUTES_PER_YEAR)


def quorum(n: int) -> int:
    """Members that must be up for a majority of ``n``."""
    return n // 2 + 1


def api_unavailability(nodes: int, p: float = DEFAULT_P,
                       endpoint_availability: float = 1.0) -> float:
    """Probability the API is down: fewer than ``quorum(nodes)`` control-plane nodes up, or the
    endpoint down."""
    _probability("p", p)
    e = 1.0 - _probability("endpoint_availability", endpoint_availability)
    if nodes < 1:
        return 1.0
    q = 1.0 - p
    # The failing states: k < quorum nodes up.
    lost = sum(math.comb(nodes, k) * p**k * q ** (nodes - k) for k in range(quorum(nodes)))
    return lost + e - lost * e


def api_availability(nodes: int, p: float = DEFAULT_P, endpoint_availability: float = 1.0) -> float:
    """``sum(C(n, k) p^k (1-p)^(n-k), k = floor(n/2)+1 .. n) * endpoint_availability``."""
    return 1.0 - api_unavailability(nodes, p, endpoint_availability)


def app_unavailability(replicas: int, workers: int, p: float = DEFAULT_P) -> float:
    """Probability every node holding one of the app's replicas is down: ``(1-p)^min(r, w)``."""
    _probability("p", p)
    used = nodes_used(replicas, workers)
    return (1.0 - p) ** used if used > 0 else 1.0


def app_availability(replicas: int, workers: int, p: float = DEFAULT_P) -> float:
    """``1 - (1-p)^min(replicas, workers)``; 0 with no replica or no worker."""
    return 1.0 - app_unavailability(replicas, workers, p)


def spread(replicas: int, workers: int) -> list[int]:
    """Replicas per occupied node under maxSkew-1 spreading, fullest first."""
    used = nodes_used(replicas, workers)
    if used == 0:
        return []
    base, extra = divmod(replicas, used)
    return [base + 1] * extra + [base] * (used - extra)


def quorum_unavailability(members_per_node: Sequence[int], p: float = DEFAULT_P) -> float:
    """Probability fewer than a majority of the members are up, with ``members_per_node[i]``
    members on node ``i`` (nodes fail independently, members with their node)."""
    _probability("p", p)
    total = sum(members_per_node)
    if total == 0:
        return 1.0
    # up[k]: probability that exactly k members are up.
    up = [1.0]
    for count in members_per_node:
        nxt = [0.0] * (len(up) + count)
        for k, weight in enumerate(up):
            nxt[k] += weight * (1.0 - p)
            nxt[k + count] += weight * p
        up = nxt
    return sum(up[: quorum(total)])


def _api(env: Environment, p: float, endpoint: float) -> dict[str, Any]:
    n = env.control_plane.count
    options: list[dict[str, Any]] = []
    previous: Figures | None = None
    for nodes in sorted({*API_NODE_OPTIONS, n}):
        f = figures(api_unavailability(nodes, p, endpoint))
        row: dict[str, Any] = {
            "nodes": nodes,
            "quorum": quorum(nodes),
            "tolerated_failures": (nodes - 1) // 2,
            "current": nodes == n,
            **f.as_dict(),
            "minutes_saved_per_year": None,
        }
        if previous is not None:
            row["minutes_saved_per_year"] = (previous.downtime_minutes_per_year
                                             - f.downtime_minutes_per_year)
        options.append(row)
        previous = f
    return {
        "control_plane_nodes": n,
        "endpoint": env.control_plane.endpoint,
        "quorum": quorum(n),
        "tolerated_failures": (n - 1) // 2,
        **figures(api_unavailability(n, p, endpoint)).as_dict(),
        "options": options,
    }


def _app_options(replicas: int, workers: int, p: float) -> list[dict[str, Any]]:
    """r, r+1, r+2 replicas on the current workers, then with one worker node more."""
    now = figures(app_unavailability(replicas, workers, p))
    rows: list[dict[str, Any]] = []
    for w in (workers, workers + 1):
        for r in (replicas, replicas + 1, replicas + 2):
            f = figures(app_unavailability(r, w, p))
            rows.append({
                "replicas": r,
                "workers": w,
                "nodes": nodes_used(r, w),
                "current": (r, w) == (replicas, workers),
                **f.as_dict(),
                "minutes_saved_per_year": (now.downtime_minutes_per_year
                                           - f.downtime_minutes_per_year),
            })
    return rows


def _app(app: App, workers: int, p: float) -> dict[str, Any]:
    r = app.min_replicas
    placement = spread(r, workers)
    entry: dict[str, Any] = {
        "name": app.name,
        "kind": "StatefulSet" if app.stateful else "Deployment",
        "replicas": r,
        "autoscale": ({"min": app.autoscale.min, "max": app.autoscale.max}
                      if app.autoscale else None),
        "workers": workers,
        "nodes": len(placement),
        "most_per_node": most_per_node(r, workers),
        **figures(app_unavailability(r, workers, p)).as_dict(),
        "quorum": (figures(quorum_unavailability(placement, p)).as_dict()
                   if app.stateful else None),
        "options": _app_options(r, workers, p),
    }
    return entry


def assumptions(p: float, endpoint_availability: float) -> list[str]:
    """The model in words, for the report."""
    return [
        f"each droplet is up {_percent(p)} of the time"
        f" ({_duration((1.0 - p) * MINUTES_PER_YEAR)} down a year), independently of the others;"
        " region-wide failures are outside the model",
        "API: up while a majority of control-plane nodes is up (etcd quorum), times the"
        f" endpoint's availability, {_percent(endpoint_availability)}"
        + (" (the floating IP or load balancer as a DigitalOcean service is not modelled)"
           if endpoint_availability == 1.0 else " (given)"),
        "app: up while one replica is up; replicas spread over min(replicas, workers) distinct"
        " nodes; a running app serves without the API, so the app is modelled from its nodes"
        " only; the minimum replica count is used (autoscale.min when autoscaling)",
        "steady state: the time to reschedule a replica, move the floating IP or detach a"
        " volume is not counted",
        "stateful apps: 'quorum' is the availability if their members need a majority",
    ]


def report(env: Environment, p: float = DEFAULT_P,
           endpoint_availability: float = 1.0) -> dict[str, Any]:
    """Availability of the API and every app, the options around them, and the findings.

    JSON-serialisable (strictly: no NaN or infinity; infinite nines are ``None``).
    """
    _probability("p", p)
    _probability("endpoint_availability", endpoint_availability)
    workers = schedulable_workers(env)
    return {
        "environment": env.name,
        "model": {
            "droplet_availability": p,
            "endpoint_availability": endpoint_availability,
            "minutes_per_year": MINUTES_PER_YEAR,
            "assumptions": assumptions(p, endpoint_availability),
        },
        "api": _api(env, p, endpoint_availability),
        "workers": {
            "schedulable": workers,
            "pools": [pool.name for pool in schedulable_pools(env)],
        },
        "apps": [_app(app, workers, p) for app in env.apps],
        "findings": [asdict(f) for f in findings(env)],
    }


# Human text.

_ENDPOINTS = {"floating_ip": "floating IP", "load_balancer": "load balancer"}


def _percent(availability: float, nines_: float | None = None) -> str:
    n = _nines_of(1.0 - availability) if nines_ is None else nines_
    if not math.isfinite(n) or n > 12:
        return "100%" if not math.isfinite(n) else "~100%"
    digits = max(1, math.ceil(round(n, 6)) - 2)
    text = f"{availability * 100:.{digits}f}".rstrip("0").rstrip(".")
    return text + "%"


def _duration(minutes: float) -> str:
    if minutes >= 2 * 24 * 60:
        return f"{minutes / (24 * 60):.1f} d"
    if minutes >= 60:
        return f"{minutes / 60:.1f} h"
    if minutes >= 1:
        return f"{minutes:.1f} min"
    if minutes * 60 >= 1:
        return f"{minutes * 60:.1f} s"
    if minutes * 60_000 >= 0.1:
        return f"{minutes * 60_000:.1f} ms"
    return "0" if minutes == 0 else "< 0.1 ms"


def _saved(minutes: float) -> str:
    if minutes > 0:
        return f"saves {_duration(minutes)} a year"
    return f"costs {_duration(-minutes)} a year" if minutes < 0 else "nothing"


def _gain(option: Mapping[str, Any]) -> str:
    if option["current"]:
        return "current"
    saved = option["minutes_saved_per_year"]
    if saved != 0:
        return _saved(saved)
    if option["replicas"] > option["nodes"]:
        return f"nothing: only {option['workers']} node(s) to spread over"
    return "nothing: one replica per node already"


def _nines_text(value: float | None) -> str:
    return "inf" if value is None else f"{value:.1f}"


def _summary(row: Mapping[str, Any]) -> str:
    return (f"{_percent(row['availability'], row['nines'])}, {_nines_text(row['nines'])} nines,"
            f" {_duration(row['downtime_minutes_per_year'])} down a year")


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    body = [list(header), *[list(r) for r in rows]]
    widths = [max(len(r[i]) for r in body) for i in range(len(header))]
    return ["    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in body]


def format_report(result: Mapping[str, Any]) -> str:
    """The report as a person reads it: figures, the options around them, the findings."""
    model = result["model"]
    api = result["api"]
    lines = [f"Availability of {result['environment']} if each droplet is up"
             f" {_percent(model['droplet_availability'])} of the time:", ""]
    lines.append(f"API: {api['control_plane_nodes']} control-plane node(s), etcd quorum"
                 f" {api['quorum']}, survives {api['tolerated_failures']} failure(s),"
                 f" behind a {_ENDPOINTS.get(api['endpoint'], api['endpoint'])}")
    lines.append(f"  {_summary(api)}")
    lines.append("  control-plane nodes:")
    rows = []
    for o in api["options"]:
        saved = o["minutes_saved_per_year"]
        rows.append([
            f"{o['nodes']}{' *' if o['current'] else ''}", str(o["tolerated_failures"]),
            _percent(o["availability"], o["nines"]), _nines_text(o["nines"]),
            _duration(o["downtime_minutes_per_year"]),
            "" if saved is None else _saved(saved),
        ])
    lines += _table(["nodes", "survives", "availability", "nines", "down/year", "step buys"],
                    rows)
    workers = result["workers"]
    lines += ["", f"Apps: {workers['schedulable']} worker node(s) can run them"
              + (f" (pool {', '.join(workers['pools'])})" if workers["pools"] else "")]
    for app in result["apps"]:
        scale = app["autoscale"]
        replicas = (f"autoscale {scale['min']}-{scale['max']}" if scale
                    else f"{app['replicas']} replica(s)")
        lines.append(f"  {app['name']} ({app['kind']}, {replicas}): {app['replicas']} on"
                     f" {app['nodes']} node(s), at most {app['most_per_node']} per node")
        lines.append(f"    {_summary(app)}")
        if app["quorum"] is not None:
            lines.append(f"    if its members need a majority: {_summary(app['quorum'])}")
        rows = [[f"{o['replicas']}{' *' if o['current'] else ''}", str(o["workers"]),
                 str(o["nodes"]), _percent(o["availability"], o["nines"]),
                 _nines_text(o["nines"]), _duration(o["downtime_minutes_per_year"]),
                 _gain(o)]
                for o in app["options"]]
        lines += _table(["replicas", "workers", "nodes", "availability", "nines", "down/year",
                         "vs now"], rows)
    lines += ["", "Model:"] + [f"  - {a}" for a in model["assumptions"]]
    found = result["findings"]
    lines += ["", f"Findings: {len(found) or 'none'}"]
    for f in found:
        lines.append(f"  [{f['severity']}] {f['subject']}: {f['problem']}")
        lines.append(f"      fix: {f['fix']}")
    return "\n".join(lines) + "\n"
