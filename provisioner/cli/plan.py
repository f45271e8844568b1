"""``provision plan``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.infra_options import (
    allow_full_token_option,
    parallelism_option,
    terraform_bin_option,
)
from provisioner.cli.options import common, given_kubeconfig, output_option
from provisioner.errors import EXIT_CHANGES_PENDING, UsageError


@click.command(epilog="""\b
Examples:
  provision plan examples/production.yaml --offline
  provision plan prod.yaml --out prod.tfplan && provision up prod.yaml --plan prod.tfplan
  provision plan prod.yaml --output json --exit-code   # CI: exit 4 when changes are pending
  provision plan prod.yaml --replace prod-cp-2 --out prod.tfplan   # one controller anew
  provision plan prod.yaml --output json | jq .upgrade   # a new kubernetes.version: preflight
  provision plan prod.yaml --output json | jq .cost_change   # monthly cost before -> after
  provision plan fleet.yaml --offline   # a fleet file: every environment, one summary""")
@common
@click.option("--offline", is_flag=True,
              help="Render and show what would be created, without calling any cloud API.")
@click.option("--out", "out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Save the Terraform plan here for `provision up --plan` (it holds secrets: "
                   "it is written 0600). On a running cluster, a plan that creates droplets "
                   "gets fresh join credentials first (valid for some hours).")
@click.option("--exit-code", "exit_code", is_flag=True,
              help="Exit 4 when the plan has changes, 0 when it has none.")
@click.option("--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False),
              default=None, help="Also diff the apps against this cluster [default: the work "
                                 "folder's kubeconfig, when the cluster exists].")
@click.option("--apps-only", is_flag=True,
              help="Only the workload diff (e.g. against a kind or minikube cluster).")
@click.option("--replace", "replace", multiple=True, metavar="NAME",
              help="Plan a new droplet for this control-plane node (e.g. prod-cp-2), as "
                   "`up --replace` does.")
@allow_full_token_option
@terraform_bin_option
@parallelism_option
@output_option
@reports_errors
@fleet_aware("plan")
def plan(config: Path, workdir: Path | None, offline: bool, out: Path | None, exit_code: bool,
         kubeconfig: Path | None, apps_only: bool, replace: tuple[str, ...],
         allow_full_token: bool, terraform_bin: str | None, parallelism: int | None,
         output: str) -> None:
    """Show what `up` would create or change.

    Online (the default): renders into the work folder, checks the DigitalOcean account,
    runs `terraform plan` and shows the infrastructure diff. When the file's
    kubernetes.version differs from the running cluster's, an "Upgrade" section shows the
    upgrade preflight: versions from -> to and each blocking finding or warning. Then the
    monthly cost at the account's droplet prices and its change from what runs now. With
    --offline: renders and prints what the file declares (droplets, endpoint, firewall
    rules, apps) and its monthly cost at list prices, with no API call.
    """
    from provisioner.ui.output import emit_json, emit_text

    given_kubeconfig(kubeconfig)  # before any work: a mistyped path is a usage error
    if replace and (offline or apps_only):
        from provisioner.errors import UsageError

        raise UsageError("--replace plans a droplet's replacement through Terraform: "
                         "it cannot be combined with --offline or --apps-only")
    if offline:
        _offline(config, workdir, output)
        return
    if apps_only:
        changes = _workloads(config, workdir, kubeconfig, required=True)
        assert changes is not None
        _emit_workloads(changes, output, exit_code)
        return
    from provisioner.cloud.token import api_token
    from provisioner.cost.report import plan_costs, plan_costs_text
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import lifecycle
    from provisioner.ui.infra_text import format_infra_plan
    from provisioner.ui.progress import Progress

    verbose = console().verbosity > 1
    outcome = lifecycle.plan(config, workdir, resolve(terraform_bin, parallelism), out,
                             progress=lambda names: Progress(names, verbose=verbose),
                             allow_full_token=allow_full_token, report=console().info,
                             replace=replace)
    result = outcome.plan
    changes = _workloads(config, workdir, kubeconfig, required=False)
    pending_apps = bool(changes and any(c.action != "unchanged" for c in changes))
    # A version change is pending too (exit 4 with --exit-code), blocked or not: plan only
    # informs; `up` is what refuses it.
    upgrading = outcome.upgrade is not None
    costs, warning = plan_costs(outcome.prepared.env, api_token(),
                                outcome.prepared.work.root / "infrastructure.json")
    if warning:
        console().info(warning)
    if output == "json":
        data = result.as_json()
        data["environment"] = outcome.prepared.env.name
        data["plan_file"] = str(out) if out else None
        data["workloads"] = _workloads_json(changes)
        data["upgrade"] = outcome.upgrade.as_json() if outcome.upgrade is not None else None
        data["changes_pending"] = bool(result.pending) or pending_apps or upgrading
        data.update(costs)
        emit_json(data)
    else:
        emit_text(format_infra_plan(result, outcome.prepared.env.name))
        if outcome.upgrade is not None:
            from provisioner.upgrade.preflight import format_preflight

            emit_text(format_preflight(outcome.upgrade))
        if changes is not None:
            from provisioner.workloads.diff import format_diff

            emit_text(format_diff(changes))
        if text := plan_costs_text(costs):
            emit_text(text)
    if out:
        console().info(f"saved the plan to {out}; apply it with "
                       f"`provision up {config} --plan {out}`")
    if exit_code and (result.pending or pending_apps or upgrading):
        sys.exit(EXIT_CHANGES_PENDING)


def _workloads(config: Path, workdir: Path | None, kubeconfig: Path | None,
               required: bool) -> list[Any] | None:
    """The workload diff, when a cluster is known (or required)."""
    import os

    from provisioner.config import load_environment
    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.workdir import Workdir
    from provisioner.workloads.diff import diff

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    path = kubeconfig or Workdir.for_config(config, env, workdir).root / "kubeconfig"
    if not path.is_file():
        if required:
            raise UsageError(f"no kubeconfig at {path}: pass --kubeconfig")
        return None
    environ = {s.from_env: os.environ.get(s.from_env, "") for s in env.secrets}
    return diff(env, api_client(path), environ)


def _workloads_json(changes: list[Any] | None) -> list[dict[str, Any]] | None:
    if changes is None:
        return None
    return [{"kind": c.kind, "name": c.name, "action": c.action, "fields": list(c.fields)}
            for c in changes]


def _emit_workloads(changes: list[Any], output: str, exit_code: bool) -> None:
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.workloads.diff import format_diff

    pending = any(c.action != "unchanged" for c in changes)
    if output == "json":
        emit_json({"workloads": _workloads_json(changes), "changes_pending": pending})
    else:
        emit_text(format_diff(changes))
    if exit_code and pending:
        sys.exit(EXIT_CHANGES_PENDING)


def _offline(config: Path, workdir: Path | None, output: str) -> None:
    from provisioner.config import load_environment
    from provisioner.cost.report import offline_plan_costs, offline_plan_costs_text
    from provisioner.plan.offline import offline_plan
    from provisioner.render import render_environment
    from provisioner.ui.output import emit_json, emit_text
    from provisioner.ui.plan_text import format_offline_plan
    from provisioner.workdir import Workdir

    env = load_environment(config)
    work = Workdir.for_config(config, env, workdir)
    with work.locked("plan --offline"):  # it writes the folder and, once, the secrets
        work.write_rendered(render_environment(env))
        work.offline_secrets(env)
    result = offline_plan(env)
    result["workdir"] = str(work.root)
    result.update(offline_plan_costs(env))  # no API call: list prices, no "before"
    if output == "json":
        emit_json(result)
    else:
        emit_text(format_offline_plan(result))
        emit_text(offline_plan_costs_text(result))
    console().info(f"rendered into {work.root}")
