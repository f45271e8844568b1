"""Load balancer HTTP response metrics, as DigitalOcean's monitoring API serves them.

``GET /v2/monitoring/metrics/load_balancer/frontend_http_responses?lb_id=&start=&end=``
(digitalocean/openapi at the commit tests/data/README.md names:
``specification/resources/monitoring/monitoring_get_lb_frontend_http_responses.yml`` and
``models/metrics.yml``, ``metrics_data.yml``, ``metrics_result.yml``) answers a Prometheus
style matrix: ``{"status": "success", "data": {"resultType": "matrix", "result":
[{"metric": {labels}, "values": [[unix_time, "value"], ...]}]}}``. What the fake takes
from the description, and what it chooses where the description is silent:

* ``lb_id``, ``start`` and ``end`` are required query parameters (``parameters.yml``);
  a missing or non-numeric one is answered 400 here (the description lists no 400 for
  the operation; ``default`` covers it with the API's error body).
* Load balancer series carry an ``lb_id`` label (``metrics_result.yml``, ``metric``).
  The label naming the response class is not documented; the fake calls it ``class``
  (values ``2xx``...``5xx``), and the reader accepts the class under any label.
* The operation is a "Rate Of Response Code" (its summary): each value is responses per
  second over the step ending at its timestamp, formatted as a string like the
  description's example (``"1"``). The step is not a parameter; the fake uses
  ``step`` seconds (60 unless a test sets another) on timestamps that are multiples of
  it, from ``start`` to ``end`` inclusive and never later than the fake's clock.
* An LB with no HTTP traffic series at all (nothing injected: a network load balancer or
  one with TCP rules only reports ``frontend_nlb_*``/TCP metrics) gets an empty
  ``result``; one whose injected traffic is zero gets series of ``"0"``.

Tests drive it with :meth:`Monitoring.traffic`: responses per second per class between
two instants of the fake's clock (``clock``, Unix seconds; the wall clock unless pinned).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

CLASSES = ("1xx", "2xx", "3xx", "4xx", "5xx")


@dataclass(frozen=True)
class _Segment:
    since: float
    until: float
    rates: Mapping[str, float]  # class -> responses per second


@dataclass
class Monitoring:
    """Per-LB response series the test injects; sampled on request."""

    step: int = 60
    clock: Callable[[], float] = time.time
    _segments: dict[str, list[_Segment]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def traffic(self, lb_id: str, since: float, until: float, **rates: float) -> None:
        """Serve ``rates`` (class -> responses per second, e.g. ``**{"2xx": 50, "5xx": 1}``)
        for ``lb_id`` in ``[since, until)``; overlapping calls add up."""
        unknown = set(rates) - set(CLASSES)
        if unknown or until <= since or any(r < 0 for r in rates.values()):
            raise ValueError(f"bad traffic: classes {sorted(unknown)}, {since}..{until}")
        with self._lock:
            self._segments.setdefault(lb_id, []).append(_Segment(since, until, dict(rates)))

    def responses(self, lb_id: str, cls: str, since: float, until: float) -> float:
        """Responses of ``cls`` in ``(since, until]`` (what the test expects the gate to count)."""
        with self._lock:
            segments = list(self._segments.get(lb_id, ()))
        return sum(s.rates.get(cls, 0.0) * max(0.0, min(until, s.until) - max(since, s.since))
                   for s in segments)

    def matrix(self, lb_id: str, start: int, end: int) -> list[dict[str, object]]:
        """The ``data.result`` for one load balancer and window."""
        with self._lock:
            segments = list(self._segments.get(lb_id, ()))
        if not segments:
            return []
        classes = sorted({c for s in segments for c in s.rates})
        last = min(end, int(self.clock()))
        first = -(-start // self.step) * self.step  # the first multiple of step >= start
        stamps = range(first, last + 1, self.step)
        result: list[dict[str, object]] = []
        for cls in classes:
            values = [[t, _number(self.responses(lb_id, cls, t - self.step, t) / self.step)]
                      for t in stamps]
            result.append({"metric": {"lb_id": lb_id, "class": cls}, "values": values})
        return result


def _number(value: float) -> str:
    """A sample value as the API writes them: a decimal string."""
    return format(value, ".10g")
