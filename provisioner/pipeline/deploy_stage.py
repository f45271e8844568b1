"""`provision deploy` (and the last stage of `up`): the apps to the state the file declares.

Order: deploy window, namespace, ApplySet parent (listing old and new kinds, so a crash
never loses track of a member), then config, workloads and the rest tier by tier; wait for
every rollout; switch blue/green Services to their new colour; prune what is no longer
declared; finally record the kinds the set now contains.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from provisioner import clock
from provisioner.config.model import Environment
from provisioner.kube import Kube
from provisioner.pipeline import change_window
from provisioner.pipeline.change_window import WindowClosed as WindowClosed
from provisioner.workloads import apply, colours, prune, rollout
from provisioner.workloads.kinds import WORKLOADS
from provisioner.workloads.objects import APP_LABEL, applyset_id, desired_objects, parent_object

Report = Callable[[str], None]
ROLLOUT_TIMEOUT = 10 * 60.0


@dataclass
class DeployResult:
    """What a deploy did."""

    applied: int = 0
    pruned: list[tuple[str, str]] = field(default_factory=list)
    switched: dict[str, str] = field(default_factory=dict)  # app -> new colour
    kept: dict[str, str] = field(default_factory=dict)  # app -> colour kept for rollback
    statuses: dict[str, str] = field(default_factory=dict)
    override: dict[str, str] = field(default_factory=dict)


def check_window(env: Environment, now: dt.datetime, override_reason: str | None,
                 report: Report) -> dict[str, str]:
    """Refuse a deploy outside the windows unless overridden (the one freeze calendar,
    pipeline/change_window.py); the override's record, if any."""
    return change_window.check_window(env, "apps", now, override_reason, report)


SHOWN = 4  # apps a progress line names; beyond that it counts


def progress_line(statuses: dict[rollout.Target, rollout.Status]) -> str:
    """Where the rollouts stand, in one line whatever the number of apps: every app when
    there are a few, else how many are done and the first few still rolling out (a line
    naming 100 apps, printed on every change, filled CI logs with megabytes)."""
    def one(target: rollout.Target, status: rollout.Status) -> str:
        return (f"{target.app} {status.updated}/{status.desired} updated "
                f"{status.available}/{status.desired} available")

    if len(statuses) <= SHOWN:
        return ", ".join(one(t, s) for t, s in statuses.items())
    waiting = [(t, s) for t, s in statuses.items() if not s.done]
    named = ", ".join(one(t, s) for t, s in waiting[:SHOWN])
    more = f" and {len(waiting) - SHOWN} more" if len(waiting) > SHOWN else ""
    done = f"{len(statuses) - len(waiting)}/{len(statuses)} rolled out"
    return f"{done}; waiting for {named}{more}" if waiting else done


def deploy(env: Environment, api: Any, report: Report, *, force_conflicts: bool = False,
           override_reason: str | None = None, now: dt.datetime | None = None,
           timeout: float = ROLLOUT_TIMEOUT) -> DeployResult:
    """Bring the cluster's apps to the declared state and wait until they serve."""
    kube = Kube(api)
    result = DeployResult()
    result.override = check_window(env, now or clock.now(), override_reason,
                                   report)
    probe = desired_objects(env, annotations=result.override)
    plans = {}
    for app in env.apps:
        if app.strategy.kind == "blue_green":
            template = next(d.body["spec"]["template"] for d in probe
                            if d.kind.kind == "Deployment"
                            and d.body["metadata"]["labels"].get(APP_LABEL) == app.name)
            plans[app.name] = colours.plan_colour(kube, env, app, template)
    targets = {name: plan.target for name, plan in plans.items()}
    # Rendering is the costliest step before the first request: only blue/green apps
    # need a second pass, with the colours just planned.
    objects = (desired_objects(env, colours=targets, annotations=result.override)
               if targets else probe)
    # Services (and autoscalers) of switching apps move only once the new colour is healthy.
    later = [d for d in objects if d.kind.kind in ("Service", "HorizontalPodAutoscaler")
             and plans.get(d.name) is not None and plans[d.name].switching]
    now_objects = [d for d in objects if d not in later]

    namespace_objects = [d for d in now_objects if d.kind.tier == 0]
    # The ApplySet parent's listing is read while the namespace is applied (before it
    # exists the read answers 404: nothing listed): one round trip fewer on every deploy.
    with ThreadPoolExecutor(max_workers=1) as reader:
        listed = reader.submit(prune.previous_group_kinds, kube, env)
        apply.apply_all(kube, namespace_objects, force_conflicts)
        previous = listed.result()
    current = {d.kind.group_kind for d in objects if d.kind.tier > 0}
    apply.apply_all(kube, [parent_object(env, previous | current)], force_conflicts)
    applied = apply.apply_all(kube, [d for d in now_objects if d.kind.tier > 0],
                              force_conflicts)
    result.applied = len(namespace_objects) + len(applied)
    report(f"applied {result.applied} objects to namespace {env.namespace}")

    targets_to_wait = [rollout.Target(d.kind.kind, d.name,
                                      d.body["metadata"]["labels"][APP_LABEL])
                       for d in objects if d.kind.tier == WORKLOADS]
    last = ""

    def show(statuses: dict[rollout.Target, rollout.Status]) -> None:
        nonlocal last
        line = progress_line(statuses)
        if line != last:
            report(line)
            last = line

    done = rollout.wait(kube, env.namespace, targets_to_wait,
                        f"applyset.kubernetes.io/part-of={applyset_id(env)}",
                        time.monotonic() + timeout, show)
    result.statuses = {t.name: s.message for t, s in done.items()}
    if later:
        apply.apply_all(kube, later, force_conflicts)
        for name, plan in plans.items():
            if plan.switching:
                result.switched[name] = plan.target
                report(f"{name}: traffic switched from {plan.serving} to {plan.target}")
    # The colour not serving now stays for an instant rollback until a deploy replaces it.
    keep = {("Deployment.apps", f"{name}-{colours.other(plan.target)}") for name, plan
            in plans.items()}
    for name, plan in plans.items():
        if plan.serving is not None:
            result.kept[name] = colours.other(plan.target)
    stale = [s for s in prune.stale(kube, env, objects, previous | current) if s not in keep]
    prune.delete(kube, env, stale)
    result.pruned = stale
    for group_kind, name in stale:
        report(f"pruned {group_kind} {name}")
    apply.apply_all(kube, [parent_object(env, current, deploy_record(env, result))],
                    force_conflicts)
    return result


LAST_DEPLOY = "provision.dev/last-deploy"


def deploy_record(env: Environment, result: DeployResult) -> dict[str, str]:
    """When, who and what, kept on the ApplySet parent for `provision status`."""
    import json

    from provisioner.workloads import windows

    record = {"at": clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
              "by": windows.who_am_i(),
              "images": {a.name: a.image for a in env.apps},
              "switched": result.switched}
    if result.override:
        record["override"] = result.override
    return {LAST_DEPLOY: json.dumps(record, sort_keys=True)}
