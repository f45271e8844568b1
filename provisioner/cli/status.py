"""``provision status``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import status_extra
from provisioner.cli.options import common, given_kubeconfig, output_option


@click.command(epilog="""\b
Examples:
  provision status prod.yaml
  provision status prod.yaml --output json | jq '.cluster.apps'
  provision status prod.yaml --output json | jq '.cluster.nodes[] | {name, kubelet, etcd}'
  provision status prod.yaml --output json | jq .cost.total   # the monthly run rate
  provision status fleet.yaml   # every region, and which ones the fleet's traffic avoids
  provision status prod.yaml --web                    # a local page; reload to read again
  provision status prod.yaml --web --port 8765 --no-browser""")
@common
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Read the cluster through this kubeconfig instead.")
@output_option
@click.option("--web", is_flag=True,
              help="Serve the status as a read-only page on 127.0.0.1 until Ctrl-C.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="With --web: the local port (0: any free one).")
@click.option("--no-browser", is_flag=True,
              help="With --web: print the URL only (no browser is opened in CI anyway).")
@reports_errors
@fleet_aware("status", extra=status_extra)
def status(config: Path, workdir: Path | None, kubeconfig: Path | None, output: str,
           web: bool, port: int, no_browser: bool) -> None:
    """Show droplets by role, the floating IP's holder, nodes, apps and the last deploy.

    Per node: Ready, kubelet version, droplet age, cordoned; for control-plane nodes their
    etcd member (its mirror pod) and VRRP state; the monthly run rate of what the account
    holds of the environment (autoscaled droplets included). Exits 2 when the kubeconfig or the work
    folder's infrastructure record cannot be read, 1 when the cloud or the cluster did not
    answer (after showing the rest); a source not made yet (no token, no `up`) is not an error.

    With --web: the same data as a page on 127.0.0.1 (and /status.json), read again on
    each reload (at most every 5 s); runs until Ctrl-C or SIGTERM, then exits 0.
    """
    import sys

    from provisioner.cloud.token import api_token
    from provisioner.config import load_environment
    from provisioner.status import collect, format_status, problems
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.workdir import Workdir

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    root = Workdir.for_config(config, env, workdir).root
    path = kubeconfig or root / "kubeconfig"
    if web:
        _serve(lambda: collect(env, api_token(required=False) or None, path,
                               root / "infrastructure.json"), port, not no_browser)
        return
    result = collect(env, api_token(required=False) or None, path,
                     root / "infrastructure.json")
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_status(result))
    code, why = problems(result)
    if code:
        out = console()
        for line in why:
            out.error(f"status incomplete: {line}")
        sys.exit(code)


def _serve(read: Callable[[], dict[str, Any]], port: int, browse: bool) -> None:
    from provisioner import status_web

    server = status_web.bind("127.0.0.1", port, status_web.StatusCache(read))
    url = status_web.url_of(server)
    out = console()

    def announce() -> None:
        click.echo(url)  # stdout: a script may read it; the rest goes to stderr
        out.info(f"serving the status of this environment at {url} (read-only; Ctrl-C "
                 "stops)")
        if browse and status_web.has_browser() and not status_web.open_browser(url):
            out.info("could not open a browser: open the URL above")

    status_web.serve(server, announce)
    out.info("stopped")
