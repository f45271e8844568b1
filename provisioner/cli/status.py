"""``provision status``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import reports_errors
from provisioner.cli.options import common, given_kubeconfig, output_option


@click.command(epilog="""\b
Examples:
  provision status prod.yaml
  provision status prod.yaml --output json | jq '.cluster.apps'""")
@common
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Read the cluster through this kubeconfig instead.")
@output_option
@reports_errors
def status(config: Path, workdir: Path | None, kubeconfig: Path | None, output: str) -> None:
    """Show droplets by role, the floating IP's holder, nodes, apps and the last deploy."""
    from provisioner.cloud.token import api_token
    from provisioner.config import load_environment
    from provisioner.status import collect, format_status
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.workdir import Workdir

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    path = kubeconfig or Workdir.for_config(config, env, workdir).root / "kubeconfig"
    result = collect(env, api_token(required=False) or None, path)
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_status(result))
