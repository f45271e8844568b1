"""``provision deploy`` and ``provision rollback``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from provisioner.cli.common import console, reports_errors
from provisioner.cli.fleet import fleet_aware
from provisioner.cli.fleet_commands import deploy_fleet
from provisioner.cli.options import (
    common,
    given_kubeconfig,
    output_option,
    override_reason,
    override_window_options,
)
from provisioner.errors import UsageError

kubeconfig_option = click.option(
    "--kubeconfig", "kubeconfig", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Deploy to the cluster of this kubeconfig (minikube, kind, any cluster) instead of "
         "the environment's own [default: the work folder's kubeconfig].")
context_option = click.option("--context", default=None, help="Context of --kubeconfig.")


def deploy_client(config: Path, workdir: Path | None, kubeconfig: Path | None,
                  context: str | None) -> tuple[Any, Any]:
    from kubernetes import config as kube_config

    from provisioner.config import load_environment
    from provisioner.kube import client_for
    from provisioner.workdir import Workdir

    kubeconfig = given_kubeconfig(kubeconfig)
    env = load_environment(config)
    path = kubeconfig or Workdir.for_config(config, env, workdir).root / "kubeconfig"
    if not path.is_file():
        raise UsageError(f"no kubeconfig at {path}: run `provision up {config}` first, or "
                         "pass --kubeconfig for an existing cluster")
    try:
        return env, client_for(path, context)
    except (kube_config.ConfigException, OSError, ValueError) as e:
        detail = " ".join(str(e).split())  # one line, whatever the client's message holds
        raise UsageError(f"cannot use kubeconfig {path}: {detail}") from e
    except (TypeError, KeyError, AttributeError, IndexError) as e:
        # The client indexes into the YAML as it finds it: a list or a scalar where a
        # mapping belongs fails inside it.
        raise UsageError(f"cannot use kubeconfig {path}: it is not a kubeconfig (a mapping "
                         "with clusters, users and contexts)") from e


@click.command(epilog="""\b
Examples:
  provision deploy prod.yaml
  provision deploy dev.yaml --kubeconfig ~/.kube/config --context kind-dev
  provision deploy prod.yaml --override-window --reason "hotfix INC-1234"
  provision deploy fleet.yaml                  # canary, bake under the gate, then waves
  provision deploy fleet.yaml --no-wait        # refuse a region outside its window
  provision deploy fleet.yaml --override-window --reason "INC-9" --region nyc3""")
@common
@kubeconfig_option
@context_option
@click.option("--force-conflicts", is_flag=True,
              help="Take over fields another field manager owns.")
@override_window_options("Deploy")
@click.option("--timeout", default=600, show_default=True, type=click.IntRange(1, 24 * 3600),
              help="Seconds to wait for every rollout.")
@click.option("--region", "regions", multiple=True, metavar="R",
              help="Fleet: --override-window applies to this region only (repeatable) "
                   "[default: every region].")
@click.option("--no-wait", is_flag=True,
              help="Fleet: refuse (exit 3) when a region is outside its deploy window, "
                   "instead of waiting for it to open.")
@output_option
@reports_errors
@fleet_aware("deploy", handler=deploy_fleet)
def deploy(config: Path, workdir: Path | None, kubeconfig: Path | None, context: str | None,
           force_conflicts: bool, override_window: bool, reason: str | None,
           timeout: int, regions: tuple[str, ...], no_wait: bool, output: str) -> None:
    """Bring the cluster's apps to the declared state and wait until they serve.

    Server-side applies every object (field manager `provision`), waits for the rollouts,
    switches blue/green Services, prunes what the file no longer declares, and refuses
    outside the deploy windows (exit 3) unless overridden.

    A fleet file: the canary region first, inside its own deploy window, then a bake
    reading its load balancers' 5xx ratio (the fleet's gate:); a breach rolls the region
    back and stops (exit 1); then each wave the same way. A region outside its window is
    waited for (or refused with --no-wait, exit 3).
    """
    if regions or no_wait:
        raise UsageError("--region and --no-wait are for a fleet file (several regions)")
    from provisioner.pipeline.deploy_stage import deploy as run
    from provisioner.pipeline.prepare import one_writer

    override = override_reason(override_window, reason)
    env, api = deploy_client(config, workdir, kubeconfig, context)
    out = console()
    with one_writer(config, workdir, "deploy"):
        result = run(env, api, out.info, force_conflicts=force_conflicts,
                     override_reason=override,
                     timeout=float(timeout))
    if output == "json":
        from provisioner.ui.output import emit_json

        emit_json({"environment": env.name, "applied": result.applied,
                   "pruned": [list(p) for p in result.pruned], "switched": result.switched,
                   "kept": result.kept, "override": result.override or None})
    out.info(f"deployed {len(env.apps)} app(s) to {env.name}: {result.applied} objects applied, "
             f"{len(result.pruned)} pruned"
             + (f", switched {', '.join(f'{a}->{c}' for a, c in result.switched.items())}"
                if result.switched else ""))


@click.command(epilog="""\b
Examples:
  provision rollback prod.yaml                 # every app
  provision rollback prod.yaml --app api""")
@common
@kubeconfig_option
@context_option
@click.option("--app", default=None, help="Only this app.")
@reports_errors
def rollback(config: Path, workdir: Path | None, kubeconfig: Path | None, context: str | None,
             app: str | None) -> None:
    """Return apps to what served before the last deploy.

    Blue/green apps switch back to the colour kept running (instant); rolling apps get their
    previous revision back and roll out again.
    """
    import time

    from provisioner.kube import Kube
    from provisioner.pipeline.prepare import one_writer
    from provisioner.workloads import rollout
    from provisioner.workloads.objects import applyset_id
    from provisioner.workloads.rollback import rollback as run

    env, api = deploy_client(config, workdir, kubeconfig, context)
    out = console()
    with one_writer(config, workdir, "rollback"):  # until rolled out: a deploy now would race
        results = run(env, api, app)
        for item in results:
            out.info(f"{item.app}: {item.detail}")
        waiting = [rollout.Target("Deployment", r.deployment, r.app) for r in results
                   if r.deployment]
        if waiting:
            rollout.wait(Kube(api), env.namespace, waiting,
                         f"applyset.kubernetes.io/part-of={applyset_id(env)}",
                         time.monotonic() + 600, lambda statuses: None)
            out.info("rolled back: " + ", ".join(t.app for t in waiting))
