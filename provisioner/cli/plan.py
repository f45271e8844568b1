"""``provision plan``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.main import console, reports_errors
from provisioner.cli.options import common, output_option
from provisioner.errors import UsageError


@click.command(epilog="""\b
Examples:
  provision plan examples/production.yaml --offline
  provision plan examples/production.yaml --offline --output json | jq .apps""")
@common
@click.option("--offline", is_flag=True,
              help="Render and show what would be created, without calling any cloud API.")
@output_option
@reports_errors
def plan(config: Path, workdir: Path | None, offline: bool, output: str) -> None:
    """Show what `up` would create or change.

    With --offline, renders into the work folder, prepares the cluster's secrets there
    (0600) and prints the droplets, endpoint, firewall rules and apps the file declares.
    """
    from provisioner.config import load_environment
    from provisioner.plan.offline import offline_plan
    from provisioner.render import render_environment
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.ui.plan_text import format_offline_plan
    from provisioner.workdir import Workdir

    if not offline:
        raise UsageError("an online plan needs the infrastructure stage, which this version "
                         "does not have yet; run `provision plan CONFIG --offline`")
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
