"""``provision restore``."""

from __future__ import annotations

from pathlib import Path

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.infra_options import (
    allow_full_token_option,
    ask,
    parallelism_option,
    require_terminal_or_yes,
    terraform_bin_option,
    yes_option,
)
from provisioner.cli.options import common


@click.command(epilog="""\b
Examples:
  provision backup prod.yaml --list                       # the snapshot IDs
  provision restore prod.yaml --snapshot latest           # shows the plan, asks, restores
  provision restore prod.yaml --snapshot 20261207T100000Z-prod-cp-1 --yes
  provision restore prod.yaml --snapshot latest --yes     # again after an interruption
  provision restore prod.yaml --snapshot latest --parallelism 20""")
@common
@click.option("--snapshot", "snapshot", metavar="ID|latest", required=True,
              help="The snapshot to restore: an ID from `provision backup CONFIG --list`, or "
                   "`latest` (the newest hourly one).")
@allow_full_token_option
@terraform_bin_option
@parallelism_option
@yes_option
@reports_errors
def restore(config: Path, workdir: Path | None, snapshot: str, allow_full_token: bool,
            terraform_bin: str | None, parallelism: int | None, yes: bool) -> None:
    """Rebuild the control plane from an etcd snapshot, keeping endpoint and CA.

    Verifies the snapshot as `backup --fetch` does (another cluster's is refused, exit 2),
    stages a one-time encrypted copy of it in the backup bucket, then replaces every
    control-plane droplet: the first restores etcd from the copy and runs kubeadm init with
    the CA and keys provision holds, on the same floating IP or load balancer; the others
    join. Workers and kubeconfigs keep working; the apps come back as the snapshot had
    them, and changes made after it are lost. A plan that would change anything else is
    refused (exit 3: run `up` first). Not held back by deploy windows (a recovery), but it
    asks first, naming what is destroyed, unless --yes. Run it again after an
    interruption: it finishes the restore under way and never restores twice.
    """
    from provisioner.infra.changes import InfraPlan
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import restore as core
    from provisioner.pipeline.prepare import Prepared
    from provisioner.ui.infra_text import format_infra_plan
    from provisioner.ui.progress import Progress

    require_terminal_or_yes(yes, "restore")
    out = console()

    def show(plan: InfraPlan, prepared: Prepared) -> None:
        out.info(format_infra_plan(plan, prepared.env.name).rstrip("\n"))

    def confirm(plan: InfraPlan, prepared: Prepared, lost: str) -> bool:
        out.info(lost)
        return ask(f"Restore {prepared.env.name}?", yes)

    def progress(names: dict[str, str]) -> Progress:
        return Progress(names, verbose=out.verbosity > 1)

    restored = core.restore(config, workdir, resolve(terraform_bin, parallelism), snapshot,
                            show, confirm, progress, report=out.info,
                            allow_full_token=allow_full_token)
    out.info(restored.summary())
