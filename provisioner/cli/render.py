"""``provision render``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import config_argument


@click.command(epilog="""\b
Examples:
  provision render examples/production.yaml --out build/prod
  provision render staging.yaml --out /tmp/staging && ls /tmp/staging/cloud-init""")
@config_argument
@click.option("--out", "out", type=click.Path(path_type=Path, file_okay=False), required=True,
              help="Folder to write terraform/, cloud-init/ and manifests/ into.")
@reports_errors
def render(config: Path, out: Path) -> None:
    """Render every artefact of an environment into a folder.

    Writes a self-contained Terraform root module (terraform/), one cloud-config per node
    role (cloud-init/) and the apps' manifests (manifests/). Output is deterministic and
    holds no secrets: the CA and tokens are spliced in by Terraform at apply time.
    """
    from provisioner.config import load_environment
    from provisioner.render import render_environment
    from provisioner.render.writer import write_tree

    env = load_environment(config)
    files = render_environment(env)
    write_tree(out, files)
    console().info(f"rendered {len(files)} files for {env.name!r} into {out}")
