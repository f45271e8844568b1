"""``provision backup``."""

from __future__ import annotations

import math
from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.options import common, given_kubeconfig, output_option


def _finite(_ctx: click.Context, _param: click.Parameter, value: float) -> float:
    # FloatRange lets nan through (every comparison with nan is false): a wait forever.
    if not math.isfinite(value):
        raise click.BadParameter(f"{value} is not a number of seconds (1 to 86400)")
    return value


@click.command(epilog="""\b
Examples:
  provision backup prod.yaml                    # take a snapshot now and wait for it
  provision backup prod.yaml --timeout 1200
  provision backup prod.yaml --list             # what the bucket holds, newest first
  provision backup prod.yaml --list --output json | jq '.[0].id'
  provision backup prod.yaml --fetch latest --to ./restore
  provision backup prod.yaml --fetch 20261207T100000Z-prod-cp-1 --to ./restore""")
@common
@click.option("--list", "list_only", is_flag=True,
              help="List the snapshots in the bucket (hourly and daily) instead.")
@click.option("--timeout", type=click.FloatRange(1, 24 * 3600), default=600.0,
              show_default=True, callback=_finite, help="Seconds to wait for the snapshot.")
@click.option("--fetch", "fetch_id", metavar="ID", default=None,
              help="Download, check and unpack this snapshot (an ID from --list, or "
                   "`latest`: the newest hourly one) into --to.")
@click.option("--to", "to_dir", type=click.Path(path_type=Path), default=None,
              help="With --fetch: a new or empty folder for snapshot.db, meta.json, pki/.")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Reach the cluster through this kubeconfig instead.")
@output_option
@reports_errors
def backup(config: Path, workdir: Path | None, list_only: bool, timeout: float,
           fetch_id: str | None, to_dir: Path | None, kubeconfig: Path | None,
           output: str) -> None:
    """Take an etcd snapshot now, or list the stored ones.

    Asks the control-plane nodes' backup agents for a snapshot (the `requested-at` key of
    kube-system/provision-etcd-backup) and waits until the etcd leader's agent has stored
    it: prints its object key, node, size and time; exit 1 with the agent's error if the
    pass failed, or when none arrives in time. --list reads the bucket (Spaces key from
    SPACES_ACCESS_KEY_ID / SPACES_SECRET_ACCESS_KEY). A file without a `backups:` section
    exits 2.

    --fetch ID --to DIR downloads one snapshot, opens it with the recipient key kept with
    the cluster secrets, checks that it is the one asked for and that its PKI is this
    cluster's (exit 2 otherwise; exit 1 for a damaged object), and unpacks it into DIR
    (0700, files 0600), then prints the steps of a restore by hand.
    """
    from provisioner import clock
    from provisioner.config import load_environment
    from provisioner.pipeline import backup_now
    from provisioner.ui.output import emit_json, emit_text

    env = load_environment(config)
    backups = backup_now.configured(env, config)
    if (fetch_id is None) != (to_dir is None) or (fetch_id is not None and list_only):
        from provisioner.errors import UsageError

        raise UsageError("--fetch ID and --to DIR go together, without --list (e.g. "
                         f"provision backup {config} --fetch latest --to ./restore)")
    if fetch_id is not None and to_dir is not None:
        from provisioner.pipeline import backup_fetch

        fetched = backup_fetch.fetch(config, env, workdir, backups, fetch_id, to_dir)
        if output == "json":
            emit_json(fetched.as_dict())
        else:
            emit_text(backup_fetch.summary(fetched) + backup_fetch.next_steps(fetched))
        return
    if list_only:
        items = backup_now.listing(backups, clock.now())
        if output == "json":
            emit_json(items)
        else:
            emit_text(backup_now.format_listing(backups, items))
        return
    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.workdir import Workdir

    path = given_kubeconfig(kubeconfig) or Workdir.for_config(config, env, workdir).root \
        / "kubeconfig"
    if not path.is_file():
        from provisioner.errors import UsageError

        raise UsageError(f"no kubeconfig at {path}: run `provision up {config}` first, or "
                         "pass --kubeconfig")
    taken = backup_now.take(api_client(path), console().info, timeout)
    if output == "json":
        emit_json(taken.as_dict())
    else:
        emit_text(f"snapshot {taken.key}\n  node: {taken.node}\n"
                  f"  size: {backup_now.size_text(taken.bytes)}\n  taken at: {taken.taken_at}"
                  "\n")
