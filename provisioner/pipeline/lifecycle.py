"""``plan``, ``up`` and ``destroy`` as Click-free functions the CLI calls.

Each takes callbacks for what only the CLI knows (how to show a plan, how to ask the user),
so the same functions serve a terminal, a CI job and the tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.bootstrap import join_credentials
from provisioner.bootstrap.readiness import Report
from provisioner.cloud import backup_bucket
from provisioner.cloud.preflight import preflight
from provisioner.cloud.token import api_token
from provisioner.errors import ProvisionError, UsageError
from provisioner.infra.changes import InfraPlan, names_by_address, parse_plan
from provisioner.infra.engine import Engine
from provisioner.infra.workspace import Workspace
from provisioner.pipeline import (
    change_window,
    cluster_stage,
    deploy_stage,
    infra_stage,
    ownership,
    replacing,
    rolling,
    running,
)
from provisioner.pipeline.cluster_stage import Cluster
from provisioner.pipeline.deploy_stage import DeployResult
from provisioner.pipeline.infra_stage import PolicyError
from provisioner.pipeline.prepare import Prepared, holds_work_folder, prepare, run_plan_path
from provisioner.render.names import controller_names, resource_names
from provisioner.ui.progress import Progress

ShowPlan = Callable[[InfraPlan, Prepared], None]
Confirm = Callable[[InfraPlan, Prepared], bool]
MakeProgress = Callable[[dict[str, str]], Progress]


class Declined(ProvisionError):
    """The user answered no; nothing was applied (exit 1, as Terraform does)."""


# The stages `up` runs, in order; `--until` stops after one of them.
STAGES = ("infra", "cluster", "apps")


@dataclass
class Outcome:
    """What an online command did."""

    prepared: Prepared
    plan: InfraPlan
    applied: bool = False
    outputs: dict[str, Any] = field(default_factory=dict)
    summary: str = ""
    seconds: float = 0.0
    cluster: Cluster | None = None
    deployed: DeployResult | None = None
    upgrade: Any = None  # plan: the upgrade preflight (upgrade.preflight.Preflight) if any
    swept: int = 0  # leftovers the destroy's sweep deleted
    override: dict[str, str] = field(default_factory=dict)  # infrastructure window override


def _plan_path(prepared: Prepared, name: str) -> Path:
    return run_plan_path(prepared.work, name)


@holds_work_folder("plan")
def plan(config: Path, workdir: Path | None, engine: Engine, out: Path | None = None,
         progress: MakeProgress | None = None, allow_full_token: bool = False,
         report: Report | None = None, replace: tuple[str, ...] = ()) -> Outcome:
    """Render, check the account, and plan; the plan is saved to ``out`` when given.

    ``replace`` names control-plane droplets to replace (Terraform's ``-replace``).

    A saved plan is applied later by `up --plan`, which cannot change it: when it creates
    droplets on a running cluster, they get join credentials made now (written to the
    cluster: a bootstrap token and the uploaded certificates), valid for the hours kubeadm
    gives them (`up --plan` refuses the file once they are not).
    """
    say = report or (lambda message: None)
    prepared = prepare(config, workdir)
    replaced = replacing.addresses(prepared, replace)  # a mistyped name: before any call
    token = api_token()
    failover = infra_stage.failover_token(prepared, token, allow_full_token, say)
    preflight(prepared.env, token, config=prepared.config)
    backup_bucket.preflight(prepared.env.backups)
    cluster = running.probe(prepared, say)
    upgrade = None
    if cluster is not None and running.changes_version(prepared, cluster):
        # `up` refuses this file (running.check_version); `plan` says what an upgrade to
        # it would meet, and plans the rest as usual.
        from provisioner.upgrade import preflight as upgrade_preflight

        upgrade = upgrade_preflight.check(prepared.env, cluster.api, clock.now(),
                                          prepared.config)
    ws = infra_stage.workspace(prepared, engine, token, progress({}) if progress else None,
                               failover, initialised=cluster is not None)
    ws.replace = replaced
    planfile = (infra_stage.check_plan_destination(out, prepared.work.root, prepared.config)
                if out else _plan_path(prepared, "plan.tfplan"))
    prepared, infra_plan = _plan_joinable(ws, planfile, prepared, token, failover,
                                          cluster if out else None, True, say)
    return Outcome(prepared, infra_plan, upgrade=upgrade)


def _plan_joinable(ws: Workspace, planfile: Path, prepared: Prepared, token: str,
                   failover: str | None, cluster: running.Running | None, detail: bool,
                   say: Report, check: Callable[[InfraPlan], None] = lambda plan: None
                   ) -> tuple[Prepared, InfraPlan]:
    """Plan; when that creates droplets on the running ``cluster``, make join credentials
    the cluster accepts now and plan again with them (None: plan once, nothing written).
    ``check`` sees the first plan, before anything is written to the cluster."""
    infra_plan = infra_stage.plan(ws, planfile, resource_names(prepared.env), detail=detail)
    check(infra_plan)
    if cluster is not None and running.creates_droplets(infra_plan):
        # Existing droplets ignore user_data changes: only the new ones take these.
        running.refuse_control_plane_without_keys(infra_plan, prepared)
        control_plane = any(c.control_plane and c.action in ("create", "replace")
                            for c in infra_plan.pending)
        prepared = replace(prepared, secrets=join_credentials.refresh(
            cluster.api, prepared, say, control_plane))
        ws.env = infra_stage.terraform_env(prepared, token, failover, initialised=True)
        infra_plan = infra_stage.plan(ws, planfile, resource_names(prepared.env),
                                      detail=detail)
    return prepared, infra_plan


@holds_work_folder("up")
def up(config: Path, workdir: Path | None, engine: Engine, show: ShowPlan, confirm: Confirm,
       progress: MakeProgress, saved_plan: Path | None = None,
       allow_control_plane_changes: bool = False, detail: bool = True,
       until: str = STAGES[-1], report: Report | None = None,
       override_reason: str | None = None, allow_full_token: bool = False,
       replace: tuple[str, ...] = ()) -> Outcome:
    """Create or converge the environment, stage by stage, up to ``until``.

    ``replace`` names control-plane droplets to replace, one per run on a running cluster
    (pipeline/replacing.py).
    """
    say = report or (lambda message: None)
    if STAGES.index(until) >= STAGES.index("apps") and override_reason is None:
        # Refuse before anything changes, not after the infrastructure did.
        from provisioner.config import load_environment

        env = load_environment(config)
        try:
            deploy_stage.check_window(env, clock.now(), None, say)
        except deploy_stage.WindowClosed as e:
            also = (" (it refuses a plan that changes the infrastructure too)"
                    if change_window.governs(env, "infrastructure") else
                    " to change only the infrastructure")
            raise deploy_stage.WindowClosed(f"{e} Or run `provision up --until cluster`"
                                            f"{also}.") from e
    outcome = _infrastructure(config, workdir, engine, show, confirm, progress, saved_plan,
                              allow_control_plane_changes, detail, allow_full_token, say,
                              replace, override_reason)
    if STAGES.index(until) >= STAGES.index("cluster"):
        outcome.cluster = cluster_stage.bring_up(
            outcome.prepared, outcome.outputs, api_token(), say,
            backup=cluster_stage.backup_access(outcome.prepared, say))
        if outcome.cluster.autoscaling:
            retire_autoscaled(outcome.prepared, outcome.cluster, api_token(), say)
    if STAGES.index(until) >= STAGES.index("apps") and outcome.cluster is not None:
        api = cluster_stage.api_client(outcome.cluster.kubeconfig)
        outcome.deployed = deploy_stage.deploy(outcome.prepared.env, api, say,
                                               override_reason=override_reason)
    return outcome


def _infrastructure(config: Path, workdir: Path | None, engine: Engine, show: ShowPlan,
                    confirm: Confirm, progress: MakeProgress, saved_plan: Path | None,
                    allow_control_plane_changes: bool, detail: bool,
                    allow_full_token: bool = False,
                    say: Report = lambda message: None,
                    replace: tuple[str, ...] = (),
                    override_reason: str | None = None) -> Outcome:
    """Preflight, plan, confirm, apply."""
    started = time.monotonic()
    prepared = prepare(config, workdir)
    replaced = replacing.addresses(prepared, replace)  # a mistyped name: before any call
    if replace and saved_plan is not None:
        raise UsageError("--replace changes what is planned, and a saved plan is applied "
                         "as it was made: make it with `provision plan CONFIG --out FILE "
                         "--replace NAME`")
    token = api_token()
    failover = infra_stage.failover_token(prepared, token, allow_full_token, say)
    preflight(prepared.env, token, config=prepared.config)
    backup_bucket.preflight(prepared.env.backups)
    cluster = running.probe(prepared, say)
    if cluster is not None:
        running.check_version(prepared, cluster)
    # While planning, progress shows only what needs attention: lock waits, warnings.
    ws = infra_stage.workspace(prepared, engine, token, progress({}), failover,
                               initialised=cluster is not None)
    ws.replace = replaced
    override: dict[str, str] = {}

    def refusals(plan: InfraPlan) -> None:
        """Every rule that refuses a plan, run before anything is written anywhere."""
        nonlocal override
        running.guard_first_control_plane(plan, cluster)
        running.refuse_silent_cluster(plan, prepared, cluster, clock.now())
        replacing.refuse_several(plan, prepared, cluster)
        ownership.refuse_second_state(plan, prepared, token)
        if ws.replace and rolling.retires_workers(plan):
            # Every step of a rollout plans again, and Terraform's -replace would replace
            # the control-plane droplet once per step.
            raise UsageError("--replace cannot be combined with a change that replaces "
                             "workers of a running cluster: run `provision up` with "
                             "--replace first, then again for the worker pools")
        if plan.pending:
            infra_stage.guard_control_plane(plan, allow_control_plane_changes,
                                            lambda: parse_plan(ws.show(planfile)),
                                            ws.replace)
        # Last: a plan refused whatever the time says so first, not "wait for a window".
        override = _infrastructure_window(prepared, plan, override_reason, say)

    if saved_plan is not None:
        planfile = saved_plan.resolve()
        infra_plan = infra_stage.read_saved_plan(ws, planfile, prepared.env.name)
        refusals(infra_plan)
        if running.creates_droplets(infra_plan):
            running.check_saved_plan(ws.show(planfile), infra_plan, cluster,
                                     clock.now())
    else:
        planfile = _plan_path(prepared, "up.tfplan")
        # New nodes need join credentials the cluster accepts now (made only once the
        # first plan passed every refusal).
        prepared, infra_plan = _plan_joinable(ws, planfile, prepared, token, failover,
                                              cluster, detail, say, refusals)
    rollout = rolling.prepare(ws, planfile, infra_plan, prepared, saved_plan)
    show(infra_plan, prepared)
    if rollout is not None:
        say(rollout.describe())
    outcome = Outcome(prepared, infra_plan)
    if not infra_plan.pending:
        rolling.release(prepared, rollout, say)
        outcome.outputs = infra_stage.current_outputs(ws, prepared)
        outcome.seconds = time.monotonic() - started
        return outcome
    if not confirm(infra_plan, prepared):
        raise Declined("not applied: the plan was not confirmed")
    if override:  # recorded before the apply: whatever it then does, it was let through
        change_window.remember(prepared.work.root, "infrastructure", override,
                               {"changes": infra_plan.summary()})
        outcome.override = override
    rolling.release(prepared, rollout, say)
    # The one leaving controller first: its removal needs every other member answering.
    replacing.before_apply(prepared, infra_plan, say)
    _remove_stale_etcd_members(prepared, infra_plan, say)
    tracker = progress(names_by_address(infra_plan))
    ws.on_event = tracker
    try:
        if rollout is None:
            outcome.outputs = infra_stage.apply(ws, planfile, prepared)
        else:  # a running cluster's workers: a few at a time, drained first
            outcome.outputs = rolling.apply(ws, infra_plan, prepared, rollout, say)
    finally:
        tracker.close()
    outcome.applied = True
    outcome.summary = tracker.summary()
    outcome.seconds = time.monotonic() - started
    return outcome


def _infrastructure_window(prepared: Prepared, plan: InfraPlan, override_reason: str | None,
                           say: Report) -> dict[str, str]:
    """The freeze calendar for a plan of `up`: refused (exit 3) when it changes the
    infrastructure outside the windows or inside a freeze, unless overridden; the
    override's record, if any.

    Never refused: a plan with no changes, and the environment's first creation: a plan
    that only creates, and creates every control-plane droplet, changes nothing that exists
    and starts a cluster where none can run yet (no control-plane node, no etcd), so there is
    nothing a window protects. That includes a first `up` interrupted before its
    control-plane droplets were made; a state lost beside a live environment is refused by
    ownership.refuse_second_state, which runs first. Its apps stage is a deploy, judged as
    one.
    """
    if not plan.pending or not change_window.governs(prepared.env, "infrastructure"):
        return {}
    if (all(c.action == "create" for c in plan.pending)
            and sum(c.control_plane for c in plan.pending) >= prepared.env.control_plane.count):
        say(f"first creation of {prepared.env.name}: the deploy windows do not hold it back, "
            "no cluster runs yet")
        return {}
    return change_window.check_window(prepared.env, "infrastructure", clock.now(),
                                      override_reason, say, "; nothing was applied")


def _remove_stale_etcd_members(prepared: Prepared, infra_plan: InfraPlan, say: Report) -> None:
    """Before a control-plane droplet is created in a running cluster, the etcd members of
    droplets that are gone are removed, so the new one joins a cluster without dead voters.

    The droplets kept are the control-plane droplets the plan neither creates nor replaces:
    a droplet created under an old name (cp-1 lost and recreated) replaces the one whose
    member still carries that name. Their addresses tell a dead member under a kept name
    (an earlier replacement's) from the kept droplet's own.
    """
    created = {c.name for c in infra_plan.pending
               if c.control_plane and c.action in ("create", "replace")}
    path = cluster_stage.kubeconfig_path(prepared)
    kept = set(controller_names(prepared.env)) - created
    if not created or not kept or not path.is_file():
        return  # no join coming, or no running cluster to join
    from provisioner.cluster import etcd_members

    etcd_members.remove_stale(cluster_stage.api_client(path), kept, say,
                              _private_ips(prepared, kept))


def _private_ips(prepared: Prepared, names: set[str]) -> set[str] | None:
    """The VPC addresses of the control-plane droplets ``names`` as the last apply recorded
    them (infrastructure.json), or None when any is unknown: a member is then judged by
    name and health alone."""
    recorded = infra_stage.recorded_outputs(prepared) or {}
    try:
        ips = {str(c["name"]): str(c["private_ip"]) for c in recorded.get("controllers") or []}
    except (TypeError, KeyError):
        return None
    return {ips[name] for name in names} if names <= ips.keys() else None


@holds_work_folder("destroy")
def destroy(config: Path, workdir: Path | None, engine: Engine, show: ShowPlan,
            confirm: Confirm, progress: MakeProgress, force: bool = False,
            detail: bool = True, kubeconfig: Path | None = None, sweep: bool = False,
            report: Report | None = None,
            confirm_sweep: ownership.ConfirmSweep = lambda lines: False,
            override_reason: str | None = None) -> Outcome:
    """Remove everything the environment's Terraform state holds, then account for the rest.

    With an empty state, nothing is deleted that a destroy from this work folder did not
    leave behind (pipeline/ownership.py); a sweep lists what it deletes and asks first.
    Destroying is an infrastructure change: outside the windows or inside a freeze it is
    refused before anything is deleted unless ``override_reason`` is given (a sweep of what
    an earlier destroy left is not: nothing of the environment runs any more).
    """
    started = time.monotonic()
    prepared = prepare(config, workdir)
    if prepared.env.deletion_protection and not force:
        raise PolicyError(f"{prepared.config} sets deletion_protection: true; refusing to "
                          "destroy. Pass --force if you really mean it.")
    token = api_token()
    ws = infra_stage.workspace(prepared, engine, token, progress({}))
    planfile = _plan_path(prepared, "destroy.tfplan")
    infra_plan = infra_stage.plan(ws, planfile, resource_names(prepared.env), destroy=True,
                                  detail=detail)
    say = report or (lambda message: None)
    override = (change_window.check_window(prepared.env, "infrastructure", clock.now(),
                                           override_reason, say, "; nothing was destroyed")
                if infra_plan.pending else {})
    show(infra_plan, prepared)
    outcome = Outcome(prepared, infra_plan, override=override)

    def counted(lines: list[str]) -> bool:
        outcome.swept = len(lines) if confirm_sweep(lines) else 0
        return bool(outcome.swept)

    if not infra_plan.pending:
        ownership.account_for_leftovers(prepared, token, sweep, counted, say, destroyed=False)
        outcome.seconds = time.monotonic() - started
        return outcome
    if not confirm(infra_plan, prepared):
        raise Declined("not destroyed: the plan was not confirmed")
    if override:
        change_window.remember(prepared.work.root, "infrastructure", override,
                               {"changes": infra_plan.summary()})
    # Only the state that holds the environment's VPC created it and speaks for what carries
    # its tag. One that holds less (a local marker, what a run that lost the race to create
    # the environment left) destroys what it holds, then is accounted for like an empty one:
    # the sweep would otherwise take the live environment another work folder created.
    holds = ownership.holds_identity(infra_plan)
    ours = ownership.before_destroy(prepared, token) if holds else frozenset()
    if holds:  # a state that did not build the cluster must not empty it either
        _release_cluster_resources(prepared, token, kubeconfig, say)
        _remove_autoscaled(prepared, token, kubeconfig, say)
    tracker = progress(names_by_address(infra_plan))
    ws.on_event = tracker
    try:
        ws.apply(planfile)
    finally:
        tracker.close()
    outcome.applied = True
    outcome.summary = tracker.summary()
    ownership.account_for_leftovers(prepared, token, sweep, counted, say, destroyed=holds,
                                    known=ours)
    outcome.seconds = time.monotonic() - started
    return outcome


# Draining a node the file no longer autoscales: as long as a rolling replacement waits.
RETIRE_DRAIN_TIMEOUT = 10 * 60.0


def retire_autoscaled(prepared: Prepared, cluster: cluster_stage.Cluster, token: str,
                      say: Report, drain_timeout: float = RETIRE_DRAIN_TIMEOUT) -> None:
    """Delete the autoscaled droplets of pools that no longer autoscale (or no longer
    exist): no node group holds them any more, so the cluster-autoscaler never removes
    them and Terraform does not know them; left alone they run and bill for ever. Each
    node is cordoned and drained first, as the cluster-autoscaler would; one whose drain
    cannot finish stays, said loudly, and the next `up` tries again."""
    from provisioner.cloud import autoscaled
    from provisioner.kube import Kube
    from provisioner.pipeline import rolling
    from provisioner.render.autoscaler import autoscaled_pools

    env = prepared.env
    doomed = autoscaled.stale(env.name, [p.name for p in autoscaled_pools(env)], token)
    if not doomed:
        return
    kube = Kube(cluster_stage.api_client(cluster.kubeconfig), timeout=30)
    for droplet in doomed:
        why = (f"pool {droplet.pool} no longer autoscales" if droplet.pool
               else "it has no single pool tag")
        try:
            rolling.cordon(kube, droplet.name, say)
            rolling.drain(kube, droplet.name, time.monotonic() + drain_timeout, say)
        except ProvisionError as e:
            say(f"warning: autoscaled droplet {droplet.name} ({why}) is left running, billed "
                f"and in no node group: its drain did not finish ({e}); run `provision up` "
                "again once it can")
            continue
        autoscaled.delete(token, [droplet], say, f" ({why})")


def _remove_autoscaled(prepared: Prepared, token: str, kubeconfig: Path | None,
                       say: Report) -> None:
    """The droplets the autoscaler service made (no Terraform state holds them), before
    Terraform removes the VPC and firewalls they sit in; the cluster-autoscaler is scaled
    to zero first when the API answers, so it creates none meanwhile."""
    from provisioner.cloud import autoscaled
    from provisioner.cluster import autoscaler

    path = kubeconfig or cluster_stage.kubeconfig_path(prepared)
    if path.is_file():
        try:
            autoscaler.stop(cluster_stage.api_client(path), say)
        except Exception as e:  # an unreachable cluster must not block destroy
            say(f"could not reach the cluster to stop the node autoscaler "
                f"({type(e).__name__}); deleting the autoscaled droplets anyway")
    autoscaled.delete_all(prepared.env.name, token, say)


# The cloud controller manager deletes a load balancer within a minute or two.
RELEASE_TIMEOUT = 5 * 60.0


def _release_cluster_resources(prepared: Prepared, token: str, kubeconfig: Path | None,
                               say: Report) -> None:
    """LoadBalancer Services and volume claims first, so no load balancer or volume is orphaned."""
    from provisioner.cloud import sweep as cloud_sweep
    from provisioner.workloads import teardown

    path = kubeconfig or cluster_stage.kubeconfig_path(prepared)
    if not path.is_file():
        return
    try:
        owned = teardown.release(prepared.env, cluster_stage.api_client(path))
    except Exception as e:  # an unreachable cluster must not block destroy; the sweep reports
        say(f"could not reach the cluster to release its load balancers and volumes "
            f"({type(e).__name__}); the sweep after destroy will list what remains")
        return
    remaining = cloud_sweep.wait_released(token, owned.load_balancers, owned.volumes,
                                          RELEASE_TIMEOUT, say)
    if remaining:
        say("still present after waiting: " + ", ".join(remaining))
