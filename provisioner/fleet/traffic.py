"""Which regions the fleet's global load balancer sends users to: evacuations, recorded.

Every evacuation and restore is appended to ``traffic.json`` in the fleet's work folder
(``.provision/<fleet>.fleet/`` beside the fleet file: environment names are DNS labels, so
never ``<name>.fleet``): who, when, why. The regions evacuated now are those whose last
record is an evacuation. `provision status FLEET` shows them and the history.

The global load balancer itself is applied in one place, :func:`apply_global_lb` (the
gate package's root module, terraform/fleet/, with its own state in
``.provision/<fleet>.fleet/global-lb/``): `up FLEET` makes or updates it once every region
is up, evacuate and restore change only its targets, `destroy FLEET` removes it first.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.errors import ProvisionError, UsageError
from provisioner.fleet.model import Fleet, Member
from provisioner.lb_names import load_balancer

RECORD = "traffic.json"
GLB_FOLDER = "global-lb"
APPLIED = "applied.json"
"""What the last apply of the global load balancer sent users to (for `status`)."""
KEPT = 500
"""Newest records kept in traffic.json."""


def work_folder(fleet: Fleet) -> Path:
    return (fleet.path.parent / ".provision" / f"{fleet.name}.fleet").resolve()


@contextmanager
def locked(fleet: Fleet, command: str) -> Iterator[None]:
    """The fleet's work folder held by this run alone (provisioner/lock.py, the project's
    one-writer lock): reading traffic.json, applying the global load balancer and
    recording happen as one step, or two operators' applies could end in an order that
    sends users to a region the record calls evacuated. Another holder: Busy (exit 3)."""
    from provisioner.lock import exclusive

    with exclusive(work_folder(fleet), command):
        yield


def history(fleet: Fleet) -> list[dict[str, Any]]:
    """traffic.json's records ([] before the first). Not a mere history: it is the one
    record of which regions are out, so a damaged file stops the command (exit 2) and is
    left as it is, never read as empty and then overwritten."""
    import errno

    from provisioner.render.writer import read_regular

    path = work_folder(fleet) / RECORD
    fix = "repair it by hand (it is a JSON list of records), then run the command again"
    try:
        found = json.loads(read_regular(path).decode("utf-8"))
    except FileNotFoundError:
        return []
    except OSError as e:
        if e.errno == errno.ENOENT:
            return []
        raise UsageError(f"{path}: cannot read the fleet's traffic record: "
                         f"{e.strerror}; {fix}") from e
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}:{e.lineno}: not valid JSON ({e.msg}): the record of which "
                         f"regions are evacuated cannot be read; {fix}") from e
    except ValueError as e:
        raise UsageError(f"{path}: not valid UTF-8 JSON; {fix}") from e
    if not isinstance(found, list):
        raise UsageError(f"{path}: expected a JSON list of records; {fix}")
    return [r for r in found if isinstance(r, dict)]


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


def glb_work(fleet: Fleet) -> Path:
    """The global load balancer's own work folder: its module, tfvars and state."""
    return work_folder(fleet) / GLB_FOLDER


def _state_resources(fleet: Fleet) -> list[Any]:
    try:
        state = json.loads((glb_work(fleet) / "state" / "terraform.tfstate").read_text())
    except (OSError, ValueError):
        return []
    resources = state.get("resources") if isinstance(state, dict) else None
    return [r for r in resources or [] if isinstance(r, dict) and r.get("instances")]


def exists(fleet: Fleet) -> bool:
    """Whether the fleet's global load balancer is in its Terraform state (made by `up`)."""
    return bool(_state_resources(fleet))


def applied(fleet: Fleet) -> dict[str, Any]:
    """What the last apply sent the global load balancer to (``{}`` before the first)."""
    try:
        data = json.loads((glb_work(fleet) / APPLIED).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and exists(fleet) else {}


def regional_ids(fleet: Fleet, out: set[str], token: str) -> tuple[dict[str, dict[str, str]],
                                                                   list[str]]:
    """Region -> {load balancer name: id} of the regions not in ``out``, found by name in
    the account (cloud/inventory.py); and the regions in whose none is found yet (the
    cloud controller manager makes an app's load balancer once the app is deployed)."""
    from provisioner.cloud.inventory import app_load_balancers

    found: dict[str, dict[str, str]] = {}
    missing: list[str] = []
    for _, m in fleet.ordered():
        if m.name in out:
            continue
        lbs = app_load_balancers(m.env, token)
        if lbs:
            found[m.name] = dict(sorted(lbs.items()))
        elif targets(fleet, set()).get(m.name):
            missing.append(m.name)
    return found, missing


def apply_global_lb(fleet: Fleet, out: set[str], *, create: bool = False,
                    engine: Any = None, on_event: Any = None) -> str:
    """THE call site for the global load balancer: make its targets the app load balancers
    of the regions not in ``out`` (provisioner/gate/global_lb.py, real Terraform through
    the runner, state in :func:`glb_work`). ``create`` (`up`): make it when there is none;
    otherwise (evacuate, restore) a fleet without one only has its record changed.
    Returns what was done, for the user."""
    from provisioner.cloud.token import api_token
    from provisioner.gate.global_lb import apply_global_lb as apply_module
    from provisioner.gate.global_lb import render_global_lb
    from provisioner.infra.engine import resolve
    from provisioner.render.writer import write_file

    if not create and not exists(fleet):
        return ("no global load balancer yet (`provision up FLEET` makes it once every "
                "region is up): recorded only")
    token = api_token()
    found, missing = regional_ids(fleet, out, token)
    if not found and exists(fleet):
        # The global load balancer still sends users where it did: saying "done" here
        # would record a region as out while users still reach it.
        raise ProvisionError(
            f"the global load balancer of fleet {fleet.name} was not changed: none of the "
            f"app load balancers of {', '.join(missing) or 'the regions left'} is in the "
            "account now (the cloud controller manager may be recreating them); nothing "
            "was recorded, run the command again once they are back")
    if not found:
        return ("not applied: no region's app load balancer is in the account yet (the "
                "cloud controller manager makes one once an app with `expose: "
                "load_balancer` is deployed); `provision up FLEET` again after `deploy`")
    by_name = {name: lb for lbs in found.values() for name, lb in lbs.items()}
    values = render_global_lb(fleet.name, by_name, set())
    run = apply_module(glb_work(fleet), values, engine=engine or resolve(), token=token,
                       on_event=on_event)
    record = {"id": run.outputs.get("global_load_balancer_id"),
              "ip": run.outputs.get("global_load_balancer_ip"),
              "name": values["name"], "targets": found, "out": sorted(out),
              "missing": missing, "at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")}
    write_file(glb_work(fleet) / APPLIED, json.dumps(record, indent=2) + "\n")
    actions = sorted({c.action for c in run.plan.changes})
    done = ", ".join(actions) or "no change"
    text = (f"{values['name']} ({done}): sends users to "
            + "; ".join(f"{r}: {', '.join(lbs)}" for r, lbs in found.items()))
    if out:
        text += f"; out: {', '.join(sorted(out))}"
    if missing:
        text += (f"; no load balancer yet in {', '.join(missing)} (deploy its apps, then "
                 "`provision up FLEET` again)")
    return text


def destroy_global_lb(fleet: Fleet, *, engine: Any = None, on_event: Any = None) -> str:
    """Destroy the fleet's global load balancer (`destroy FLEET` does it first, before any
    region's load balancers it sends users to); '' when there is none."""
    from provisioner.cloud.token import api_token
    from provisioner.gate.global_lb import destroy_global_lb as destroy_module
    from provisioner.infra.engine import resolve

    if not exists(fleet):
        return ""
    run = destroy_module(glb_work(fleet), engine=engine or resolve(), token=api_token(),
                         on_event=on_event)
    (glb_work(fleet) / APPLIED).unlink(missing_ok=True)
    return f"destroyed the global load balancer ({len(run.plan.changes)} resource(s))"


def _record(fleet: Fleet, record: dict[str, Any]) -> None:
    from provisioner.render.writer import write_file

    records = [*history(fleet), record][-KEPT:]
    write_file(work_folder(fleet) / RECORD, json.dumps(records, indent=2) + "\n")


def evacuate(fleet: Fleet, member: Member, reason: str, by: str,
             now: dt.datetime | None = None, automatic: bool = False) -> Change:
    """Take ``member``'s region out of the global load balancer's targets, recorded."""
    if not reason.strip():
        raise UsageError("--reason TEXT is required: an evacuation is recorded with its why")
    with locked(fleet, "evacuate"):
        return _evacuate(fleet, member, reason, by, now, automatic)


def _evacuate(fleet: Fleet, member: Member, reason: str, by: str,
              now: dt.datetime | None, automatic: bool) -> Change:
    out = set(evacuated(fleet))
    if member.name in out:
        return Change(member.name, "evacuate", None, targets(fleet, out), "")
    if len(out | {member.name}) == len(fleet.members):
        raise UsageError(f"evacuating {member.name} would leave no region serving "
                         f"({', '.join(sorted(out)) or 'none'} already out): restore one "
                         "first with `provision restore-traffic FLEET --region R`")
    out.add(member.name)
    return _apply_and_record(fleet, member, "evacuate", out, reason, by, automatic, now)


def restore(fleet: Fleet, member: Member, by: str, reason: str = "",
            now: dt.datetime | None = None) -> Change:
    """Put ``member``'s region back among the global load balancer's targets, recorded."""
    with locked(fleet, "restore-traffic"):
        return _restore(fleet, member, by, reason, now)


def _restore(fleet: Fleet, member: Member, by: str, reason: str,
             now: dt.datetime | None) -> Change:
    out = set(evacuated(fleet))
    if member.name not in out:
        return Change(member.name, "restore", None, targets(fleet, out), "")
    out.discard(member.name)
    return _apply_and_record(fleet, member, "restore", out, reason, by, False, now)


def _apply_and_record(fleet: Fleet, member: Member, action: str, out: set[str], reason: str,
                      by: str, automatic: bool, now: dt.datetime | None) -> Change:
    """Apply the targets without the regions ``out``, then record ``action``: applied first,
    so a failed apply (exit 1) leaves no record claiming a region is out while users still
    reach it (or back while they do not)."""
    record = {"action": action, "region": member.name, "reason": reason.strip(),
              "by": by, "automatic": automatic,
              "at": (now or clock.now()).strftime("%Y-%m-%dT%H:%M:%SZ")}
    done = apply_global_lb(fleet, out)
    _record(fleet, record)
    return Change(member.name, action, record, targets(fleet, out), done)


def status(fleet: Fleet) -> dict[str, Any]:
    """For `provision status FLEET`: regions out now, the targets, the recent history."""
    out = evacuated(fleet)
    return {"evacuated": out, "targets": targets(fleet, set(out)),
            "global_load_balancer": applied(fleet), "history": history(fleet)[-20:]}


def format_status(data: dict[str, Any]) -> str:
    lines = ["\nTraffic (global load balancer):"]
    glb = data.get("global_load_balancer") or {}
    if glb:
        lines.append(f"  {glb.get('name')} id {glb.get('id')} ip {glb.get('ip') or '-'}, "
                     f"applied {glb.get('at')}; its targets:")
        lines += [f"    {region}: {', '.join(f'{n} ({i})' for n, i in lbs.items())}"
                  for region, lbs in glb.get("targets", {}).items()]
        if glb.get("out"):
            lines.append(f"    out: {', '.join(glb['out'])}")
    else:
        lines.append("  no global load balancer yet (`provision up FLEET` makes it)")
    for region, lbs in data["targets"].items():
        lines.append(f"  {region}: serving through {', '.join(lbs) or 'no load balancer'}")
    for region, r in data["evacuated"].items():
        lines.append(f"  {region}: EVACUATED since {r.get('at', '?')} by "
                     f"{r.get('by', '?')}: {r.get('reason', '')}"
                     + (" (automatic, gate breach)" if r.get("automatic") else ""))
    if data["history"]:
        lines.append("  history:")
        lines += [f"    {r.get('at')} {r.get('action')} {r.get('region')} by {r.get('by')}"
                  + (f": {r.get('reason')}" if r.get("reason") else "")
                  for r in data["history"]]
    return "\n".join(lines) + "\n"
