"""``provision plan``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioner.cli.infra_options import terraform_bin_option
from provisioner.cli.main import console, reports_errors
from provisioner.cli.options import common, output_option
from provisioner.errors import EXIT_CHANGES_PENDING


@click.command(epilog="""\b
Examples:
  provision plan examples/production.yaml --offline
  provision plan prod.yaml --out prod.tfplan && provision up prod.yaml --plan prod.tfplan
  provision plan prod.yaml --output json --exit-code   # CI: exit 4 when changes are pending""")
@common
@click.option("--offline", is_flag=True,
              help="Render and show what would be created, without calling any cloud API.")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Save the Terraform plan here for `provision up --plan` (it holds secrets: "
                   "it is written 0600).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 4 when the plan has changes, 0 when it has none.")
@terraform_bin_option
@output_option
@reports_errors
def plan(config: Path, workdir: Path | None, offline: bool, out: Path | None, exit_code: bool,
         terraform_bin: str | None, output: str) -> None:
    """Show what `up` would create or change.

    Online (the default): renders into the work folder, checks the DigitalOcean account,
    runs `terraform plan` and shows the infrastructure diff. With --offline: renders and
    prints what the file declares (droplets, endpoint, firewall rules, apps) with no API call.
    """
    from provisioner.ui.output import emit_json, emit_text

    if offline:
        _offline(config, workdir, output)
        return
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import lifecycle
    from provisioner.ui.infra_text import format_infra_plan
    from provisioner.ui.progress import Progress

    verbose = console().verbosity > 1
    outcome = lifecycle.plan(config, workdir, resolve(terraform_bin), out,
                             progress=lambda names: Progress(names, verbose=verbose))
    result = outcome.plan
    if output == "json":
        data = result.as_json()
        data["environment"] = outcome.prepared.env.name
        data["plan_file"] = str(out) if out else None
        emit_json(data)
    else:
        emit_text(format_infra_plan(result, outcome.prepared.env.name))
    if out:
        console().info(f"saved the plan to {out}; apply it with "
                       f"`provision up {config} --plan {out}`")
    if exit_code and result.pending:
        sys.exit(EXIT_CHANGES_PENDING)


def _offline(config: Path, workdir: Path | None, output: str) -> None:
    from provisioner.config import load_environment
    from provisioner.plan.offline import offline_plan
    from provisioner.render import render_environment
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.ui.plan_text import format_offline_plan
    from provisioner.workdir import Workdir

    env = load_environment(config)
    work = Workdir.for_config(config, env, workdir)
    work.write_rendered(render_environment(env))
    work.cluster_secrets(env)
    result = offline_plan(env)
    result["workdir"] = str(work.root)
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_offline_plan(result))
    console().info(f"rendered into {work.root}")
