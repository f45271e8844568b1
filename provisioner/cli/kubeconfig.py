"""``provision kubeconfig``."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import common
from provisioner.errors import UsageError


@click.command(epilog="""\b
Examples:
  provision kubeconfig prod.yaml > ~/.kube/prod.yaml && chmod 600 ~/.kube/prod.yaml
  provision kubeconfig prod.yaml --merge        # adds context 'prod' to ~/.kube/config
  kubectl --context prod get nodes""")
@common
@click.option("--merge", is_flag=True,
              help="Add the cluster as a context named after the environment to "
                   "$KUBECONFIG's first file (default ~/.kube/config) instead of printing it.")
@reports_errors
def kubeconfig(config: Path, workdir: Path | None, merge: bool) -> None:
    """Print the environment's admin kubeconfig, or merge it into yours.

    The kubeconfig is signed locally with the cluster CA provision made; it needs the API
    endpoint, so run `provision up` first. It holds a client key: it is written 0600.
    """
    import yaml

    from provisioner.bootstrap import kubeconfig as kc
    from provisioner.config import load_environment
    from provisioner.workdir import Workdir

    env = load_environment(config)
    work = Workdir.for_config(config, env, workdir)
    outputs_file = work.root / "infrastructure.json"
    if not outputs_file.is_file():
        raise UsageError(f"no infrastructure recorded in {work.root}: run "
                         f"`provision up {config}` first")
    endpoint = json.loads(outputs_file.read_text()).get("api_endpoint")
    if not endpoint:
        raise UsageError(f"{outputs_file} has no API endpoint: run `provision up {config}`")
    path = kc.ensure(work.root / "kubeconfig", env.name, str(endpoint), work.cluster_secrets(env))
    if not merge:
        click.echo(path.read_text(), nl=False)
        return
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    target = Path(first) if first else Path.home() / ".kube" / "config"
    kc.merge_into(target, yaml.safe_load(path.read_text()))
    console().info(f"added context {env.name!r} to {target}; "
                   f"kubectl --context {env.name} get nodes")
