"""What only a fleet has: its gated deploy, evacuate and restore-traffic, and the fleet-wide
additions to status and check. The loop over environments is cli/fleet.py's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import finish, fleet_of
from provisioner.errors import UsageError


def _fleet(config: Path) -> Any:
    fleet = fleet_of(config)
    if fleet is None:
        raise UsageError(f"{config} is not a fleet file (a fleet file starts with `fleet: "
                         "NAME`); evacuation moves traffic between a fleet's regions")
    return fleet


def _member(fleet: Any, region: str) -> Any:
    member = fleet.find(region)
    if member is None:
        raise UsageError(f"--region {region}: not one of fleet {fleet.name}'s environments "
                         f"({', '.join(m.name for m in fleet.members)})")
    return member


def deploy_fleet(fleet: Any, *, override_window: bool, reason: str | None,
                 regions: tuple[str, ...], no_wait: bool, force_conflicts: bool,
                 timeout: int, output: str = "text", **_ignored: Any) -> None:
    """`provision deploy FLEET`: the gated rollout (fleet/rollout.py), then the summary."""
    from provisioner.cli.options import override_reason
    from provisioner.fleet.live import LiveRegions
    from provisioner.fleet.rollout import roll_out

    override = override_reason(override_window, reason)
    chosen = [_member(fleet, r).name for r in regions] or [m.name for m in fleet.members]
    overrides = {name: override for name in chosen} if override is not None else {}
    out = console()
    result = roll_out(fleet, LiveRegions(fleet, out.info, force_conflicts=force_conflicts,
                                         timeout=float(timeout)),
                      report=out.info, no_wait=no_wait, overrides=overrides)
    if result.error is not None:
        out.error(str(result.error))
    finish(fleet, "deploy", result.outcomes, as_json=output == "json",
           extra={"stopped": str(result.error) if result.error is not None else None})


def status_extra(fleet: Any, outcomes: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    from provisioner.fleet import traffic

    data = traffic.status(fleet)
    return {"traffic": data, "text": traffic.format_status(data)}


def check_extra(fleet: Any, outcomes: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    from provisioner.fleet.availability import format_report, report

    data = report(fleet)
    return {"availability": data, "text": "\n" + format_report(data)}


region_option = click.option("--region", "region", required=True, metavar="R",
                             help="The region: its environment's name or file stem.")


@click.command("evacuate", epilog="""\b
Examples:
  provision evacuate fleet.yaml --region fra1 --reason "INC-77: 5xx in fra1"
  provision status fleet.yaml          # the regions out, who took them out and why""")
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False), metavar="FLEET")
@region_option
@click.option("--reason", required=True, help="Why (recorded with who and when).")
@reports_errors
def evacuate(config: Path, region: str, reason: str) -> None:
    """Take a region out of the fleet's global load balancer: users go to the others.

    Recorded in the fleet's work folder (.provision/<fleet>.fleet/traffic.json: who, when,
    why), shown by `provision status FLEET`. Refuses to take out the last region serving.
    """
    from provisioner.fleet import traffic
    from provisioner.workloads.windows import who_am_i

    fleet = _fleet(config)
    change = traffic.evacuate(fleet, _member(fleet, region), reason, who_am_i())
    out = console()
    if change.record is None:
        out.info(f"{change.region} is already evacuated; nothing changed")
        return
    out.info(f"evacuated {change.region}: {reason.strip()}")
    out.info(f"global load balancer: {change.applied}")


@click.command("restore-traffic", epilog="""\b
Examples:
  provision restore-traffic fleet.yaml --region fra1
  provision restore-traffic fleet.yaml --region fra1 --reason "INC-77 fixed" """)
@click.argument("config", type=click.Path(path_type=Path, dir_okay=False), metavar="FLEET")
@region_option
@click.option("--reason", default="", help="Why (recorded with who and when).")
@reports_errors
def restore_traffic(config: Path, region: str, reason: str) -> None:
    """Put an evacuated region back among the global load balancer's targets (recorded)."""
    from provisioner.fleet import traffic
    from provisioner.workloads.windows import who_am_i

    fleet = _fleet(config)
    change = traffic.restore(fleet, _member(fleet, region), who_am_i(), reason)
    out = console()
    if change.record is None:
        out.info(f"{change.region} is not evacuated; nothing changed")
        return
    out.info(f"restored traffic to {change.region}")
    out.info(f"global load balancer: {change.applied}")
