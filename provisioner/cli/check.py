"""``provision check``."""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from provisioner.cli.common import reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import check_extra
from provisioner.cli.options import (
    config_argument,
    given_kubeconfig,
    output_option,
    workdir_option,
)
from provisioner.errors import EXIT_POLICY, ProvisionError, UsageError

if TYPE_CHECKING:
    from provisioner.config.model import Environment


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # FloatRange takes "nan": every comparison with NaN is false, so no bound refuses it.
    if math.isnan(value):
        raise click.BadParameter(f"{value} is not a number; give one such as 0.999", ctx, param)
    return value


@click.command(epilog="""\b
Examples:
  provision check examples/production.yaml
  provision check staging.yaml --availability 0.995 --output json
  provision check prod.yaml --strict      # CI: exit 3 on any high-severity finding
  provision check prod.yaml --online      # also the running cluster and the cloud
  provision check fleet.yaml              # every region, and the nines across them""")
@config_argument
@workdir_option
@click.option("--online", is_flag=True,
              help="Also read the running cluster (the work folder's kubeconfig) and the "
                   "cloud (DIGITALOCEAN_TOKEN): keepalived and failover agents, the floating "
                   "IP on the MASTER, certificates and tokens near or past expiry.")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="With it, --online reads the cluster through this kubeconfig "
                                 "(implies --online).")
@click.option("--availability", "p", type=click.FloatRange(0.5, 1.0, max_open=True),
              default=0.999, show_default=True, callback=_finite,
              help="Expected availability of one droplet.")
@click.option("--strict", is_flag=True, help="Exit 3 when there is a high-severity finding.")
@output_option
@reports_errors
@fleet_aware("check", extra=check_extra)
def check(config: Path, workdir: Path | None, online: bool, kubeconfig: Path | None, p: float,
          strict: bool, output: str) -> None:
    """Find single points of failure and estimate availability in nines.

    By default works from the file alone (no API call): what fails with one droplet, what a
    drain or rollout takes down, and what each extra node or replica buys. With --online (or
    --kubeconfig) it also reads the running cluster and the cloud and adds their findings
    (and, with budget: in the file, the run rate above it; offline the plan's cost is
    compared, at max autoscale):
    keepalived or its failover agent not running, the floating IP not on the MASTER (or two
    MASTERs), the API server's and the admin kubeconfig's certificates expired or expiring
    within 30 days, a DigitalOcean token the API rejects. Without a kubeconfig --online
    fails (exit 2); a cluster that does not answer, exit 1.
    """
    from provisioner.analysis import format_report, report
    from provisioner.analysis.spof import SEVERITIES
    from provisioner.config import load_environment
    from provisioner.cost.report import check_cost_line, check_costs
    from provisioner.ui.output import emit_json, emit_text

    env = load_environment(config)
    result = report(env, p=p)
    result["cost"], budget = check_costs(env)
    result["findings"] = result["findings"] + budget
    if online or kubeconfig is not None:
        result["online"] = _online(config, env, workdir, given_kubeconfig(kubeconfig))
        result["online"]["findings"] += _run_rate(config, env, workdir, result)
        result["findings"] = result["online"]["findings"] + result["findings"]
    result["findings"] = sorted(result["findings"],
                                key=lambda f: SEVERITIES.index(f["severity"]))
    if output == "json":
        emit_json(result)
    else:
        text = format_report(result) + check_cost_line(
            result["cost"], (result.get("online") or {}).get("run_rate"))
        if "online" in result:
            text += "".join(f"note: {n}\n" for n in result["online"]["notes"])
        emit_text(text)
    if strict and any(f["severity"] == "high" for f in result["findings"]):
        sys.exit(EXIT_POLICY)


def _run_rate(config: Path, env: Environment, workdir: Path | None,
              result: dict[str, Any]) -> list[dict[str, str]]:
    """--online: the run rate at the account's prices, and its finding against the budget."""
    from provisioner.cloud.token import api_token
    from provisioner.cost.report import run_rate
    from provisioner.workdir import Workdir

    token = api_token(required=False)
    if not token:
        result["online"]["notes"].append("no DIGITALOCEAN_TOKEN: the run rate is not read")
        return []
    root = Workdir.for_config(config, env, workdir).root
    result["online"]["run_rate"], findings = run_rate(env, token, root / "infrastructure.json")
    return findings


def _online(config: Path, env: Environment, workdir: Path | None,
            kubeconfig: Path | None) -> dict[str, Any]:
    from provisioner.analysis.live import connect, live_report
    from provisioner.cloud.token import api_token
    from provisioner.kube import KubeError
    from provisioner.workdir import Workdir

    path = kubeconfig or Workdir.for_config(config, env, workdir).root / "kubeconfig"
    if not path.is_file():
        raise UsageError(f"--online: no kubeconfig at {path}: run `provision up {config}` "
                         "first, or pass --kubeconfig")
    try:
        connection = connect(path)
    except Exception as e:  # the client's ConfigException, OSError, ValueError, KeyError ...
        # Only the kubeconfig is read here: what it holds is not usable.
        raise UsageError(f"--online: cannot use kubeconfig {path}: "
                         f"{' '.join(str(e).split())[:200] or type(e).__name__}") from e
    try:
        return live_report(env, str(config), path, connection, api_token(required=False))
    except KubeError as e:
        raise ProvisionError(f"--online: cannot read the cluster: {e}") from e
