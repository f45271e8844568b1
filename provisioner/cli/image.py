"""``provision image build``: a pre-baked node image (a DigitalOcean droplet snapshot)."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import config_argument


@click.group(epilog="""\b
Examples:
  provision image build prod.yaml   # then digitalocean.image: snapshot:<the name printed>""")
def image() -> None:
    """Pre-baked node images: boot without installing packages or pulling images."""


@image.command(epilog="""\b
Examples:
  provision image build prod.yaml
  provision image build prod.yaml --size s-1vcpu-512mb-10gb --timeout 2400""")
@config_argument
@click.option("--size", default="s-1vcpu-1gb", show_default=True,
              help="Size of the temporary droplet; its disk is the snapshot's minimum disk, "
                   "so no node size may have a smaller one.")
@click.option("--timeout", type=click.FloatRange(1, 6 * 3600), default=1800.0,
              show_default=True,
              help="Seconds to wait for the droplet to finish the installs and power off.")
@reports_errors
def build(config: Path, size: str, timeout: float) -> None:
    """Make a droplet snapshot with the nodes' installs done.

    A temporary droplet (tagged provision:<env>:image-build) runs the node bootstrap
    script's installs for the file's Kubernetes version: containerd, kubelet, kubeadm and
    kubectl, the control-plane and add-on images pulled, /etc/provision/image.json
    written; it then powers itself off, is snapshotted as
    provision-<env>-k8s-<version>-<time> and deleted (also on failure or Ctrl-C).
    Name the snapshot in the file as digitalocean.image: snapshot:<name>; nodes of it skip
    the installs their image already has. Exit 1 when the cloud fails, 2 on a bad file.
    """
    from provisioner.cloud.image_build import build as build_image
    from provisioner.cloud.token import api_token
    from provisioner.config import load_environment
    from provisioner.render.cloudinit import image_builder

    out = console()
    env = load_environment(config)
    token = api_token()
    built = build_image(env, token, image_builder(env).text, out.info, size=size,
                        timeout=timeout)
    out.info(f"snapshot {built.name} ({built.id}) in {built.region} has Kubernetes "
             f"{built.kubernetes}; in {config}: digitalocean.image: snapshot:{built.name}")
    click.echo(f"snapshot:{built.name}")
