"""``provision validate``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_of
from provisioner.errors import ConfigError, ProvisionError


@click.command(epilog="""\b
Examples:
  provision validate examples/production.yaml
  provision validate envs/*.yaml   # in CI, before plan: one result per file
  provision validate fleet.yaml    # a fleet file and every environment it names""")
@click.argument("configs", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=True, allow_dash=False),
                metavar="CONFIG...")
@reports_errors
def validate(configs: tuple[Path, ...]) -> None:
    """Check environment files and report every problem at once.

    Each file gets its own result: a line saying it is valid, or each problem as
    FILE:LINE: key.path: problem (hint). The exit code is 2 when any file has a problem.
    """
    from provisioner.config import load_environment

    out = console()
    failed, bad = 0, 0
    for config in configs:
        try:
            fleet = fleet_of(config)
            if fleet is not None:
                for stage, m in fleet.ordered():
                    out.info(f"{config.parent / m.written}: environment {m.name!r} is "
                             f"valid ({stage} of fleet {fleet.name!r})")
                out.info(f"{config}: fleet {fleet.name!r} is valid ({len(fleet.members)} "
                         "environments: " + ", then ".join(
                             " + ".join(m.name for m in ms) for _, ms in fleet.stages()) + ")")
                continue
            env = load_environment(config)
        except ProvisionError as e:  # reported, then the next file
            out.error(str(e), located=isinstance(e, ConfigError))
            failed, bad = max(failed, e.exit_code), bad + 1
            continue
        out.info(f"{config}: environment {env.name!r} is valid "
                 f"({env.control_plane.count} control-plane node(s), "
                 f"{sum(p.count for p in env.worker_pools)} worker(s), {len(env.apps)} app(s))")
    if failed:
        if len(configs) > 1:
            out.info(f"{bad} of {len(configs)} files have problems")
        sys.exit(failed)
