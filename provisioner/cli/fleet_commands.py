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


def up_extra(fleet: Any, outcomes: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    """After every region is up: make or update the global load balancer (its targets:
    each region's app load balancers, found by name, minus the evacuated regions)."""
    from provisioner.cli.infra_options import ask
    from provisioner.errors import ProvisionError
    from provisioner.fleet import traffic
    from provisioner.fleet.summary import OK
    from provisioner.infra.engine import resolve

    out = console()
    if any(o.status != OK for o in outcomes):
        out.info("global load balancer: left as it is (not every region is up)")
        return {"global_load_balancer": {"applied": False, "why": "not every region is up"}}
    if not ask(f"Apply fleet {fleet.name}'s global load balancer?", bool(kwargs.get("yes"))):
        return {"global_load_balancer": {"applied": False, "why": "not confirmed"}}
    try:
        with traffic.locked(fleet, "up"):  # read, apply, record: one writer at a time
            done = traffic.apply_global_lb(
                fleet, set(traffic.evacuated(fleet)), create=True,
                engine=resolve(kwargs.get("terraform_bin"), kwargs.get("parallelism")))
    except ProvisionError as e:
        out.error(f"global load balancer: {e}")
        return {"global_load_balancer": {"applied": False, "why": str(e)},
                "exit_code": e.exit_code}
    out.info(f"global load balancer: {done}")
    return {"global_load_balancer": {"applied": True, "result": done,
                                     **traffic.applied(fleet)}}


def destroy_before(fleet: Any, kwargs: dict[str, Any]) -> None:
    """`destroy FLEET` removes the global load balancer first (it sends users to the
    regions' load balancers), once every region's window allows an infrastructure change:
    a refusal (exit 3) then leaves everything as it was."""
    from provisioner import clock
    from provisioner.cli.infra_options import ask
    from provisioner.cli.options import override_reason
    from provisioner.cloud.token import api_token
    from provisioner.fleet import traffic
    from provisioner.infra.engine import resolve
    from provisioner.pipeline.change_window import check_window
    from provisioner.pipeline.infra_stage import PolicyError
    from provisioner.workdir import Workdir

    if not traffic.exists(fleet):
        return
    out = console()
    override = override_reason(bool(kwargs.get("override_window")), kwargs.get("reason"))
    kept = "; nothing was destroyed, the global load balancer included"
    # Every refusal a region's own destroy would raise, known before the global load
    # balancer (the fleet's one entry point) is touched: a region refusing afterwards
    # would leave every region running and no user reaching any.
    api_token()
    for _, member in fleet.ordered():
        if member.env.deletion_protection and not kwargs.get("force"):
            raise PolicyError(f"{member.written} sets deletion_protection: true; refusing to "
                              f"destroy fleet {fleet.name}{kept}. Pass --force if you "
                              "really mean it.")
        check_window(member.env, "infrastructure", clock.now(), override, out.info, kept)
        with Workdir.for_config(member.path, member.env, None).locked("destroy"):
            pass  # another run holds this region's folder: Busy (exit 3) now, not later
    if not ask(f"Destroy fleet {fleet.name}'s global load balancer, then every region?",
               bool(kwargs.get("yes"))):
        raise UsageError("not confirmed: nothing was destroyed")
    with traffic.locked(fleet, "destroy"):
        done = traffic.destroy_global_lb(
            fleet, engine=resolve(kwargs.get("terraform_bin"), kwargs.get("parallelism")))
    out.info(f"global load balancer: {done}")


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
