"""The infrastructure stage: plan and apply the rendered module through Terraform."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError, UsageError
from provisioner.infra import runner
from provisioner.infra.changes import InfraPlan, parse_plan
from provisioner.infra.engine import Engine
from provisioner.infra.runner import OnEvent
from provisioner.infra.workspace import Workspace
from provisioner.pipeline.prepare import Prepared
from provisioner.render.writer import write_file


class PolicyError(ProvisionError):
    """A safety rule refused the change; nothing was applied."""

    exit_code = 3


def _spaces_credentials(prepared: Prepared) -> dict[str, str]:
    """Spaces keys for the S3 backend: SPACES_* (doctl's names) or the AWS_* ones."""
    if prepared.env.state.backend != "spaces":
        return {}
    access = os.environ.get("SPACES_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = (os.environ.get("SPACES_SECRET_ACCESS_KEY")
              or os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if not access or not secret:
        raise UsageError("state.backend is spaces but no Spaces key is set: export "
                         "SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY")
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}


def terraform_env(prepared: Prepared, token: str) -> dict[str, str]:
    """Terraform's environment: the API token and the bootstrap secrets, never on disk."""
    return runner.base_env({
        "DIGITALOCEAN_TOKEN": token,
        "TF_VAR_bootstrap_secrets": json.dumps(prepared.secrets.terraform_values()),
        **_spaces_credentials(prepared),
    })


def workspace(prepared: Prepared, engine: Engine, token: str,
              on_event: OnEvent | None = None) -> Workspace:
    """The Terraform workspace of the rendered module, initialised."""
    ws = Workspace(engine, prepared.work.root / "terraform", terraform_env(prepared, token),
                   on_event)
    (prepared.work.root / "state").mkdir(mode=0o700, exist_ok=True)
    ws.init()
    return ws


def plan(ws: Workspace, planfile: Path, destroy: bool = False) -> InfraPlan:
    """Plan into ``planfile`` and read it back."""
    planfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    ws.plan(planfile, destroy=destroy)
    return parse_plan(ws.show(planfile))


def read_saved_plan(ws: Workspace, planfile: Path, env_name: str) -> InfraPlan:
    """A plan saved by ``provision plan --out``, checked to belong to this environment."""
    if not planfile.is_file():
        raise UsageError(f"plan file {planfile} does not exist")
    document = ws.show(planfile.resolve())
    name = document.get("variables", {}).get("name", {}).get("value")
    if name != env_name:
        raise UsageError(f"plan file {planfile} was made for environment {name!r}, "
                         f"not {env_name!r}")
    return parse_plan(document)


def guard_control_plane(infra_plan: InfraPlan, allowed: bool) -> None:
    """Refuse to delete or replace an etcd member unless the user said so explicitly."""
    # Updates count too: a resize powers the droplet off, and Terraform would do all at once.
    risky = [c for c in infra_plan.pending if c.control_plane and c.action != "create"]
    if risky and not allowed:
        names = ", ".join(f"{c.name} ({c.action}" + (f" {', '.join(c.attributes)})"
                                                      if c.attributes else ")") for c in risky)
        raise PolicyError(f"this plan changes control-plane droplet(s): {names}. Each holds an "
                          "etcd member; changing several at once can cost quorum. Re-run with "
                          "--allow-control-plane-changes if intended.")


def apply(ws: Workspace, planfile: Path, prepared: Prepared) -> dict[str, Any]:
    """Apply the saved plan and record the outputs for the next stages."""
    ws.apply(planfile.resolve())
    outputs = ws.outputs()
    write_file(prepared.work.root / "infrastructure.json",
               json.dumps(outputs, indent=2, sort_keys=True) + "\n")
    return outputs
