"""Which regions the fleet's global load balancer sends users to: evacuations, recorded.

Every evacuation and restore is appended to ``traffic.json`` in the fleet's work folder
(``.provision/<fleet>.fleet/`` beside the fleet file: environment names are DNS labels, so
never ``<name>.fleet``): who, when, why. The regions evacuated now are those whose last
record is an evacuation. `provision status FLEET` shows them and the history.

The global load balancer itself is applied in one place, :func:`apply_global_lb`.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.errors import UsageError
from provisioner.fleet.model import Fleet, Member
from provisioner.lb_names import load_balancer

RECORD = "traffic.json"
KEPT = 500
"""Newest records kept in traffic.json."""


def work_folder(fleet: Fleet) -> Path:
    return (fleet.path.parent / ".provision" / f"{fleet.name}.fleet").resolve()


def history(fleet: Fleet) -> list[dict[str, Any]]:
    from provisioner.render.writer import read_list

    return [r for r in read_list(work_folder(fleet) / RECORD) if isinstance(r, dict)]


def evacuated(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Region (environment name) -> its evacuation record, for the regions out now."""
    out: dict[str, dict[str, Any]] = {}
    for record in history(fleet):
        region = str(record.get("region"))
        if record.get("action") == "evacuate":
            out[region] = record
        elif record.get("action") == "restore":
            out.pop(region, None)
    return {name: r for name, r in out.items() if name in {m.name for m in fleet.members}}


def targets(fleet: Fleet, out: set[str]) -> dict[str, list[str]]:
    """Region -> the names of its apps' load balancers (lb_names.py), regions still in."""
    return {m.name: [load_balancer(m.name, a.name) for a in m.env.apps
                     if a.expose == "load_balancer"]
            for _, m in fleet.ordered() if m.name not in out}


@dataclass(frozen=True)
class Change:
    """What an evacuation or restore did."""

    region: str
    action: str
    record: dict[str, Any] | None  # None: nothing to change (already so)
    targets: dict[str, list[str]]
    applied: str


def apply_global_lb(fleet: Fleet, out: set[str]) -> str:
    """THE call site for the global load balancer: make its targets the regions not in
    ``out``. Until the global load balancer's Terraform root module is merged (issue 16,
    the gate's side), nothing is applied: what would be is returned for the user to see."""
    wanted = targets(fleet, out)
    return ("not applied yet (the global load balancer's Terraform is not part of this "
            "build); it would send users to: "
            + ("; ".join(f"{r}: {', '.join(lbs) or 'no load balancer'}"
                         for r, lbs in wanted.items()) or "no region"))


def _record(fleet: Fleet, record: dict[str, Any]) -> None:
    from provisioner.render.writer import write_file

    records = [*history(fleet), record][-KEPT:]
    write_file(work_folder(fleet) / RECORD, json.dumps(records, indent=2) + "\n")


def evacuate(fleet: Fleet, member: Member, reason: str, by: str,
             now: dt.datetime | None = None, automatic: bool = False) -> Change:
    """Take ``member``'s region out of the global load balancer's targets, recorded."""
    if not reason.strip():
        raise UsageError("--reason TEXT is required: an evacuation is recorded with its why")
    out = set(evacuated(fleet))
    if member.name in out:
        return Change(member.name, "evacuate", None, targets(fleet, out), "")
    if len(out | {member.name}) == len(fleet.members):
        raise UsageError(f"evacuating {member.name} would leave no region serving "
                         f"({', '.join(sorted(out)) or 'none'} already out): restore one "
                         "first with `provision restore-traffic FLEET --region R`")
    record = {"action": "evacuate", "region": member.name, "reason": reason.strip(),
              "by": by, "automatic": automatic,
              "at": (now or clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")}
    _record(fleet, record)
    out.add(member.name)
    return Change(member.name, "evacuate", record, targets(fleet, out),
                  apply_global_lb(fleet, out))


def restore(fleet: Fleet, member: Member, by: str, reason: str = "",
            now: dt.datetime | None = None) -> Change:
    """Put ``member``'s region back among the global load balancer's targets, recorded."""
    out = set(evacuated(fleet))
    if member.name not in out:
        return Change(member.name, "restore", None, targets(fleet, out), "")
    record = {"action": "restore", "region": member.name, "reason": reason.strip(),
              "by": by, "automatic": False,
              "at": (now or clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")}
    _record(fleet, record)
    out.discard(member.name)
    return Change(member.name, "restore", record, targets(fleet, out),
                  apply_global_lb(fleet, out))


def status(fleet: Fleet) -> dict[str, Any]:
    """For `provision status FLEET`: regions out now, the targets, the recent history."""
    out = evacuated(fleet)
    return {"evacuated": out, "targets": targets(fleet, set(out)),
            "history": history(fleet)[-20:]}


def format_status(data: dict[str, Any]) -> str:
    lines = ["\nTraffic (global load balancer):"]
    for region, lbs in data["targets"].items():
        lines.append(f"  {region}: serving through {', '.join(lbs) or 'no load balancer'}")
    for region, r in data["evacuated"].items():
        lines.append(f"  {region}: EVACUATED since {r['at']} by {r['by']}: {r['reason']}"
                     + (" (automatic, gate breach)" if r.get("automatic") else ""))
    if data["history"]:
        lines.append("  history:")
        lines += [f"    {r.get('at')} {r.get('action')} {r.get('region')} by {r.get('by')}"
                  + (f": {r.get('reason')}" if r.get("reason") else "")
                  for r in data["history"]]
    return "\n".join(lines) + "\n"
