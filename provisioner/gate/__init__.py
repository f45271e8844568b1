"""The rollout gate: the 5xx ratio of a region's apps over a window, from DigitalOcean's
load balancer monitoring or a Prometheus server; and the fleet's global load balancer."""

from __future__ import annotations

from .reading import read_error_rate
from .source import DIGITALOCEAN, PROMETHEUS, GateError, GateReading, GateSource
from .verdict import Verdict, judge

__all__ = ["DIGITALOCEAN", "PROMETHEUS", "GateError", "GateReading", "GateSource",
           "Verdict", "judge", "read_error_rate"]
