"""The 5xx ratio from a Prometheus server: two instant queries, errors and total.

``GET <url>/api/v1/query?query=<expr>&time=<unix>`` answers ``{"status": "success",
"data": {"resultType": "vector", "result": [{"metric": {...}, "value": [<unix>,
"<value>"]}]}}`` (or ``"scalar"`` with ``"result": [<unix>, "<value>"]``); a failed query
answers ``{"status": "error", "errorType": ..., "error": ...}`` with 400, 422 or 503
(Prometheus documentation, "HTTP API": "Format overview", "Instant queries",
"Expression query result formats"; prometheus/prometheus ``docs/querying/api.md``).

Why two queries, not one ratio: a ratio cannot say how many requests it saw, and the gate
refuses to judge fewer than its minimum. Each query must come to one number (wrap it in
``sum(...)``): ``query`` the 5xx responses in the window, ``total_query`` all responses,
e.g. ``sum(increase(http_requests_total{code=~"5.."}[$window]))`` and
``sum(increase(http_requests_total[$window]))``; ``$window`` becomes the gate's window
in seconds (``300s``). An empty vector from the 5xx query is 0 (no series has a 5xx
yet); from the total query it is "no data" (GateError): nothing matches the selector.
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from .http import get_json
from .source import PROMETHEUS, GateError, GateReading, GateSource


def read(source: GateSource, window_seconds: int, now: datetime) -> GateReading:
    """Evaluate both queries at ``now`` and return their counts."""
    if not source.url or not source.query or not source.total_query:
        raise GateError("gate: a prometheus source needs url, query (5xx responses) and "
                        "total_query (all responses)")
    window = f"{window_seconds}s"
    errors_expr = source.query.replace("$window", window)
    total_expr = source.total_query.replace("$window", window)
    at = f"{now.timestamp():.3f}"
    total = _number(source.url, total_expr, at)
    if total is None:
        raise GateError(f"no data: Prometheus at {source.url} has no series for {total_expr}")
    errors = _number(source.url, errors_expr, at) or 0.0
    return GateReading(requests=round(total), errors=round(errors),
                       window_seconds=window_seconds, source=PROMETHEUS,
                       detail=f"{errors_expr} / {total_expr}")


def _number(url: str, expr: str, at: str) -> float | None:
    """The one value ``expr`` comes to, None for an empty vector."""
    what = f"Prometheus query {expr}"
    body = get_json(what, url.rstrip("/") + "/api/v1/query", {"query": expr, "time": at})
    if not isinstance(body, dict) or body.get("status") != "success":
        detail = body.get("error") if isinstance(body, dict) else None
        raise GateError(f"cannot read {what}: {detail or 'status is not success'}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise GateError(f"cannot read {what}: the answer has no data")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return _value(result, what)
    if kind != "vector" or not isinstance(result, list):
        raise GateError(f"cannot read {what}: it returns a {kind}, not one number")
    if not result:
        return None
    if len(result) > 1:
        raise GateError(f"cannot read {what}: it returns {len(result)} series, not one number "
                        "(wrap it in sum(...))")
    sample = result[0]
    return _value(sample.get("value") if isinstance(sample, dict) else None, what)


def _value(pair: Any, what: str) -> float:
    try:
        value = float(pair[1])
    except (TypeError, ValueError, IndexError):
        raise GateError(f"cannot read {what}: a sample is not [time, number]") from None
    if math.isnan(value) or math.isinf(value) or value < 0:
        raise GateError(f"cannot read {what}: it comes to {pair[1]!r}, not a count")
    return value
