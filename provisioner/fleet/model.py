"""A fleet: several environment files (one cluster per region) and how they roll out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from provisioner.config.model import Environment

GateKind = Literal["digitalocean", "prometheus"]
OnBreach = Literal["rollback", "evacuate"]

DEFAULT_REGION_FAILURE = 0.001
"""Probability a whole region is down, when the fleet file gives none: about 8.8 hours a
year, an assumption (DigitalOcean publishes no per-region outage rate), said in `check`."""
DEFAULT_GLOBAL_LB = 0.9999
"""Availability of the global load balancer, when the fleet file gives none: the 99.99%
monthly uptime DigitalOcean's Global Load Balancers SLA commits to (digitalocean.com/sla/
global-load-balancers, last updated 2025-11-18). An input, not a measurement."""
DEFAULT_REGIONAL_LB = 0.999
"""Availability of a region's own (regional) load balancer in front of its apps, when the
fleet file gives none: the 99.9% of DigitalOcean's Regional Load Balancers SLA
(digitalocean.com/sla/regional-load-balancers)."""


@dataclass(frozen=True)
class Member:
    """One environment of the fleet: its file, as written and resolved, and what it holds."""

    path: Path  # resolved against the fleet file's folder
    written: str  # as the fleet file names it
    env: Environment

    @property
    def stem(self) -> str:
        """The file name without its suffix: ``fra1`` for ``fra1.yaml``."""
        return self.path.stem

    @property
    def name(self) -> str:
        return self.env.name


@dataclass(frozen=True)
class Rollout:
    """The order: the canary's environment alone, then each wave (environment names)."""

    canary: str
    waves: tuple[tuple[str, ...], ...]
    bake_seconds: int


@dataclass(frozen=True)
class Gate:
    """When a baking region counts as broken: more than ``max_5xx_ratio`` of at least
    ``min_requests`` responses in the last ``window_seconds`` were 5xx."""

    source: GateKind = "digitalocean"
    max_5xx_ratio: float = 0.01
    min_requests: int = 500
    window_seconds: int = 300
    interval_seconds: int = 60
    on_breach: OnBreach = "rollback"
    url: str | None = None  # prometheus: the server's base URL
    query: str | None = None  # prometheus: the PromQL counting the window's 5xx responses
    total_query: str | None = None  # prometheus: the PromQL counting all of them


@dataclass(frozen=True)
class Availability:
    """The inputs of the fleet's availability estimate (`provision check FLEET`)."""

    region_failure_probability: float = DEFAULT_REGION_FAILURE
    global_lb_availability: float = DEFAULT_GLOBAL_LB
    regional_lb_availability: float = DEFAULT_REGIONAL_LB
    droplet_availability: float = 0.999


@dataclass(frozen=True)
class Fleet:
    """A loaded, validated fleet file."""

    name: str
    path: Path
    members: tuple[Member, ...]  # in the file's order
    rollout: Rollout
    gate: Gate
    availability: Availability

    def member(self, name: str) -> Member:
        """The member whose environment is called ``name``."""
        return next(m for m in self.members if m.name == name)

    def stages(self) -> list[tuple[str, tuple[Member, ...]]]:
        """The rollout order: ("canary", (m,)), ("wave 1", (...)), ..."""
        stages: list[tuple[str, tuple[Member, ...]]] = [
            ("canary", (self.member(self.rollout.canary),))]
        for i, wave in enumerate(self.rollout.waves, start=1):
            stages.append((f"wave {i}", tuple(self.member(n) for n in wave)))
        return stages

    def ordered(self) -> list[tuple[str, Member]]:
        """Every member with its stage, canary first, then the waves in order."""
        return [(stage, m) for stage, members in self.stages() for m in members]

    def find(self, region: str) -> Member | None:
        """The member a user means by ``region``: its environment's name, its file's stem,
        or its DigitalOcean region when only one member is there."""
        for m in self.members:
            if region in (m.name, m.stem):
                return m
        there = [m for m in self.members if m.env.digitalocean.region == region]
        return there[0] if len(there) == 1 else None
