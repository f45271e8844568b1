"""``provision destroy``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import destroy_before
from provisioner.cli.infra_options import (
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
  provision destroy staging.yaml
  provision destroy prod.yaml --force --yes     # deletion_protection is set on prod
  provision destroy staging.yaml --sweep        # also delete the listed leftovers
  provision destroy prod.yaml --override-window --reason "moved to prod2"   # in a freeze
  provision destroy fleet.yaml --yes            # every region, the canary last""")
@common
@click.option("--force", is_flag=True, help="Destroy even when deletion_protection is true.")
@click.option("--sweep", is_flag=True,
              help="Also delete what the environment provably owns that Terraform did not "
                   "know about (exact tag, target or id; reported otherwise). Lists it and "
                   "asks first.")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="The cluster whose load balancers and volumes to release "
                                 "first [default: the work folder's kubeconfig].")
@override_window_options("Destroy")
@terraform_bin_option
@parallelism_option
@yes_option
@output_option
@reports_errors
@fleet_aware("destroy", reverse=True, before=destroy_before)
def destroy(config: Path, workdir: Path | None, force: bool, sweep: bool,
            kubeconfig: Path | None, override_window: bool, reason: str | None,
            terraform_bin: str | None, parallelism: int | None, yes: bool,
            output: str = "text") -> None:
    """Remove every resource of the environment, in the right order.

    Plans the destruction, shows it and asks; then deletes the LoadBalancer Services and
    volume claims provision applied to the cluster and waits until their DigitalOcean load
    balancers and volumes are gone; then destroys the infrastructure with live progress;
    then lists what the environment still provably owns (exact tag, load balancer target or
    id; deleted with --sweep after listing and asking). With an empty state next to live
    resources it refuses and says how to restore the state. Refuses while the file sets
    deletion_protection: true, unless --force. Destroying is an infrastructure change: outside
    the deploy windows or inside a freeze it is refused (exit 3) before anything is deleted,
    unless --override-window --reason TEXT.
    """
    from provisioner.infra.changes import InfraPlan
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import lifecycle
    from provisioner.pipeline.prepare import Prepared
    from provisioner.ui.infra_text import format_infra_plan
    from provisioner.ui.progress import Progress

    require_terminal_or_yes(yes, "destroy")
    override = override_reason(override_window, reason)
    out = console()

    def show(plan: InfraPlan, prepared: Prepared) -> None:
        out.info(format_infra_plan(plan, prepared.env.name).rstrip("\n"))

    def confirm(plan: InfraPlan, prepared: Prepared) -> bool:
        return ask(f"Destroy {len(plan.pending)} resources of {prepared.env.name}? "
                   "This cannot be undone.", yes)

    def confirm_sweep(lines: list[str]) -> bool:
        return ask(f"Delete these {len(lines)} resources? This cannot be undone.", yes)

    def progress(names: dict[str, str]) -> Progress:
        return Progress(names, verbose=out.verbosity > 1)

    outcome = lifecycle.destroy(config, workdir, resolve(terraform_bin, parallelism), show,
                                confirm, progress, force, detail=not yes, kubeconfig=kubeconfig,
                                sweep=sweep, report=out.info, confirm_sweep=confirm_sweep,
                                override_reason=override)
    if output == "json":
        from provisioner.ui.output import emit_json

        emit_json({"environment": outcome.prepared.env.name, "destroyed": outcome.applied,
                   "summary": outcome.summary if outcome.applied else None,
                   "swept": outcome.swept})
    if outcome.applied:
        out.info(f"destroyed {outcome.prepared.env.name}: {outcome.summary}")
    elif outcome.swept:
        out.info(f"swept {outcome.swept} leftover resources of {outcome.prepared.env.name}")
    else:
        out.info(f"nothing to destroy: {outcome.prepared.env.name} has no resources")
