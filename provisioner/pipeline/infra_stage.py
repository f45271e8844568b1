"""The infrastructure stage: plan and apply the rendered module through Terraform."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError, UsageError
from provisioner.infra import parallelism, retries, runner
from provisioner.infra.changes import Change, InfraPlan, parse_plan, plan_from_events
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
    from provisioner.cloud.spaces import credentials

    if prepared.env.state.backend != "spaces":
        return {}
    access, secret = credentials()
    return {"AWS_ACCESS_KEY_ID": access, "AWS_SECRET_ACCESS_KEY": secret}


# A token for the control-plane nodes' failover agent, scoped to reserved IPs only.
FAILOVER_TOKEN_VAR = "PROVISION_FAILOVER_TOKEN"
FAILOVER_SCOPES = "reserved_ip:read, reserved_ip:update and droplet:read"


class FullTokenRefused(UsageError):
    """The failover agent would receive the operator's full read/write token."""


def failover_token(prepared: Prepared, token: str, allow_full_token: bool,
                   say: Callable[[str], None]) -> str:
    """The token the control-plane user-data carries for the failover agent.

    User-data cannot be changed once a droplet exists and root on every control-plane node
    can read it for the droplet's life: a scoped token limits what a leak gives away to
    moving the floating IP. Without one, refuse unless the operator accepts the full token.
    """
    scoped = os.environ.get(FAILOVER_TOKEN_VAR, "").strip()
    if scoped or prepared.env.control_plane.endpoint != "floating_ip":
        return scoped or token  # no failover agent without a floating IP: nothing carries it
    if not allow_full_token:
        raise FullTokenRefused(
            f"{FAILOVER_TOKEN_VAR} is not set: the failover agent on the control-plane nodes "
            "would carry your full read/write API token in user-data that cannot be changed "
            "later. Create a custom-scoped token (DigitalOcean control panel, API > Tokens > "
            f"Generate New Token > Custom Scopes: {FAILOVER_SCOPES}) and export it as "
            f"{FAILOVER_TOKEN_VAR}, or pass --allow-full-token to accept the risk")
    say(f"warning: {FAILOVER_TOKEN_VAR} is not set; --allow-full-token: the control-plane "
        "nodes' user-data carries the full API token (root on those nodes can read it)")
    return token


def terraform_env(prepared: Prepared, token: str, failover: str | None = None,
                  initialised: bool = False) -> dict[str, str]:
    """Terraform's environment: the API token and the bootstrap secrets, never on disk.

    `failover` is the failover agent's token (`failover_token`); without it (destroy, which
    renders no new user-data) the scoped token if set, else the API token. The provider's
    429 retries are provision's unless the user set them (provisioner/infra/retries.py).
    """
    secrets = prepared.secrets.terraform_values()
    secrets["failover_token"] = failover or os.environ.get(FAILOVER_TOKEN_VAR) or token
    return runner.base_env({
        **retries.provider_env(),
        "DIGITALOCEAN_TOKEN": token,
        "TF_VAR_bootstrap_secrets": json.dumps(secrets),
        # A fact of the running cluster, not of the file: never in terraform.tfvars.json.
        "TF_VAR_cluster_initialised": "true" if initialised else "false",
        **_spaces_credentials(prepared),
    })


def workspace(prepared: Prepared, engine: Engine, token: str,
              on_event: OnEvent | None = None, failover: str | None = None,
              initialised: bool = False) -> Workspace:
    """The Terraform workspace of the rendered module, initialised."""
    ws = Workspace(engine, prepared.work.root / "terraform",
                   terraform_env(prepared, token, failover, initialised), on_event,
                   parallelism=parallelism.for_environment(prepared.env, engine.parallelism))
    (prepared.work.root / "state").mkdir(mode=0o700, exist_ok=True)
    ws.init()
    return ws


def plan(ws: Workspace, planfile: Path, names: dict[str, str], destroy: bool = False,
         detail: bool = True) -> InfraPlan:
    """Plan into ``planfile``.

    With ``detail`` the saved plan is read back (``terraform show``) for the attributes each
    update changes; without, the streamed events suffice and save a Terraform start.
    """
    planfile.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    result = ws.plan(planfile, destroy=destroy)
    quick = plan_from_events(result.events, names)
    if detail and quick.pending:
        return parse_plan(ws.show(planfile))
    return quick


def check_plan_destination(out: Path, work_root: Path, config: Path) -> Path:
    """Where ``plan --out`` may write: never into the work folder (its state, secrets and
    records), never over the environment file, never over a file that is not a saved plan.

    Terraform writes the plan wherever it is told, so a slip of the keyboard (``--out
    prod.yaml``, or the state's path) would replace that file with a plan archive.
    """
    out = out.resolve()
    root = work_root.resolve()
    if out == root or root in out.parents:
        raise UsageError(f"--out {out} is inside the work folder {root}, which holds the "
                         "state, secrets and records of the environment; write the plan "
                         "elsewhere (e.g. --out prod.tfplan)")
    if out == config.resolve():
        raise UsageError(f"--out {out} is the environment file itself; write the plan "
                         "elsewhere (e.g. --out prod.tfplan)")
    if out.exists() and not (out.is_file() and _is_saved_plan(out)):
        raise UsageError(f"--out {out} exists and is not a saved plan; provision does not "
                         "replace it (remove it, or write the plan elsewhere)")
    return out


def _is_saved_plan(path: Path) -> bool:
    """A Terraform plan file is a zip archive with a ``tfplan`` member."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            return "tfplan" in archive.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


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


def guard_control_plane(infra_plan: InfraPlan, allowed: bool, detail: Callable[[], InfraPlan],
                        requested: tuple[str, ...] = ()) -> None:
    """Refuse to change an etcd member's droplet unless the user said so explicitly
    (``requested``: the addresses `up --replace` named, whose replacement was asked for)."""

    def risky_in(plan: InfraPlan) -> list[Change]:
        # Updates count too: a resize powers the droplet off, and Terraform does all at once.
        return [c for c in plan.pending if c.control_plane and c.action != "create"
                and not (c.action == "replace" and c.address in requested)]

    risky = risky_in(infra_plan)
    if risky and not allowed:
        if not any(c.attributes for c in risky):  # say which attributes, worth one more run
            risky = risky_in(detail())
        names = ", ".join(f"{c.name} ({c.action}" + (f" {', '.join(c.attributes)})"
                                                      if c.attributes else ")") for c in risky)
        raise PolicyError(f"this plan changes control-plane droplet(s): {names}. Each holds an "
                          "etcd member; changing several at once can cost quorum. Re-run with "
                          "--allow-control-plane-changes if intended.")


def apply(ws: Workspace, planfile: Path, prepared: Prepared) -> dict[str, Any]:
    """Apply the saved plan and record the outputs for the next stages."""
    result = ws.apply(planfile.resolve())
    outputs = ws.streamed_outputs(result)
    if outputs is None:
        outputs = ws.outputs()
    record_outputs(prepared, outputs)
    return outputs


def record_outputs(prepared: Prepared, outputs: dict[str, Any]) -> None:
    """infrastructure.json: droplets by role and the endpoint, for bootstrap and status."""
    write_file(infrastructure_file(prepared),
               json.dumps(outputs, indent=2, sort_keys=True) + "\n")


def infrastructure_file(prepared: Prepared) -> Path:
    """Where the last apply's outputs are kept."""
    return prepared.work.root / "infrastructure.json"


def recorded_outputs(prepared: Prepared) -> dict[str, Any] | None:
    """The outputs the last apply recorded (infrastructure.json), or None when there are
    none or the file is not what provision writes (the callers say or decide which)."""
    from provisioner.render.writer import read_regular

    try:
        recorded = json.loads(read_regular(infrastructure_file(prepared)).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return recorded if isinstance(recorded, dict) else None


def current_outputs(ws: Workspace, prepared: Prepared) -> dict[str, Any]:
    """Outputs after a plan with no changes: the recorded ones, or Terraform's."""
    recorded = recorded_outputs(prepared)
    if recorded is not None:
        return recorded
    outputs = ws.outputs()
    record_outputs(prepared, outputs)
    return outputs
