"""Single points of failure of an environment's topology, read from the model alone.

What the analysis knows about the cluster comes from what ``provision`` renders
(``provisioner/render/manifests.py``, ``templates/manifests/app.yaml.j2``):

* Apps run on worker nodes only: control-plane nodes keep kubeadm's
  ``node-role.kubernetes.io/control-plane:NoSchedule`` taint, and apps have no tolerations,
  so a worker pool with a ``NoSchedule`` or ``NoExecute`` taint runs none of them either.
  ``PreferNoSchedule`` is a preference, not a barrier: such a pool still counts.
* An app that can have more than one replica gets a topology spread constraint on
  ``kubernetes.io/hostname`` (``maxSkew: 1``, ``whenUnsatisfiable: DoNotSchedule``,
  ``nodeTaintsPolicy: Honor``): its replicas go to distinct nodes while there are enough,
  and otherwise at most ``ceil(replicas / nodes)`` share one node.
* A PodDisruptionBudget (``maxUnavailable: 1``) is rendered only when the app's minimum
  replica count is above one.
* Apps with volumes are StatefulSets, one ``ReadWriteOnce`` volume per replica, updated one
  replica at a time without surge.

Nothing here imports the renderer: ``provision check`` stays as light as ``validate``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from provisioner.config.model import App, Environment, WorkerPool

Severity = Literal["high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("high", "medium", "low")
"""Most severe first.

* high: one droplet failure takes the API or an app down.
* medium: routine work (a drain, an upgrade, a rollout) takes something down, or a failure
  costs a long or manual recovery.
* low: a failure costs capacity or time, but nothing goes down.
"""

# Taint effects that keep pods without a matching toleration off a node. The scheduler's
# spreading (nodeTaintsPolicy: Honor) leaves exactly these nodes out of the domains too.
BLOCKING_EFFECTS = frozenset({"NoSchedule", "NoExecute"})

# Classes of the DigitalOcean CSI driver: network block storage, attachable to any droplet of
# the region. Any other class may be node-local (local-path, hostPath, OpenEBS hostpath).
DO_BLOCK_STORAGE = frozenset({
    "do-block-storage", "do-block-storage-retain",
    "do-block-storage-xfs", "do-block-storage-xfs-retain",
})


@dataclass(frozen=True)
class Finding:
    """One weakness of the topology, and what to change."""

    severity: Severity
    subject: str
    problem: str
    fix: str


def can_run_apps(pool: WorkerPool) -> bool:
    """Whether the environment's apps (which have no tolerations) can be scheduled on ``pool``."""
    return pool.count > 0 and not any(t.effect in BLOCKING_EFFECTS for t in pool.taints)


def schedulable_pools(env: Environment) -> tuple[WorkerPool, ...]:
    """The worker pools the apps can run on."""
    return tuple(pool for pool in env.worker_pools if can_run_apps(pool))


def schedulable_workers(env: Environment) -> int:
    """How many worker nodes the apps can run on."""
    return sum(pool.count for pool in schedulable_pools(env))


def has_pdb(app: App) -> bool:
    """Whether a PodDisruptionBudget is rendered for ``app`` (as in ``render.manifests``)."""
    return app.min_replicas > 1


def nodes_used(replicas: int, workers: int) -> int:
    """Distinct nodes holding an app's replicas under maxSkew-1 spreading."""
    return min(replicas, workers)


def most_per_node(replicas: int, workers: int) -> int:
    """The most replicas one node holds under maxSkew-1 spreading (0 without workers)."""
    return math.ceil(replicas / workers) if workers > 0 and replicas > 0 else 0


def _resolve(value: str | int, replicas: int, *, round_up: bool) -> int:
    """A Deployment's maxSurge (rounded up) or maxUnavailable (rounded down) in replicas."""
    if isinstance(value, int):
        return value
    share = int(value.rstrip("%")) * replicas / 100
    return math.ceil(share) if round_up else math.floor(share)


def rollout_unavailable(app: App) -> int:
    """How many of ``min_replicas`` a rolling update may stop at once."""
    r = app.min_replicas
    if app.stateful:
        return 1  # StatefulSet RollingUpdate: one replica at a time, no surge
    if app.strategy.kind == "blue_green":
        return 0  # the second colour is started in full before the Service switches
    surge = _resolve(app.strategy.max_surge, r, round_up=True)
    unavailable = _resolve(app.strategy.max_unavailable, r, round_up=False)
    # The Deployment controller refuses to stall: both zero means one may be unavailable.
    return 1 if surge == 0 and unavailable == 0 else unavailable


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _control_plane(env: Environment) -> list[Finding]:
    n = env.control_plane.count
    found: list[Finding] = []
    if n == 1:
        found.append(Finding(
            "high", "control plane",
            "one control-plane node: etcd and the API server run on a single droplet. While it is"
            " down nothing in the cluster can change (no deploys, no rescheduling of pods from"
            " failed workers, no autoscaling), and if its disk is lost, etcd, the whole cluster"
            " state, is lost with it",
            "control_plane.count: 3 (etcd keeps quorum with one node down)"))
    elif n % 2 == 0:
        found.append(Finding(
            "medium", "control plane",
            f"{n} control-plane nodes: etcd needs {n // 2 + 1} of them, so it survives"
            f" {_plural((n - 1) // 2, 'failure')}, as many as {n - 1} would, while there is one"
            " more droplet to fail",
            f"control_plane.count: {n - 1} or {n + 1}"))
    if n == 1:
        if env.control_plane.endpoint == "floating_ip":
            problem = ("the floating IP has nowhere to fail over to: it points at the only"
                       " control-plane node, so it gives the API a stable address but no"
                       " redundancy")
        else:
            problem = ("the load balancer has a single backend, the only control-plane node:"
                       " it gives the API a stable address but no redundancy")
        found.append(Finding("medium", "API endpoint", problem,
                             "control_plane.count: 3, so the endpoint has a healthy node to"
                             " move to"))
    return found


def _workers(env: Environment) -> list[Finding]:
    found: list[Finding] = []
    workers = schedulable_workers(env)
    pools = schedulable_pools(env)
    whole = pools[0].name if env.apps and workers == 1 else None
    if env.apps and workers == 0:
        found.append(Finding(
            "high", "workers",
            "no worker node can run the apps: every pool is empty or tainted NoSchedule or"
            " NoExecute, the apps have no tolerations, and control-plane nodes keep their"
            " NoSchedule taint",
            "add an untainted worker pool with count: 2 or more"))
    elif whole is not None:
        found.append(Finding(
            "high", f"pool {whole}",
            f"all apps' schedulable capacity is one droplet (pool {whole}, 1 node): when it is"
            f" down, every app is down ({', '.join(a.name for a in env.apps)}), whatever the"
            " replica counts",
            f"pool {whole}: count: 2 or more (3 lets each app keep a replica through a node"
            " drain and a failure at once)"))
    for pool in env.worker_pools:
        if pool.count != 1 or pool.name == whole:
            continue
        if can_run_apps(pool):
            problem = ("one node: the apps also run on other pools, but anything placed on"
                       " this pool by its labels has no second node")
        else:
            problem = ("one node, reserved by its taints for workloads that tolerate them:"
                       " those have no second node to move to")
        found.append(Finding("low", f"pool {pool.name}", problem,
                             f"pool {pool.name}: count: 2 if anything relies on it"))
    return found


def _app(env: Environment, app: App, workers: int) -> list[Finding]:
    subject = f"app {app.name}"
    r = app.min_replicas
    found: list[Finding] = []
    if r == 0:
        return [Finding("low", subject, "scaled to zero: no replica runs",
                        "replicas: 2 or more when it should serve")]
    if r == 1:
        if app.autoscale is not None:
            problem = ("autoscale min 1: under low load the autoscaler keeps a single replica,"
                       " so the app runs on one node")
            fix = "autoscale.min: 2"
        else:
            problem = "one replica: the app runs on one node"
            fix = "replicas: 2"
        if app.stateful:
            problem += (", and when that node fails the StatefulSet replica is not replaced"
                        " until the node is known to be gone (see the volume finding)")
        else:
            problem += (", and when that node fails it is down until the pod is rescheduled:"
                        " about six minutes (the node is marked unreachable after ~50 s, its"
                        " pods are evicted after the default 300 s toleration) plus start-up")
        found.append(Finding("high", subject, problem, fix))
        found.append(Finding(
            "medium", subject,
            "no PodDisruptionBudget (rendered only when the minimum replica count is above 1):"
            " a node drain, for a kubeadm upgrade or a droplet resize, evicts its only replica,"
            " so routine maintenance is downtime",
            f"{fix} (a budget of maxUnavailable: 1 is then rendered)"))
    elif workers == 1:
        found.append(Finding(
            "high", subject,
            f"{r} replicas, all on the one node the apps can run on: spreading (maxSkew 1,"
            " DoNotSchedule) has a single node to spread over, so one droplet failure takes"
            " every replica",
            f"at least 2 worker nodes the apps can run on; {r} give each replica its own"))
    elif 1 < workers < r:
        most = most_per_node(r, workers)
        found.append(Finding(
            "low", subject,
            f"{r} replicas on {workers} worker nodes: spreading puts up to {most} replicas on"
            f" one node, so losing that node takes {most} of {r} ({100 * most // r}%) of the"
            " app's capacity at once until they are rescheduled",
            f"{r} schedulable worker nodes give each replica its own node; otherwise size the"
            f" app to run on {r - most} replicas"))
    if rollout_unavailable(app) >= r and not app.stateful:
        found.append(Finding(
            "medium", subject,
            f"the rolling update may stop all {_plural(r, 'replica')} at once (max_unavailable"
            f" {app.strategy.max_unavailable!s}), so a deploy can be downtime",
            "strategy.max_unavailable: 0 with max_surge: 1 or more"))
    if app.stateful:
        found.extend(_volumes(env, app, r))
    if app.expose == "node_port":
        found.append(Finding(
            "low", subject,
            "exposed as a NodePort: every node answers on the port, but nothing in front of the"
            " nodes fails over; clients or DNS that name a single node's address lose the app"
            " when that droplet is down, however many replicas run",
            "expose: load_balancer, or list several nodes' addresses in DNS or the client"))
    return found


def _volumes(env: Environment, app: App, r: int) -> list[Finding]:
    subject = f"app {app.name}"
    found: list[Finding] = []
    local = sorted({v.storage_class for v in app.volumes} - DO_BLOCK_STORAGE)
    if local:
        found.append(Finding(
            "medium" if r > 1 else "high", subject,
            f"storage class {', '.join(local)} is not DigitalOcean block storage: if it is"
            " node-local (local-path, hostPath), each replica is bound to its node for good"
            " and a lost droplet loses that replica and its data",
            "storage_class: do-block-storage, or replicate the data in the app"))
    region = env.digitalocean.region
    if r == 1:
        found.append(Finding(
            "medium", subject,
            "StatefulSet with one replica: every rollout stops it (StatefulSets update one"
            " replica at a time and never surge) before the new one starts",
            "replicas: 2 or more, if the app can run several members"))
    found.append(Finding(
        "medium" if r == 1 else "low", subject,
        f"volumes do not pin replicas to a node (DigitalOcean volumes attach to any droplet in"
        f" {region}); what matters is that a replica whose node fails is not replaced until the"
        " node is known to be gone (the droplet destroyed, or the node tainted"
        " node.kubernetes.io/out-of-service), and its volume then has to detach (a forced"
        " detach waits 6 minutes) and attach to another droplet: minutes, and for a powered-off"
        " droplet someone must act" + (": the app is down all that time" if r == 1 else ""),
        ("replicas: 2 or more that replicate their data; meanwhile, on" if r == 1 else "on")
        + " a dead droplet, destroy it or taint its node"
        " node.kubernetes.io/out-of-service=nodeshutdown:NoExecute to release the volume"))
    return found


def findings(env: Environment) -> list[Finding]:
    """Every single point of failure of ``env``, most severe first, then in file order."""
    workers = schedulable_workers(env)
    found = _control_plane(env) + _workers(env)
    for app in env.apps:
        found.extend(_app(env, app, workers))
    from provisioner.analysis.backups import offline  # it builds on Finding, defined here

    found.extend(offline(env))
    return sorted(found, key=lambda f: SEVERITIES.index(f.severity))
