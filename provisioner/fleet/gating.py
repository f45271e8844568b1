"""Reading a baking region's 5xx ratio through the gate (provisioner.gate), and judging it.

provisioner.gate (its own package: the DigitalOcean monitoring API or Prometheus) reads;
this module builds its source from the fleet file's ``gate:`` section and says whether a
reading is a breach: more than ``max_5xx_ratio`` of at least ``min_requests`` responses,
or (fewer responses) more errors than ``max_5xx_ratio * min_requests``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import os
from collections.abc import Sequence
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.fleet.model import Gate

BREACH, PASS, TOO_FEW = "breach", "pass", "too few requests"
DO_API = "https://api.digitalocean.com"


def _gate_package() -> Any:
    # Looked up at call time (not imported at the top): the module the gate is at now.
    try:
        return importlib.import_module("provisioner.gate")
    except ImportError as e:
        raise ProvisionError("the error-rate gate (provisioner.gate) is not part of this "
                             "build: the fleet's bake cannot read a 5xx ratio") from e


REGION = "$region"
"""In a Prometheus query: the region's environment name, so each region is read alone."""


def source(gate: Gate, token: str, region: str = "") -> Any:
    """The gate package's GateSource for the fleet file's ``gate:``; with ``region``, a
    Prometheus query's ``$region`` becomes that environment's name."""
    module = _gate_package()
    if gate.source == "prometheus":
        def fill(query: str | None) -> str:
            return (query or "").replace(REGION, region) if region else query or ""

        return module.GateSource(kind="prometheus", url=gate.url or "",
                                 query=fill(gate.query), total_query=fill(gate.total_query))
    end_point = os.environ.get("DIGITALOCEAN_END_POINT", "").strip() or DO_API
    return module.GateSource(kind="digitalocean", api_url=end_point, token=token)


def read(gate: Gate, token: str, load_balancer_ids: Sequence[str], now: dt.datetime,
         region: str = "") -> Any:
    """One reading (provisioner.gate.GateReading) of ``region`` over the gate's window
    ending ``now``."""
    return _gate_package().read_error_rate(source(gate, token, region),
                                           load_balancer_ids=list(load_balancer_ids),
                                           window_seconds=gate.window_seconds, now=now)


def verdict(gate: Gate, reading: Any) -> str:
    """BREACH, PASS, or TOO_FEW (fewer than min_requests: nothing can be said yet)."""
    if reading.requests < gate.min_requests:
        # min_requests keeps one 5xx in a handful from counting as a breach; it must not
        # shield a region whose errors alone would breach the gate at min_requests.
        if reading.errors > gate.max_5xx_ratio * gate.min_requests:
            return BREACH
        return TOO_FEW
    ratio = reading.errors / reading.requests
    return BREACH if ratio > gate.max_5xx_ratio else PASS


def describe(gate: Gate, reading: Any) -> str:
    ratio = (f"{reading.errors / reading.requests:.4f}" if reading.requests else "none")
    return (f"5xx ratio {ratio} ({reading.errors} of {reading.requests} responses in the "
            f"last {reading.window_seconds // 60}m, {reading.source}: {reading.detail}); "
            f"gate.max_5xx_ratio {gate.max_5xx_ratio}, gate.min_requests {gate.min_requests}")
