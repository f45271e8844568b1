"""``provision upgrade``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.infra_options import ask, require_terminal_or_yes, yes_option
from provisioner.cli.options import common, output_option, override_reason, override_window_options
from provisioner.errors import UsageError


@click.command(epilog="""\b
Examples:
  provision upgrade prod.yaml                   # shows what it will do, asks, upgrades
  provision upgrade prod.yaml --yes             # CI: no prompt
  provision upgrade prod.yaml --yes --output json
  provision upgrade prod.yaml --override-window --reason "CVE fix INC-1234" """)
@common
@override_window_options("Upgrade")
@yes_option
@output_option
@reports_errors
def upgrade(config: Path, workdir: Path | None, override_window: bool, reason: str | None,
            yes: bool, output: str) -> None:
    """Upgrade the running cluster to the file's kubernetes.version, in place.

    Preflight (one minor at a time, release exists, every node Ready), the deploy windows,
    an etcd snapshot, then control planes one at a time (kubeadm upgrade apply on the
    first, upgrade node on the others, then their kubelets), then workers drained in
    batches of their pool's replace.at_once. Interrupted, the next run continues where it
    stopped. Exit 2 when the preflight refuses, 3 outside the windows, 1 when a node fails.
    """
    from provisioner import clock
    from provisioner.cli.deploy import deploy_client
    from provisioner.pipeline.prepare import one_writer
    from provisioner.ui.output import emit_json
    from provisioner.upgrade import orchestrate, seams

    override = override_reason(override_window, reason)
    env, api = deploy_client(config, workdir, None, None)
    out = console()
    with one_writer(config, workdir, "upgrade") as work:
        plan = orchestrate.prepare(env, api, seams.default(), out.info, clock.now(),
                                   override)
        if plan is None:
            if output == "json":
                emit_json(orchestrate.Outcome(env.kubernetes.version,
                                              nothing_to_do=True).json())
            out.info(f"nothing to do: every node of {env.name} runs "
                     f"{env.kubernetes.version}")
            return
        out.info(plan.describe())
        require_terminal_or_yes(yes, "upgrade")
        if not ask(f"Upgrade {env.name} to {plan.target}?", yes):
            raise UsageError("upgrade cancelled; nothing was changed")
        outcome = orchestrate.execute(plan, api, seams.default(), out.info,
                                      progress=work.root / "upgrade.json")
    if output == "json":
        emit_json(outcome.json())
    out.info(f"{env.name} runs Kubernetes {plan.target}: {len(outcome.upgraded)} node(s) "
             f"upgraded by this run; "
             + ", ".join(f"{k} {v:.1f} s" for k, v in outcome.stages.items()))
