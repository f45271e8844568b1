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
  provision kubeconfig prod.yaml --merge --context-name prod-do
  kubectl --context prod get nodes""")
@common
@click.option("--merge", is_flag=True,
              help="Add the cluster as a context named after the environment to "
                   "$KUBECONFIG's first file (default ~/.kube/config) instead of printing it.")
@click.option("--context-name", metavar="NAME", default=None,
              help="Name the context and cluster NAME (user NAME-admin) instead of the "
                   "environment's name, e.g. when that name is taken.")
@click.option("--force", is_flag=True,
              help="With --merge: replace entries of the same name that belong to another "
                   "cluster.")
@reports_errors
def kubeconfig(config: Path, workdir: Path | None, merge: bool, context_name: str | None,
               force: bool) -> None:
    """Print the environment's admin kubeconfig, or merge it into yours.

    The kubeconfig is signed locally with the cluster CA provision made; it needs the API
    endpoint, so run `provision up` first. It holds a client key: it is written 0600.
    """
    import yaml

    from provisioner.bootstrap import kubeconfig as kc
    from provisioner.config import checks, load_environment
    from provisioner.workdir import Workdir

    env = load_environment(config)
    if context_name is not None and checks.dns_subdomain(context_name):
        raise UsageError(f"--context-name {context_name!r} is not a usable name (lower-case "
                         "letters, digits, '-' and '.', e.g. prod-do)")
    work = Workdir.for_config(config, env, workdir)
    endpoint = read_endpoint(work.root / "infrastructure.json", config)
    secrets = work.cluster_secrets(env)
    path = kc.ensure(work.root / "kubeconfig", env.name, endpoint, secrets)
    document = yaml.safe_load(path.read_text())
    if context_name is not None:
        document = kc.rename(document, context_name)
    if not merge:
        click.echo(yaml.safe_dump(document, sort_keys=False) if context_name else
                   path.read_text(), nl=False)
        return
    first = (os.environ.get("KUBECONFIG") or "").split(os.pathsep)[0]
    target = Path(first) if first else Path.home() / ".kube" / "config"
    written = kc.merge_into(target, document, secrets.ca_crt_pem, force=force)
    name = document["current-context"]
    shown = target if written == target.absolute() else f"{target} (-> {written})"
    console().info(f"added context {name!r} to {shown}; kubectl --context {name} get nodes")


def read_endpoint(path: Path, config: Path) -> str:
    """The API endpoint recorded by the last `up`, or a usage error saying what to do."""
    if not path.is_file():
        raise UsageError(f"no infrastructure recorded in {path.parent}: run "
                         f"`provision up {config}` first")
    try:
        recorded = json.loads(path.read_bytes().decode("utf-8"))
    except (ValueError, OSError) as e:
        raise UsageError(f"{path} is not the JSON provision writes; delete it and run "
                         f"`provision up {config}` (it records what Terraform created)") from e
    endpoint = recorded.get("api_endpoint") if isinstance(recorded, dict) else None
    if not isinstance(endpoint, str) or not endpoint:
        raise UsageError(f"{path} has no API endpoint: run `provision up {config}`")
    return endpoint
