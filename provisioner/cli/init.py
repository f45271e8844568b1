"""``provision init``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import click

from provisioner.cli.common import console, reports_errors

T = TypeVar("T")


class _Terminal:
    """Asks on stderr and reads stdin; re-asks until the answer passes its check."""

    def ask(self, question: str, parse: Callable[[str], T], default: str | None = None) -> T:
        from provisioner.scaffold import InvalidAnswer

        def check(text: str) -> T:
            try:
                return parse(text)
            except InvalidAnswer as e:
                raise click.BadParameter(str(e)) from None  # click shows it and asks again

        answer: T = click.prompt(question, default=default, value_proc=check, err=True)
        return answer

    def confirm(self, question: str, default: bool = False) -> bool:
        return click.confirm(question, default=default, err=True)

    def say(self, message: str) -> None:
        click.echo(message, err=True)


@click.command(epilog="""\b
Examples:
  provision init                                  # asks on the terminal, writes environment.yaml
  provision init envs/staging.yaml --control-plane-count 1 --workers 2
  provision init prod.yaml --yes --name prod --ssh-key 41234567 --api-cidr 203.0.113.0/24
  provision init dev.yaml -y --ssh-key 41234567 --api-cidr 198.51.100.7/32 --app web=nginx:1.27:80
""")
@click.argument("path", type=click.Path(path_type=Path, dir_okay=False), required=False,
                default="environment.yaml", metavar="[PATH]")
@click.option("--name", metavar="NAME",
              help="Environment name: prefix of every cloud resource, at most 20 characters "
                   "[default: PATH's stem, if it is a valid name].")
@click.option("--region", metavar="SLUG", help="DigitalOcean region [default: fra1].")
@click.option("--control-plane-count", metavar="1|3|5",
              help="Control-plane nodes [default: 3].")
@click.option("--control-plane-size", metavar="SLUG",
              help="Control-plane droplet size [default: s-2vcpu-4gb].")
@click.option("--workers", metavar="N", help="Worker nodes [default: 2].")
@click.option("--worker-size", metavar="SLUG", help="Worker droplet size [default: s-2vcpu-4gb].")
@click.option("--ssh-key", "ssh_keys", metavar="FINGERPRINT|ID", multiple=True,
              help="SSH key allowed on the droplets (repeatable; required).")
@click.option("--api-cidr", "api_cidrs", metavar="CIDR", multiple=True,
              help="Network allowed to reach the Kubernetes API (repeatable; required).")
@click.option("--kubernetes-version", metavar="X.Y.Z",
              help="Kubernetes version [default: a patch of the middle supported minor].")
@click.option("--app", "apps", metavar="NAME=IMAGE[:PORT]", multiple=True,
              help="An app (repeatable). PORT is read off the end only after a tag or digest: "
                   "api=nginx:1.27:8080.")
@click.option("--yes", "-y", is_flag=True,
              help="Take the default of every value not given instead of asking.")
@click.option("--interactive/--no-interactive", default=None,
              help="Ask for the values not given [default: when stdin is a terminal].")
@click.option("--force", is_flag=True, help="Overwrite PATH if it exists.")
@reports_errors
def init(path: Path, name: str | None, region: str | None, control_plane_count: str | None,
         control_plane_size: str | None, workers: str | None, worker_size: str | None,
         ssh_keys: tuple[str, ...], api_cidrs: tuple[str, ...],
         kubernetes_version: str | None, apps: tuple[str, ...], yes: bool,
         interactive: bool | None, force: bool) -> None:
    """Write a new, commented environment file.

    On a terminal it asks for every value the flags did not give, offering the regions,
    sizes and SSH keys of the account when DIGITALOCEAN_TOKEN is set. Without one, every
    value comes from a flag or, with --yes, its default; --ssh-key and --api-cidr have
    none. Refuses to overwrite PATH without --force.
    """
    import sys

    from provisioner import scaffold

    out = console()
    given = scaffold.Given(name=name, region=region, control_plane_count=control_plane_count,
                           control_plane_size=control_plane_size, workers=workers,
                           worker_size=worker_size, ssh_keys=ssh_keys, api_cidrs=api_cidrs,
                           kubernetes_version=kubernetes_version, apps=apps)
    asking = sys.stdin.isatty() if interactive is None else interactive
    try:
        answers = scaffold.init_environment(path, given, prompter=_Terminal() if asking else None,
                                            accept_defaults=yes, force=force, note=out.info)
    except click.Abort:  # Ctrl-C or end of input at a prompt
        out.info("nothing was written")
        raise KeyboardInterrupt from None
    out.info(f"wrote {path}: environment {answers.name!r}, {answers.control_plane_count} "
             f"control-plane node(s), {answers.workers} worker(s), {len(answers.apps)} app(s)")
    for line in scaffold.next_steps(path):
        out.info(line)
