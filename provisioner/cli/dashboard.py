"""``provision dashboard``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import common, given_kubeconfig


@click.command(epilog="""\b
Examples:
  provision dashboard prod.yaml                 # read-only (ClusterRole view)
  provision dashboard prod.yaml --admin         # cluster-admin, until it ends
  provision dashboard prod.yaml --port 4466 --no-browser""")
@common
@click.option("--admin", is_flag=True,
              help="Log in as the cluster-admin account (default: the read-only one).")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Reach the cluster through this kubeconfig instead.")
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="The local port on 127.0.0.1 (0: any free one).")
@click.option("--no-browser", is_flag=True, help="Print the URL only.")
@reports_errors
def dashboard(config: Path, workdir: Path | None, admin: bool, kubeconfig: Path | None,
              port: int, no_browser: bool) -> None:
    """Open Headlamp (`addons: {headlamp: true}`) through the API server.

    Applies the pinned Headlamp release, asks the TokenRequest API for a one-hour token of
    the read-only account (ClusterRole view) or, with --admin, the admin account
    (cluster-admin; applied for this run only and deleted when it ends), hands it over
    once (clipboard, or the terminal: never stdout, a log or a file), and forwards
    127.0.0.1:PORT to the Headlamp pod through the API server's port-forward until Ctrl-C
    or SIGTERM (exit 0). The URL goes to stdout.
    """
    from provisioner import dashboard as core
    from provisioner.config import load_environment
    from provisioner.errors import UsageError
    from provisioner.kube import Kube
    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.render.headlamp import ADMIN_ACCOUNT as HEADLAMP_ADMIN
    from provisioner.workdir import Workdir

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    if not env.addons.headlamp:
        raise UsageError(f"{config}: addons.headlamp is not turned on (add `addons: "
                         "{headlamp: true}` to the file to run Headlamp in the cluster)")
    path = kubeconfig or Workdir.for_config(config, env, workdir).root / "kubeconfig"
    if not path.exists():
        raise UsageError(f"no kubeconfig at {path}: run `provision up` (or pass --kubeconfig)")
    out = console()
    delivery = core.check_delivery()  # before a token exists: refuse where it would leak
    api = api_client(path)
    kube = Kube(api, timeout=30)
    core.install(kube, admin)
    try:
        _serve(core, kube, api, admin, port, delivery, no_browser)
    finally:
        if admin:  # no cluster-admin account stays behind for anyone to borrow
            core.remove_admin(kube)
            out.info(f"removed the admin account {HEADLAMP_ADMIN} and its binding")
    out.info("stopped")


def _serve(core: Any, kube: Any, api: Any, admin: bool, port: int,
           delivery: list[str] | None, no_browser: bool) -> None:
    """Hand over the token and forward until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from provisioner import status_web
    from provisioner.render.headlamp import VERSION as HEADLAMP_VERSION

    out = console()
    forwarder = core.Forwarder(api, port)
    token = core.request_token(kube, admin)
    stop = threading.Event()
    # Handled before the URL is out: a SIGTERM sent on seeing it stops the command cleanly.
    previous = {s: signal.signal(s, lambda *_: stop.set())
                for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        click.echo(forwarder.url)
        out.info(f"Headlamp {HEADLAMP_VERSION} at {forwarder.url} (through the API server; "
                 "Ctrl-C stops)")
        core.deliver(token, delivery, out.info)
        del token
        if not no_browser and status_web.has_browser():
            status_web.open_browser(forwarder.url)
        forwarder.serve(stop)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    for error in forwarder.errors:
        out.error(f"a connection to Headlamp failed: {error}")
