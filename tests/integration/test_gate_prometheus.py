"""The rollout gate read from a Prometheus server: a tiny one over real HTTP here.

It speaks the documented instant-query API (Prometheus documentation, "HTTP API",
prometheus/prometheus ``docs/querying/api.md``: "Format overview", "Instant queries",
"Expression query result formats"): ``GET /api/v1/query?query=&time=`` answers
``{"status": "success", "data": {"resultType": "vector", "result": [{"metric": {...},
"value": [<unix>, "<value>"]}]}}`` or ``resultType`` ``scalar`` with ``[<unix>,
"<value>"]``; errors are ``{"status": "error", "errorType": ..., "error": ...}`` with 400
(bad parameters), 422 (the expression cannot be executed) or 503 (timeout, abort).
Values are strings and timestamps Unix seconds (floats).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from provisioner.gate import GateError, GateSource, read_error_rate

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ERRORS = 'sum(increase(http_requests_total{code=~"5.."}[$window]))'
TOTAL = "sum(increase(http_requests_total[$window]))"


@dataclass
class Prometheus:
    """Answers by expression: a value (vector of one sample), a list of values (several
    series), "scalar:<v>", None (empty vector) or (status, errorType, error)."""

    answers: dict[str, Any] = field(default_factory=dict)
    seen: list[dict[str, list[str]]] = field(default_factory=list)
    url: str = ""

    def answer(self, query: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self.seen.append(query)
        expr, at = query["query"][0], float(query["time"][0])
        if expr not in self.answers:
            return 400, {"status": "error", "errorType": "bad_data",
                         "error": f'1:1: parse error: unknown expression "{expr}"'}
        value = self.answers[expr]
        if isinstance(value, tuple):
            status, kind, message = value
            return status, {"status": "error", "errorType": kind, "error": message}
        if isinstance(value, str) and value.startswith("scalar:"):
            return 200, {"status": "success",
                         "data": {"resultType": "scalar", "result": [at, value[7:]]}}
        values = [] if value is None else value if isinstance(value, list) else [value]
        result = [{"metric": {"code": str(500 + i)}, "value": [at, str(v)]}
                  for i, v in enumerate(values)]
        return 200, {"status": "success", "data": {"resultType": "vector", "result": result}}


@pytest.fixture
def prometheus() -> Iterator[Prometheus]:
    server_state = Prometheus()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path != "/api/v1/query":
                status, body = 404, {"status": "error", "error": "not found"}
            else:
                status, body = server_state.answer(parse_qs(parts.query))
            payload = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server_state.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server_state
    server.shutdown()
    server.server_close()


def read(prometheus: Prometheus, window: int = 300) -> Any:
    return read_error_rate(GateSource(kind="prometheus", url=prometheus.url + "/",
                                      query=ERRORS, total_query=TOTAL),
                           load_balancer_ids=[], window_seconds=window, now=NOW)


def resolved(expr: str, window: int = 300) -> str:
    return expr.replace("$window", f"{window}s")


def test_two_instant_queries_at_now_with_the_window(prometheus: Prometheus) -> None:
    """increase() over a window extrapolates, so counts come back as floats: rounded."""
    prometheus.answers = {resolved(ERRORS): 41.7, resolved(TOTAL): 5000.2}
    reading = read(prometheus)
    assert (reading.requests, reading.errors, reading.source) == (5000, 42, "prometheus")
    assert reading.ratio == pytest.approx(42 / 5000)
    assert {q["query"][0] for q in prometheus.seen} == {resolved(ERRORS), resolved(TOTAL)}
    assert all(float(q["time"][0]) == NOW.timestamp() for q in prometheus.seen)


def test_scalar_results_are_read(prometheus: Prometheus) -> None:
    prometheus.answers = {resolved(ERRORS): "scalar:3", resolved(TOTAL): "scalar:600"}
    reading = read(prometheus)
    assert (reading.requests, reading.errors) == (600, 3)


def test_no_5xx_series_is_zero_errors(prometheus: Prometheus) -> None:
    """A code="5xx" series that never existed gives an empty vector: no errors."""
    prometheus.answers = {resolved(ERRORS): None, resolved(TOTAL): 900}
    reading = read(prometheus)
    assert (reading.requests, reading.errors) == (900, 0)


def test_zero_traffic_is_a_reading_without_ratio(prometheus: Prometheus) -> None:
    prometheus.answers = {resolved(ERRORS): 0, resolved(TOTAL): 0}
    reading = read(prometheus)
    assert (reading.requests, reading.ratio) == (0, None)


def test_no_series_for_the_total_is_no_data(prometheus: Prometheus) -> None:
    prometheus.answers = {resolved(ERRORS): None, resolved(TOTAL): None}
    with pytest.raises(GateError, match=r"no data: Prometheus at .* has no series"):
        read(prometheus)


def test_several_series_ask_for_sum(prometheus: Prometheus) -> None:
    prometheus.answers = {resolved(ERRORS): [1, 2], resolved(TOTAL): 100}
    with pytest.raises(GateError, match=r"returns 2 series.*wrap it in sum"):
        read(prometheus)


@pytest.mark.parametrize(("status", "kind", "message"), [
    (422, "execution", "query processing would load too many samples into memory"),
    (503, "timeout", "query timed out in expression evaluation"),
])
def test_query_errors_are_cannot_read(prometheus: Prometheus, status: int, kind: str,
                                      message: str) -> None:
    prometheus.answers = {resolved(ERRORS): 1, resolved(TOTAL): (status, kind, message)}
    with pytest.raises(GateError, match=f"cannot read Prometheus query .*: HTTP {status} "
                                        rf"\({message}\)"):
        read(prometheus)


def test_unreachable_server_is_cannot_read(prometheus: Prometheus) -> None:
    prometheus.url = "http://127.0.0.1:9"  # discard port: nothing listens
    with pytest.raises(GateError, match="cannot read Prometheus query"):
        read(prometheus)
