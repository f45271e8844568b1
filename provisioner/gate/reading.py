"""One entry point for the rollout: read the error rate from whichever source is set."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from . import digitalocean, prometheus
from .source import GateError, GateReading, GateSource


def read_error_rate(source: GateSource, *, load_balancer_ids: Sequence[str],
                    window_seconds: int, now: datetime) -> GateReading:
    """The 5xx responses and all responses in ``(now - window_seconds, now]``.

    ``load_balancer_ids`` are the region's app load balancers (DigitalOcean source; a
    Prometheus query selects its own series). Raises :class:`GateError` when the source
    cannot be read or has no data; a reading with ``requests == 0`` means "no traffic".
    """
    if window_seconds <= 0:
        raise GateError(f"gate window must be positive, got {window_seconds} s")
    if now.tzinfo is None:
        raise GateError("gate: the reading time must carry a time zone")
    if source.kind == "digitalocean":
        return digitalocean.read(source, load_balancer_ids, window_seconds, now)
    if source.kind == "prometheus":
        return prometheus.read(source, window_seconds, now)
    raise GateError(f"gate: unknown source {source.kind!r} (digitalocean or prometheus)")
