"""``provision up``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import up_extra
from provisioner.cli.infra_options import (
    allow_full_token_option,
    ask,
    parallelism_option,
    require_terminal_or_yes,
    terraform_bin_option,
    yes_option,
)
from provisioner.cli.options import (
    common,
    output_option,
    override_reason,
    override_window_options,
)


@click.command(epilog="""\b
Examples:
  provision up staging.yaml                     # shows the plan, asks, applies
  provision up prod.yaml --yes                  # CI: no prompt
  provision up prod.yaml --plan prod.tfplan     # exactly the plan reviewed earlier
  provision up prod.yaml --replace prod-cp-2    # a new droplet for one control-plane node
  provision up prod.yaml --parallelism 40       # a token of its own with a raised limit
  provision up prod.yaml --override-window --reason "INC-1234: firewall fix"   # in a freeze
  provision up fleet.yaml --yes                 # every region, canary first; stops at a failure""")
@common
@click.option("--plan", "saved_plan", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Apply this plan from `provision plan --out` and nothing else.")
@click.option("--allow-control-plane-changes", is_flag=True,
              help="Allow a plan that deletes or replaces control-plane droplets.")
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Replace this control-plane node's droplet (e.g. prod-cp-2): its etcd "
                   "member and Node are removed first, while every other member answers, "
                   "then a new droplet joins. One node per run on a running cluster.")
@click.option("--until", type=click.Choice(["infra", "cluster", "apps"]), default="apps",
              show_default=True,
              help="Stop after this stage: infra (droplets, network, endpoint), cluster "
                   "(kubeconfig, API ready, every node Ready, add-ons up) or apps (deployed, "
                   "rolled out).")
@override_window_options("Change the infrastructure and deploy the apps")
@allow_full_token_option
@terraform_bin_option
@parallelism_option
@yes_option
@output_option
@reports_errors
@fleet_aware("up", extra=up_extra)
def up(config: Path, workdir: Path | None, saved_plan: Path | None,
       allow_control_plane_changes: bool, replace: tuple[str, ...], until: str,
       override_window: bool, reason: str | None, allow_full_token: bool,
       terraform_bin: str | None, parallelism: int | None, yes: bool,
       output: str = "text") -> None:
    """Create or converge the environment's infrastructure.

    Renders, checks the DigitalOcean account (token, region, sizes, SSH keys, droplet
    limit), plans, shows the plan, asks for confirmation, then applies with live progress.
    A second run with the same file changes nothing. A plan that changes the
    infrastructure is refused outside the deploy windows and inside freezes (exit 3, before
    anything is applied) unless overridden; a plan with no changes and an environment's
    first creation never are.
    """
    from provisioner.infra.changes import InfraPlan
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import lifecycle
    from provisioner.pipeline.prepare import Prepared
    from provisioner.ui.infra_text import format_infra_plan
    from provisioner.ui.progress import Progress
    from provisioner.workloads.windows import OVERRIDE_REASON

    require_terminal_or_yes(yes, "apply")
    override = override_reason(override_window, reason)
    out = console()

    def show(plan: InfraPlan, prepared: Prepared) -> None:
        out.info(format_infra_plan(plan, prepared.env.name).rstrip("\n"))

    def confirm(plan: InfraPlan, prepared: Prepared) -> bool:
        return ask(f"Apply these changes to {prepared.env.name}?", yes)

    def progress(names: dict[str, str]) -> Progress:
        return Progress(names, verbose=out.verbosity > 1)

    # With --yes nobody reads attribute details before the apply: skip `terraform show`.
    outcome = lifecycle.up(config, workdir, resolve(terraform_bin, parallelism), show, confirm,
                           progress, saved_plan, allow_control_plane_changes, detail=not yes,
                           until=until, report=out.info,
                           override_reason=override,
                           allow_full_token=allow_full_token, replace=replace)
    if outcome.applied:
        overridden = (f" (window overridden: {outcome.override[OVERRIDE_REASON]})"
                      if outcome.override else "")
        out.info(f"infrastructure of {outcome.prepared.env.name} is up: {outcome.summary}"
                 f"{overridden}")
    else:
        out.info(f"nothing to do: {outcome.prepared.env.name} already matches {config}")
    endpoint = outcome.outputs.get("api_endpoint")
    if endpoint:
        out.info(f"API endpoint: https://{endpoint}:6443")
    if output == "json":
        from provisioner.ui.output import emit_json

        emit_json({"environment": outcome.prepared.env.name, "applied": outcome.applied,
                   "summary": outcome.summary if outcome.applied else None,
                   "api_endpoint": endpoint or None,
                   "nodes": (len(outcome.cluster.nodes) if outcome.cluster is not None
                             else None)})
    if outcome.cluster is not None:
        out.info(f"cluster {outcome.prepared.env.name} is ready: "
                 f"{len(outcome.cluster.nodes)} nodes; kubectl --kubeconfig "
                 f"{outcome.cluster.kubeconfig} get nodes")
