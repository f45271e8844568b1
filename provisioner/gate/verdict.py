"""What a reading means against the fleet's gate: pass, breach, or too little traffic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .source import GateReading


@dataclass(frozen=True)
class Verdict:
    """The gate's decision and the sentence that explains it to the user."""

    outcome: Literal["pass", "breach", "too_few_requests"]
    message: str


def judge(reading: GateReading, *, max_ratio: float, min_requests: int) -> Verdict:
    """A breach needs at least ``min_requests`` responses: a handful of requests with one
    5xx is noise, not a failed region, so too few requests is its own outcome (the
    rollout keeps baking or asks the user; it does not roll back on it)."""
    seen = (f"{reading.errors} of {reading.requests} responses were 5xx in the last "
            f"{reading.window_seconds} s ({reading.detail})")
    ratio = reading.ratio
    if ratio is None or reading.requests < min_requests:
        return Verdict("too_few_requests",
                       f"{seen}: fewer than the gate's minimum of {min_requests} requests")
    if ratio > max_ratio:
        return Verdict("breach", f"{seen}: ratio {ratio:.4f} is above the threshold {max_ratio}")
    return Verdict("pass", f"{seen}: ratio {ratio:.4f} is within the threshold {max_ratio}")
