"""``provision validate``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import config_argument


@click.command(epilog="""\b
Examples:
  provision validate examples/production.yaml
  provision validate envs/*.yaml   # in CI, before plan""")
@config_argument
@reports_errors
def validate(config: Path) -> None:
    """Check an environment file and report every problem at once.

    Each problem is printed as FILE:LINE: key.path: problem (hint); the exit code is 2
    when there is any.
    """
    from provisioner.config import load_environment

    env = load_environment(config)
    console().info(f"{config}: environment {env.name!r} is valid "
                   f"({env.control_plane.count} control-plane node(s), "
                   f"{sum(p.count for p in env.worker_pools)} worker(s), {len(env.apps)} app(s))")
