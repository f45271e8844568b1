"""``provision check``."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import click

from provisioner.cli.common import reports_errors
from provisioner.cli.options import config_argument, output_option
from provisioner.errors import EXIT_POLICY


def _finite(ctx: click.Context, param: click.Parameter, value: float) -> float:
    # FloatRange takes "nan": every comparison with NaN is false, so no bound refuses it.
    if math.isnan(value):
        raise click.BadParameter(f"{value} is not a number; give one such as 0.999", ctx, param)
    return value


@click.command(epilog="""\b
Examples:
  provision check examples/production.yaml
  provision check staging.yaml --availability 0.995 --output json
  provision check prod.yaml --strict      # CI: exit 3 on any high-severity finding""")
@config_argument
@click.option("--availability", "p", type=click.FloatRange(0.5, 1.0, max_open=True),
              default=0.999, show_default=True, callback=_finite,
              help="Expected availability of one droplet.")
@click.option("--strict", is_flag=True, help="Exit 3 when there is a high-severity finding.")
@output_option
@reports_errors
def check(config: Path, p: float, strict: bool, output: str) -> None:
    """Find single points of failure and estimate availability in nines.

    Works from the file alone (no API call): what fails with one droplet, what a drain or
    rollout takes down, and what each extra node or replica buys.
    """
    from provisioner.analysis import format_report, report
    from provisioner.config import load_environment
    from provisioner.ui.output import emit_json, emit_text

    env = load_environment(config)
    result = report(env, p=p)
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_report(result))
    if strict and any(f["severity"] == "high" for f in result["findings"]):
        sys.exit(EXIT_POLICY)
