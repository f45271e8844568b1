"""`provision deploy FLEET`: the canary, its bake under the gate, then each wave the same way.

For each stage (the canary alone, then each wave) and each of its environments: wait for the
environment's own deploy window (its deploy_policy, in its own time zone; or refuse with
``no_wait``, exit 3; or deploy anyway when overridden for that region), deploy it (the
single-environment deploy, pipeline/deploy_stage.py), then bake: for ``rollout.bake`` read
each of the stage's regions through the gate every ``gate.interval``. A breach (ratio above
``gate.max_5xx_ratio`` over at least ``gate.min_requests`` responses) rolls that region back
(workloads/rollback.py: blue/green switches back), evacuates it too with ``on_breach:
evacuate``, and stops the fleet with exit 1: later stages stay untouched. A bake in which a
region never saw ``min_requests`` responses stops the fleet too (exit 1, nothing rolled
back): the gate could not tell whether the release works.

Each region's work is behind :class:`Regions`, so the order, the waiting and the judging
are one Click-free function; the CLI passes the live regions (fleet/live.py).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from provisioner import clock
from provisioner.bootstrap.tokens import rfc3339
from provisioner.errors import EXIT_FAILURE, ProvisionError, UsageError
from provisioner.fleet import gating, traffic
from provisioner.fleet.model import Fleet, Member
from provisioner.fleet.summary import FAILED, OK, Outcome
from provisioner.pipeline.change_window import WindowClosed, governs
from provisioner.workloads import windows

Report = Callable[[str], None]
Sleep = Callable[[float], None]
LONGEST_NAP = 300.0
"""Seconds slept at most at once while waiting (a window, the next reading)."""


def nap(seconds: float) -> None:
    """Sleep: the rollout's one way to let time pass (tests move their pinned clock here)."""
    time.sleep(seconds)


class Regions(Protocol):
    """What the rollout does to one region (fleet/live.py: the real thing)."""

    def deploy(self, member: Member, override_reason: str | None, now: dt.datetime) -> str:
        """Deploy the apps; a one-line summary."""

    def rollback(self, member: Member) -> str:
        """Return the apps to what served before; a one-line summary."""

    def read_gate(self, member: Member, now: dt.datetime) -> Any:
        """One gate reading (provisioner.gate.GateReading) of the region's load balancers."""


class GateBreached(ProvisionError):
    """A baking region answered too many 5xx: rolled back, the fleet stopped."""

    exit_code = EXIT_FAILURE


@dataclass
class Result:
    """The rollout: each region's outcome (and timeline), and why it stopped, if it did."""

    outcomes: list[Outcome]
    error: ProvisionError | None = None
    log: list[str] = field(default_factory=list)


def _sleep_until(when: dt.datetime, sleep: Sleep) -> None:
    while (left := (when - clock.now()).total_seconds()) > 0:
        sleep(min(left, LONGEST_NAP))


@dataclass
class _Run:
    fleet: Fleet
    regions: Regions
    report: Report
    sleep: Sleep
    no_wait: bool
    overrides: dict[str, str]  # environment name -> reason
    by: str
    outcomes: dict[str, Outcome] = field(default_factory=dict)

    def event(self, member: Member, event: str, **detail: Any) -> None:
        entry = {"at": rfc3339(clock.now()), "event": event, **detail}
        self.outcomes[member.name].timeline.append(entry)

    def say(self, member: Member, text: str) -> None:
        self.report(f"{member.name} ({self.outcomes[member.name].stage}): {text}")

    def window(self, member: Member) -> str | None:
        """Wait for ``member``'s deploy window; the override reason to deploy with, if any."""
        env = member.env
        while governs(env, "apps"):
            decision = windows.decide(env.deploy_policy, clock.now())
            if decision.allowed:
                return None
            override = self.overrides.get(member.name)
            if override is not None:
                self.event(member, "window overridden", reason=override)
                return override
            when = decision.next_allowed
            if self.no_wait or when is None:
                nxt = f"; next allowed {when.isoformat(timespec='minutes')}" if when else ""
                raise WindowClosed(
                    f"{member.name}: deploys to {member.name} are not allowed now: "
                    f"{decision.reason}{nxt}. Leave out --no-wait to wait for it, or "
                    f"--override-window --reason TEXT --region {member.name}")
            self.say(member, f"{decision.reason}; waiting until "
                             f"{when.isoformat(timespec='minutes')}")
            self.event(member, "waiting for window", until=when.isoformat(timespec="minutes"))
            _sleep_until(when, self.sleep)
        return None

    def deploy(self, member: Member) -> None:
        override = self.window(member)
        self.event(member, "deploy started")
        summary = self.regions.deploy(member, override, clock.now())
        self.event(member, "deployed", summary=summary)
        self.say(member, f"deployed: {summary}")

    def bake(self, stage: tuple[Member, ...]) -> None:
        """Read the gate for every region of the stage until the bake time is over."""
        gate, seconds = self.fleet.gate, self.fleet.rollout.bake_seconds
        if seconds == 0:
            return
        end = clock.now() + dt.timedelta(seconds=seconds)
        for m in stage:
            self.event(m, "bake started", until=rfc3339(end))
            self.say(m, f"baking until {rfc3339(end)}, reading the gate every "
                        f"{gate.interval_seconds}s")
        judged: set[str] = set()
        while (left := (end - clock.now()).total_seconds()) > 0:
            self.sleep(min(float(gate.interval_seconds), left))
            now = clock.now()
            breached: list[tuple[Member, Any]] = []
            for m in stage:
                try:
                    reading = self.regions.read_gate(m, now)
                except ProvisionError as e:  # nothing known: stop, roll nothing back
                    self.event(m, "gate unreadable", reason=str(e).splitlines()[0])
                    self.blame(m, FAILED, e)
                    raise
                found = gating.verdict(gate, reading)
                self.event(m, "gate", requests=reading.requests, errors=reading.errors,
                           ratio=(reading.errors / reading.requests if reading.requests
                                  else None), verdict=found)
                self.say(m, f"gate {found}: {gating.describe(gate, reading)}")
                if found == gating.BREACH:
                    breached.append((m, reading))
                if found == gating.PASS:
                    judged.add(m.name)
            if breached:  # every region of the stage judged on this reading, then stop
                self.breach(breached)
        for m in stage:
            self.event(m, "bake done")
            if m.name not in judged:
                error = ProvisionError(
                    f"{m.name}: the gate could not judge the release: fewer than "
                    f"gate.min_requests {gate.min_requests} responses in every reading "
                    f"while baking; nothing was rolled back, the fleet stopped here (bake "
                    "longer, or lower gate.min_requests)")
                self.blame(m, FAILED, error)
                raise error

    def breach(self, breached: list[tuple[Member, Any]]) -> None:
        """Roll back (and with on_breach: evacuate, evacuate) every breaching region of
        the stage, then stop the fleet once, naming them all."""
        gate = self.fleet.gate
        said: list[tuple[Member, str]] = []
        for member, reading in breached:
            ratio = reading.errors / reading.requests if reading.requests else 1.0
            what = (f"{member.name}: the 5xx ratio {ratio:.4f} ({reading.errors} of "
                    f"{reading.requests} responses in the last "
                    f"{reading.window_seconds // 60}m) is above gate.max_5xx_ratio "
                    f"{gate.max_5xx_ratio}")
            back = self.regions.rollback(member)
            self.event(member, "rolled back", summary=back)
            self.say(member, f"rolled back: {back}")
            evacuated = ""
            if gate.on_breach == "evacuate":
                try:
                    change = traffic.evacuate(self.fleet, member, f"gate breach: {what}",
                                              self.by, automatic=True)
                except ProvisionError as e:  # the breach stays the error (exit 1)
                    why = str(e).splitlines()[0]
                    self.event(member, "evacuation refused", reason=why)
                    self.say(member, f"not evacuated: {why}")
                    evacuated = f" but not evacuated ({why})"
                else:
                    self.event(member, "evacuated", applied=change.applied)
                    self.say(member, f"evacuated: {change.applied}")
                    evacuated = " and evacuated"
            said.append((member, f"{what}: {member.name} was rolled back{evacuated} "
                                 f"({back})"))
        error = GateBreached("; ".join(text for _, text in said) + "; the fleet stopped here")
        for member, text in said:
            self.blame(member, "rolled back", GateBreached(text))
        raise error

    def blame(self, member: Member, status: str, error: ProvisionError) -> None:
        outcome = self.outcomes[member.name]
        outcome.status, outcome.exit_code = status, error.exit_code
        outcome.detail = str(error).splitlines()[0]


def preflight(fleet: Fleet) -> None:
    """Refuse before anything is deployed when a region's bake could read nothing."""
    if fleet.gate.source != "digitalocean" or fleet.rollout.bake_seconds == 0:
        return
    blind = [m.name for m in fleet.members if not any(a.expose == "load_balancer"
                                                       for a in m.env.apps)]
    if blind:
        raise UsageError(f"{fleet.path}: gate.source: digitalocean reads the apps' load "
                         f"balancers, and {', '.join(blind)} expose no app through one "
                         "(expose: load_balancer); use source: prometheus, or bake: 0s")


def roll_out(fleet: Fleet, regions: Regions, *, report: Report, sleep: Sleep | None = None,
             no_wait: bool = False, overrides: dict[str, str] | None = None,
             by: str = "") -> Result:
    """Deploy the fleet canary first, each stage baked under the gate (module docstring)."""
    preflight(fleet)
    run = _Run(fleet, regions, report, sleep or (lambda seconds: nap(seconds)), no_wait,
               overrides or {},
               by or windows.who_am_i())
    for stage, member in fleet.ordered():
        run.outcomes[member.name] = Outcome(member.name, member.written, stage)
    result = Result(list(run.outcomes.values()))
    for _stage, members in fleet.stages():
        current: Member | None = None
        try:
            for member in members:
                current = member
                run.deploy(member)
                run.outcomes[member.name].status = OK
            current = None
            run.bake(members)
        except ProvisionError as e:
            result.error = e
            if current is not None:  # its window refused it, or its deploy failed
                run.blame(current, "refused" if isinstance(e, WindowClosed) else FAILED, e)
            for m in members:
                if m is not current and run.outcomes[m.name].status == OK \
                        and not run.outcomes[m.name].detail:
                    run.outcomes[m.name].detail = "deployed; the fleet stopped in this stage"
            if all(o.exit_code == 0 for o in result.outcomes):
                # Whatever stopped the fleet, its exit code must say so.
                run.blame(members[0] if current is None else current, FAILED, e)
            return result
    return result
