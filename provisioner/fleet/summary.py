"""One result per environment of a fleet-wide command, and the fleet's one summary."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from provisioner.errors import EXIT_CHANGES_PENDING

OK, FAILED, SKIPPED = "ok", "failed", "skipped"


@dataclass
class Outcome:
    """What a command did to one environment of the fleet."""

    name: str
    file: str
    stage: str  # "canary", "wave 1", ...
    status: str = SKIPPED  # ok, failed, skipped, refused, rolled back, ...
    exit_code: int = 0
    detail: str = ""
    result: Any = None  # the command's own JSON for this environment (--output json)
    timeline: list[dict[str, Any]] = field(default_factory=list)  # deploy: what happened when

    def as_json(self) -> dict[str, Any]:
        return {"environment": self.name, "file": self.file, "stage": self.stage,
                "status": self.status, "exit_code": self.exit_code, "detail": self.detail,
                "result": self.result, "timeline": self.timeline}


def worst(codes: Iterable[int]) -> int:
    """The fleet's exit code: a failure (1, 2, 3, ...) over "changes pending" (4) over 0;
    among failures the highest, so a refusal (3) or bad input (2) is not hidden by a 1."""
    found = set(codes) - {0}
    failures = found - {EXIT_CHANGES_PENDING}
    if failures:
        return max(failures)
    return EXIT_CHANGES_PENDING if found else 0


def as_json(fleet: str, command: str, outcomes: list[Outcome],
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The fleet-wide command's result for --output json."""
    return {"fleet": fleet, "command": command,
            "exit_code": worst(o.exit_code for o in outcomes),
            "environments": [o.as_json() for o in outcomes], **(extra or {})}


def format_summary(fleet: str, command: str, outcomes: list[Outcome]) -> str:
    """``fleet acme: deploy`` then one line per environment, in the order acted on."""
    width = max((len(o.name) for o in outcomes), default=4)
    stage_width = max((len(o.stage) for o in outcomes), default=6)
    lines = [f"\nfleet {fleet}: {command}"]
    for o in outcomes:
        code = f"exit {o.exit_code}" if o.status != SKIPPED else ""
        detail = f"  {o.detail}" if o.detail else ""
        lines.append(f"  {o.name:<{width}}  {o.stage:<{stage_width}}  {o.status:<11} "
                     f"{code:<7}{detail}".rstrip())
        lines += [f"      {e['at']}  {e['event']}{_event_detail(e)}" for e in o.timeline]
    lines.append(f"exit code {worst(o.exit_code for o in outcomes)}")
    return "\n".join(lines) + "\n"


def _event_detail(event: dict[str, Any]) -> str:
    """A timeline entry's particulars: a gate reading's figures, a summary, a time."""
    if event["event"] == "gate":
        ratio = "n/a" if event["ratio"] is None else f"{event['ratio']:.4f}"
        return (f": {event['verdict']}, {event['errors']}/{event['requests']} 5xx "
                f"(ratio {ratio})")
    for key in ("until", "summary", "reason"):
        if key in event:
            return f" {event[key]}" if key == "until" else f": {event[key]}"
    return ""
