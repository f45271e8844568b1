"""The fleet's global load balancer: its tfvars, and a plan/apply of its root module.

The module (terraform/fleet/, shipped as provision's data like terraform/) declares one
DigitalOcean load balancer of type GLOBAL whose ``target_load_balancer_ids`` are the
regional app load balancers of every region not evacuated. It pins the provider at
2.37.0, the first release with ``glb_settings`` and ``target_load_balancer_ids``
(digitalocean/terraform-provider-digitalocean CHANGELOG, #1133), while each environment's
module stays on 2.34.x, so it is a root module of its own with its own state, run by the
same Terraform runner (infra/workspace.py) as the environments' modules.

The work folder (``work``, e.g. ``.provision/fleet-<name>``) holds ``terraform/`` (the
module's files and terraform.tfvars.json) and ``state/terraform.tfstate``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import UsageError
from provisioner.infra import retries, runner
from provisioner.infra.changes import InfraPlan, plan_from_events
from provisioner.infra.engine import Engine
from provisioner.infra.runner import OnEvent
from provisioner.infra.workspace import LOCK_FILE, Workspace
from provisioner.render import tfvars as tfvars_text
from provisioner.render.writer import write_file
from provisioner.resources import data_dir

MODULE = "fleet"
PROVIDER_VERSION = "2.37.0"
ADDRESS = "digitalocean_loadbalancer.global"
LOCAL_STATE = "../state/terraform.tfstate"
# No 2.37.0 checksums could be recorded offline: the first init records the ones the
# registry serves (Terraform's trust on first use), and every later init checks them.
_EMPTY_LOCK = ("# The DigitalOcean provider's checksums: recorded by the first "
               "`terraform init`, checked by every later one.\n")


def global_lb_name(fleet_name: str) -> str:
    """``<fleet>.fleet.global``: two dots, so never equal to an environment's load balancer
    name (``<env>.<component>``, one dot: provisioner/lb_names.py)."""
    return f"{fleet_name}.fleet.global"


def render_global_lb(fleet_name: str, regional_lb_ids: Mapping[str, str],
                     evacuated: set[str], *, domains: Sequence[Mapping[str, Any]] = (),
                     target_protocol: str = "http", target_port: int = 80,
                     cdn: bool = False) -> dict[str, Any]:
    """The module's terraform.tfvars.json values.

    ``regional_lb_ids`` maps each region (the environment's name or region slug, as the
    fleet names them) to its app load balancer's id; the evacuated ones are left out.
    Targets are sorted, so the same fleet gives the same bytes (and no spurious diff).
    """
    unknown = sorted(set(evacuated) - set(regional_lb_ids))
    if unknown:
        raise UsageError(f"cannot evacuate {', '.join(unknown)}: not a region of fleet "
                         f"{fleet_name} ({', '.join(sorted(regional_lb_ids)) or 'none'})")
    targets = sorted(lb for region, lb in regional_lb_ids.items() if region not in evacuated)
    if not targets:
        raise UsageError(f"fleet {fleet_name}: evacuating {', '.join(sorted(evacuated))} "
                         "would leave the global load balancer with no region to send "
                         "traffic to; restore a region first (provision restore-traffic)")
    if target_protocol not in ("http", "https") or target_port not in (80, 443):
        # glb_settings' own validation at 2.37.0: StringInSlice http/https, IntInSlice 80/443
        raise UsageError("global load balancer: target protocol http or https, port 80 or "
                         f"443 (got {target_protocol} {target_port})")
    return {
        "name": global_lb_name(fleet_name),
        "target_load_balancer_ids": targets,
        "target_protocol": target_protocol,
        "target_port": target_port,
        "domains": [{"name": str(d["name"]), "is_managed": bool(d.get("is_managed", False)),
                     "certificate_name": d.get("certificate_name")} for d in domains],
        "cdn": cdn,
    }


def write_module(work: Path, values: Mapping[str, Any]) -> Path:
    """Write the module, its tfvars and backend into ``work/terraform``; return that folder."""
    module = work / "terraform"
    for source in sorted((data_dir("terraform") / MODULE).glob("*.tf")):
        write_file(module / source.name, source.read_text(encoding="utf-8"))
    write_file(module / "terraform.tfvars.json", tfvars_text.dumps(dict(values)), 0o600)
    write_file(module / "backend.tf.json", tfvars_text.dumps(
        {"terraform": {"backend": {"local": {"path": LOCAL_STATE}}}}))
    (work / "state").mkdir(mode=0o700, parents=True, exist_ok=True)
    if not (module / LOCK_FILE).exists():
        # Before Workspace.init, which would seed the environments' 2.34.1 lock: that lock
        # cannot satisfy this module's "= 2.37.0".
        write_file(module / LOCK_FILE, _EMPTY_LOCK)
    return module


@dataclass(frozen=True)
class GlobalLbRun:
    """What one run changed and what the load balancer looks like after it."""

    plan: InfraPlan
    outputs: dict[str, Any]  # empty after a plan-only run


def apply_global_lb(work: Path, values: Mapping[str, Any], *, engine: Engine, token: str,
                    on_event: OnEvent | None = None, plan_only: bool = False) -> GlobalLbRun:
    """Plan (and unless ``plan_only`` apply) the global load balancer with ``values``
    (:func:`render_global_lb`). Terraform failures raise InfraError (exit 1)."""
    module = write_module(work, values)
    # The provider's 429 retries as for the environments (infra/retries.py).
    env = runner.base_env({**retries.provider_env(), "DIGITALOCEAN_TOKEN": token})
    workspace = Workspace(engine, module, env, on_event)
    workspace.init()
    planfile = work / "state" / "global-lb.tfplan"
    result = workspace.plan(planfile)
    plan = plan_from_events(result.events, {ADDRESS: str(values.get("name", ADDRESS))})
    if plan_only:
        return GlobalLbRun(plan, {})
    applied = workspace.apply(planfile)
    outputs = Workspace.streamed_outputs(applied) or workspace.outputs()
    return GlobalLbRun(plan, outputs)


def destroy_global_lb(work: Path, *, engine: Engine, token: str,
                      on_event: OnEvent | None = None) -> GlobalLbRun:
    """Destroy the global load balancer of ``work`` (its module and state as the last
    :func:`apply_global_lb` left them): a destroy plan, applied. The regional load
    balancers it sent users to are not in this state, so they are never touched."""
    module = work / "terraform"
    if not (module / "terraform.tfvars.json").is_file():
        raise UsageError(f"no global load balancer module in {module}: nothing to destroy")
    env = runner.base_env({**retries.provider_env(), "DIGITALOCEAN_TOKEN": token})
    workspace = Workspace(engine, module, env, on_event)
    workspace.init()
    planfile = work / "state" / "global-lb-destroy.tfplan"
    result = workspace.plan(planfile, destroy=True)
    plan = plan_from_events(result.events, {ADDRESS: ADDRESS})
    workspace.apply(planfile)
    planfile.unlink(missing_ok=True)
    return GlobalLbRun(plan, {})
