"""`provision rollback`: back to what served before, as fast as the strategy allows.

Blue/green apps switch their Service back to the colour that served before (it is still
running, so this is instant). Rolling apps get the previous revision's pod template back,
as `kubectl rollout undo` does, and roll out again.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from provisioner.config.model import App, Environment
from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError
from provisioner.workloads import apply, colours
from provisioner.workloads.kinds import KINDS
from provisioner.workloads.objects import desired_objects

REVISION = "deployment.kubernetes.io/revision"


class NothingToRollBack(ProvisionError):
    """There is no earlier state to return to."""


@dataclass(frozen=True)
class RolledBack:
    """What one app went back to."""

    app: str
    detail: str
    deployment: str | None  # a Deployment that now rolls out, to wait for


def previous_colour(kube: Kube, env: Environment, app: App) -> tuple[str, str]:
    """(the colour serving now, the one to go back to), if that one still runs."""
    serving, _ = colours.serving_colour(kube, env, app)
    if serving is None:
        raise NothingToRollBack(f"{app.name} has not been deployed yet")
    previous = colours.other(serving)
    name = f"{app.name}-{previous}"
    try:
        old = kube.request("GET", KINDS["Deployment.apps"].path(env.namespace, name))
    except KubeError as e:
        if e.status == 404:
            raise NothingToRollBack(f"{app.name}: the {previous} colour is gone (only one "
                                    "deploy so far, or already rolled back)") from e
        raise
    available = int((old.get("status") or {}).get("availableReplicas") or 0)
    if available == 0:
        raise NothingToRollBack(f"{app.name}: the {previous} colour has no available replicas")
    return serving, previous


def switch_back(kube: Kube, env: Environment, back: dict[str, tuple[str, str]]
                ) -> list[RolledBack]:  # fmt: skip
    """Point the Services (and autoscalers) of these apps at their previous colour.

    ``back``: app -> (serving, previous). One rendering for all of them.
    """
    if not back:
        return []
    rendered = desired_objects(env, colours={app: previous for app, (_, previous)
                                             in back.items()},
                               environ={s.from_env: "" for s in env.secrets})
    switch = [d for d in rendered if d.name in back
              and d.kind.kind in ("Service", "HorizontalPodAutoscaler")]
    apply.apply_all(kube, switch, force=True)
    return [RolledBack(app, f"traffic switched back from {serving} to {previous}", None)
            for app, (serving, previous) in back.items()]


def rolling(kube: Kube, env: Environment, app: App) -> RolledBack:
    """Restore the previous ReplicaSet's template, like `kubectl rollout undo`."""
    if app.stateful:
        raise NothingToRollBack(f"{app.name} is a StatefulSet: deploy the previous image "
                                "instead (its volumes may have moved on)")
    selector = [("labelSelector", f"app.kubernetes.io/name={app.name}")]
    sets = kube.request("GET", KINDS["Deployment.apps"].path(env.namespace).replace(
        "deployments", "replicasets"), selector).get("items") or []
    owned = [rs for rs in sets if any(o.get("kind") == "Deployment" and o.get("name") ==
                                      app.name for o in rs["metadata"].get("ownerReferences")
                                      or [])]
    by_revision = sorted(owned, key=lambda rs: int((rs["metadata"].get("annotations") or {})
                                                   .get(REVISION, 0)))
    if len(by_revision) < 2:
        raise NothingToRollBack(f"{app.name} has no earlier revision to return to")
    template: dict[str, Any] = by_revision[-2]["spec"]["template"]
    labels = dict(template["metadata"].get("labels") or {})
    labels.pop("pod-template-hash", None)
    current = by_revision[-1]["spec"]["template"]["metadata"]
    annotations = dict.fromkeys(current.get("annotations") or {})  # None removes a key
    annotations.update(template["metadata"].get("annotations") or {})
    patch = {"spec": {"template": {"metadata": {"labels": labels, "annotations": annotations},
                                   "spec": template["spec"]}}}
    kube.request("PATCH", KINDS["Deployment.apps"].path(env.namespace, app.name),
                 [("fieldManager", "provision-rollback")], patch,
                 "application/merge-patch+json", verb="patch deployments.apps")
    revision = (by_revision[-2]["metadata"].get("annotations") or {}).get(REVISION, "?")
    return RolledBack(app.name, f"back to revision {revision}", app.name)


class RollbackIncomplete(ProvisionError):
    """Some apps could not be rolled back; the others were (the message lists both)."""


def rollback(env: Environment, api: Any, only: str | None = None) -> list[RolledBack]:
    """Roll back every app (or the one named); blue/green first, they are instant.

    Within each group the apps' lookups and patches are independent of each other's and
    run concurrently, as applies do. An app that fails does not stop the others: what
    could be rolled back is, then one error names what failed and what was done.
    """
    kube = Kube(api)
    apps = [a for a in env.apps if only in (None, a.name)]
    if only is not None and not apps:
        raise NothingToRollBack(f"no app named {only!r} in {env.name}")
    blue_green = [a for a in apps if a.strategy.kind == "blue_green"]
    others = [a for a in apps if a.strategy.kind != "blue_green"]
    failed: dict[str, Exception] = {}

    def each(step: Any, group: list[App]) -> dict[str, Any]:
        def guarded(app: App) -> Any:
            try:
                return step(kube, env, app)
            except NothingToRollBack as e:
                if only is not None:
                    raise
                return RolledBack(app.name, f"unchanged: {e}", None)
            except ProvisionError as e:
                failed[app.name] = e
                return None

        with ThreadPoolExecutor(max_workers=apply.PARALLELISM) as pool:
            return dict(zip((a.name for a in group), pool.map(guarded, group), strict=True))

    found = each(previous_colour, blue_green)
    back = {name: o for name, o in found.items() if isinstance(o, tuple)}
    switched = {r.app: r for r in switch_back(kube, env, back)}
    results = [switched.get(name) or o for name, o in found.items()]
    results += list(each(rolling, others).values())
    done = [r for r in results if isinstance(r, RolledBack)]
    if failed:
        changed = [r.app for r in done if not r.detail.startswith("unchanged")]
        raise RollbackIncomplete(
            "rollback failed for " + "; ".join(f"{app}: {e}" for app, e in failed.items())
            + (f". Rolled back: {', '.join(changed)}" if changed else ". Nothing was rolled back"))
    return done
