"""``provision status``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import status_extra
from provisioner.cli.options import common, given_kubeconfig, output_option


@click.command(epilog="""\b
Examples:
  provision status prod.yaml
  provision status prod.yaml --output json | jq '.cluster.apps'
  provision status prod.yaml --output json | jq '.cluster.nodes[] | {name, kubelet, etcd}'
  provision status prod.yaml --output json | jq .cost.total   # the monthly run rate
  provision status fleet.yaml   # every region, and which ones the fleet's traffic avoids""")
@common
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Read the cluster through this kubeconfig instead.")
@output_option
@reports_errors
@fleet_aware("status", extra=status_extra)
def status(config: Path, workdir: Path | None, kubeconfig: Path | None, output: str) -> None:
    """Show droplets by role, the floating IP's holder, nodes, apps and the last deploy.

    Per node: Ready, kubelet version, droplet age, cordoned; for control-plane nodes their
    etcd member (its mirror pod) and VRRP state; the monthly run rate of what the account
    holds of the environment (autoscaled droplets included). Exits 2 when the kubeconfig or the work
    folder's infrastructure record cannot be read, 1 when the cloud or the cluster did not
    answer (after showing the rest); a source not made yet (no token, no `up`) is not an error.
    """
    import sys

    from provisioner.cloud.token import api_token
    from provisioner.config import load_environment
    from provisioner.status import collect, format_status, problems
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.workdir import Workdir

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    root = Workdir.for_config(config, env, workdir).root
    path = kubeconfig or root / "kubeconfig"
    result = collect(env, api_token(required=False) or None, path,
                     root / "infrastructure.json")
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_status(result))
    code, why = problems(result)
    if code:
        out = console()
        for line in why:
            out.error(f"status incomplete: {line}")
        sys.exit(code)
