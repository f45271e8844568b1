"""``provision rotate``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import common
from provisioner.errors import ProvisionError, UsageError
from provisioner.pipeline.prepare import holds_work_folder
from provisioner.pipeline.rotate import KINDS


class Unconfirmed(ProvisionError):
    """The new failover token is stored, but some agents do not run with it."""


@click.command(epilog="""\b
Examples:
  provision rotate prod.yaml                          # everything that applies
  provision rotate prod.yaml --only cloud-token       # after revoking a leaked API token
  provision rotate prod.yaml --only failover-token --wait 600""")
@common
@click.option("--only", "only", type=click.Choice(KINDS), multiple=True,
              help="Rotate only this (repeatable) [default: everything that applies: the "
                   "failover token only with endpoint: floating_ip].")
# No figure at registration: the default comes from the timer template, read when rotate
# runs (a template that cannot be read fails rotate, not every command).
@click.option("--wait", "wait", type=click.FloatRange(1, 24 * 3600), default=None,
              help="Seconds to wait for every control-plane node's failover agent to take the "
                   "new failover token [default: five periods of the agent's timer].")
@reports_errors
def rotate(config: Path, workdir: Path | None, only: tuple[str, ...],
           wait: float | None) -> None:
    """Renew tokens and join credentials on the running cluster, droplets untouched.

    \b
    cloud-token       kube-system/digitalocean from DIGITALOCEAN_TOKEN (checked with
                      the API first); restarts the cloud controller manager and the
                      CSI controller so they read it
    failover-token    kube-system/provision-failover from PROVISION_FAILOVER_TOKEN
                      (checked with the API first); waits until the agent on every
                      control-plane node runs with it (exit 1 naming those that do not)
    join-credentials  a fresh bootstrap token and certificate key for nodes that
                      join later

    Holds the work folder like up and deploy; never prints a token.
    """
    _run(config, workdir, only, wait)


@holds_work_folder("rotate")
def _run(config: Path, workdir: Path | None, only: tuple[str, ...],
         wait: float | None) -> None:
    import os

    from provisioner.cloud.token import api_token
    from provisioner.kube import client_for
    from provisioner.pipeline import rotate as core
    from provisioner.pipeline.infra_stage import FAILOVER_SCOPES, FAILOVER_TOKEN_VAR
    from provisioner.pipeline.prepare import prepare

    out = console()
    prepared = prepare(config, workdir)
    kinds = core.chosen(prepared.env.control_plane.endpoint, only)
    # Every token is read before anything changes: a missing one stops the run here.
    cloud = api_token() if core.CLOUD_TOKEN in kinds else ""
    failover = os.environ.get(FAILOVER_TOKEN_VAR, "").strip()
    if core.FAILOVER_TOKEN in kinds and not failover:
        raise UsageError(f"{FAILOVER_TOKEN_VAR} is not set: export the failover agents' new "
                         f"token (custom scopes: {FAILOVER_SCOPES}), or leave it out with "
                         "--only cloud-token --only join-credentials")
    if wait is None:
        wait = core.confirm_wait()
    path = prepared.work.root / "kubeconfig"
    if not path.is_file():
        raise UsageError(f"no kubeconfig at {path}: run `provision up {config}` first "
                         "(rotate renews a running cluster's credentials)")
    try:
        api = client_for(path)
    except Exception as e:  # the client's ConfigException, OSError, ValueError ...
        raise UsageError(f"cannot use kubeconfig {path}: {' '.join(str(e).split())[:200]} "
                         f"(delete it and run `provision kubeconfig {config}`)") from e
    result = core.rotate(prepared, api, kinds, out.info, cloud_token=cloud,
                         failover_token=failover, wait=wait)
    if result.unconfirmed:
        raise Unconfirmed(
            f"the new failover token is stored, but the agents on "
            f"{', '.join(result.unconfirmed)} do not run with it after {wait:.0f} s (they "
            "keep their old token while the DigitalOcean API refuses the new one there, or "
            "did not run): see `journalctl -u provision-failover` there, then run "
            f"`provision check {config} --online`")
    out.info(f"rotated on {prepared.env.name}: {', '.join(result.done) or 'nothing'}")
