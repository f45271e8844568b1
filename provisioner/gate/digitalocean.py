"""The 5xx ratio from DigitalOcean's monitoring API for load balancers.

``GET /v2/monitoring/metrics/load_balancer/frontend_http_responses?lb_id=&start=&end=``
(digitalocean/openapi, ``specification/resources/monitoring/
monitoring_get_lb_frontend_http_responses.yml``; copied in tests/data/digitalocean-openapi)
answers ``{"status": "success", "data": {"resultType": "matrix", "result": [{"metric":
{labels}, "values": [[unix_time, "value"], ...]}]}}`` (``models/metrics*.yml``), one series
per response class. The operation's summary is "Frontend HTTP *Rate* Of Response Code":
each value is responses per second at that step, not a count. A count is the rate times
the step, the series' spacing (the API does not take a step; it chooses one for the
window), so a sample at ``t`` stands for the step that ends at ``t``: samples in
``(start, end]`` are counted, the one at ``start`` covers time before the window.

The frontend metric is what clients were answered, including the load balancer's own
503 when no backend is healthy; ``droplets_http_responses`` would miss those.

Only load balancers with HTTP forwarding rules report response codes: a regional network
load balancer (type ``REGIONAL_NETWORK``, TCP/UDP) has its own TCP/UDP throughput metrics
instead (``frontend_nlb_*``). An empty result is therefore "no data" (GateError), unlike
series of zeros ("no traffic").

The reference does not name the label that carries the class; a series' class is read
from whichever label value has the form ``Nxx`` (``2xx``, ``5xx``...).
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from .http import get_json
from .source import DIGITALOCEAN, GateError, GateReading, GateSource

PATH = "/v2/monitoring/metrics/load_balancer/frontend_http_responses"
_CLASS = re.compile(r"([1-5])xx", re.IGNORECASE)


def read(source: GateSource, load_balancer_ids: Sequence[str], window_seconds: int,
         now: datetime) -> GateReading:
    """Sum every load balancer's responses and 5xx over the window."""
    if not load_balancer_ids:
        raise GateError("gate: no load balancer to read (no app with `expose: load_balancer` "
                        "in this environment?)")
    if not source.token:
        raise GateError("gate: no DigitalOcean API token to read load balancer metrics with")
    end = int(now.timestamp())
    start = end - window_seconds
    requests = errors = 0.0
    for lb_id in load_balancer_ids:
        total, failed = _one(source, lb_id, start, end)
        requests += total
        errors += failed
    return GateReading(requests=round(requests), errors=round(errors),
                       window_seconds=window_seconds, source=DIGITALOCEAN,
                       detail="frontend_http_responses of load balancer "
                              + ", ".join(load_balancer_ids))


def _one(source: GateSource, lb_id: str, start: int, end: int) -> tuple[float, float]:
    what = f"HTTP response metrics of load balancer {lb_id}"
    body = get_json(what, _base(source.api_url) + PATH,
                    {"lb_id": lb_id, "start": str(start), "end": str(end)},
                    {"Authorization": f"Bearer {source.token}"})
    series = _series(body, what)
    if not series:
        raise GateError(f"no data: DigitalOcean reports no HTTP responses for load balancer "
                        f"{lb_id} between {start} and {end} (only load balancers with HTTP or "
                        "HTTPS forwarding rules report them, not network load balancers or "
                        "TCP rules)")
    total = failed = 0.0
    classified = False
    for labels, values in series:
        kind = _class_of(labels)
        if kind is None:
            continue
        classified = True
        counted = _count(values, start, end, what)
        total += counted
        if kind == "5":
            failed += counted
    if not classified:
        raise GateError(f"cannot read {what}: no series names a response class (2xx, 5xx...)")
    return total, failed


def _base(api_url: str) -> str:
    base = api_url.rstrip("/")
    return base[: -len("/v2")] if base.endswith("/v2") else base


def _series(body: Any, what: str) -> list[tuple[dict[str, Any], list[Any]]]:
    """The matrix's series, or GateError when the answer is not the documented shape."""
    if not isinstance(body, dict) or body.get("status") != "success":
        status = body.get("status") if isinstance(body, dict) else None
        raise GateError(f"cannot read {what}: the API answered status {status!r}")
    data = body.get("data")
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise GateError(f"cannot read {what}: the answer has no data.result")
    found = []
    for item in result:
        labels = item.get("metric") if isinstance(item, dict) else None
        values = item.get("values") if isinstance(item, dict) else None
        if not isinstance(labels, dict) or not isinstance(values, list):
            raise GateError(f"cannot read {what}: a series without metric and values")
        found.append((labels, values))
    return found


def _class_of(labels: dict[str, Any]) -> str | None:
    for value in labels.values():
        match = _CLASS.fullmatch(str(value))
        if match:
            return match.group(1)
    return None


def _count(values: list[Any], start: int, end: int, what: str) -> float:
    """Responses in ``(start, end]`` from per-second rates: the sum of the rates in the
    window times the series' step (the smallest spacing of its samples)."""
    points: list[tuple[float, float]] = []
    for pair in values:
        try:
            at, rate = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            raise GateError(f"cannot read {what}: a value is not [time, number]") from None
        if math.isnan(rate):
            continue  # Prometheus' NaN: nothing known for that step
        if rate < 0 or math.isinf(rate):
            raise GateError(f"cannot read {what}: a rate of {pair[1]!r} responses per second")
        points.append((at, rate))
    points.sort()
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(points) if b[0] > a[0]]
    inside = [rate for at, rate in points if start < at <= end]
    if not inside:
        return 0.0
    if not gaps:
        raise GateError(f"cannot read {what}: one sample in the window, so no step to turn "
                        "its rate into a count (lengthen the gate's window)")
    return sum(inside) * min(gaps)
