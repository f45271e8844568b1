"""Rolling replacement of workers on a running cluster, at most N at a time.

Workers are keyed ``<pool>-<n>-<generation>`` (terraform/workers.tf), so a changed pool
plans creates of new keys and deletes of old ones. On a running cluster `up` does not apply
that plan in one go (Terraform would delete each old droplet the moment its replacement is
``active``, minutes before it joins); instead, per batch of at most ``replace.at_once``
workers of a pool:

1. apply with the batch's new workers added and every old one kept (``worker_instances``);
2. wait until every worker that stays is a Ready node;
3. cordon each old node (``spec.unschedulable``) and drain it through the Eviction API
   (policy/v1 ``pods/<name>/eviction``), which honours PodDisruptionBudgets: a 429 means
   "not now", retried until the pool's ``drain_timeout``;
4. apply without the old workers (Terraform deletes their droplets), then delete their
   Node objects.

A final apply of the whole plan adds what is left (a scale-up's extra workers). Progress
lives in the Terraform state and the cluster, never in a side file: a run interrupted at
any point is continued by the next ``up``, which plans again from the state. A drain that
cannot finish in time stops the rollout, naming the node, the pods still on it and the
budget that blocks them; nothing after it is touched.

Which pods a drain evicts follows kubectl's drain (kubernetes
staging/src/k8s.io/kubectl/pkg/drain/filters.go, read at commit 121817a5 for the client
pinned in tests, kubectl 1.37): DaemonSet pods and mirror pods (annotation
``kubernetes.io/config.mirror``) are skipped, finished pods need no eviction; pods without
a controller and pods with emptyDir data are evicted as ``--force
--delete-emptydir-data`` would (their droplet is deleted next anyway). Like kubectl's
drain, a node is drained only once every evicted pod is gone, not when its eviction is
accepted: kubectl's ``waitForDelete`` (staging/src/k8s.io/kubectl/pkg/drain/drain.go, read
at commit 014e1fb5) polls each evicted pod until a GET answers NotFound or a pod of another
UID; a pod in its termination grace period (or held by a finalizer) still has its
containers running, and deleting the droplet then would cut them off.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.bootstrap import join_credentials
from provisioner.cloud.tags import pool_of
from provisioner.errors import ProvisionError, UsageError
from provisioner.infra.changes import InfraPlan, plan_from_events
from provisioner.infra.workspace import Workspace
from provisioner.kube import Kube, KubeError
from provisioner.pipeline.prepare import Prepared

Report = Callable[[str], None]
WORKERS = "digitalocean_droplet.workers["
MIRROR = "kubernetes.io/config.mirror"
RETIRING = "provision.dev/retiring"  # on a node provision cordoned to replace it
EVICTION_RETRY = 5.0  # seconds between evictions a budget refused, as kubectl drain waits
NODES_TIMEOUT = 20 * 60.0  # a new droplet's cloud-init and kubeadm join
RENEW_MARGIN = dt.timedelta(hours=1)  # join credentials renewed mid-rollout below this


class DrainTimeout(ProvisionError):
    """A node could not be drained in time; the rollout stopped there."""


class SavedPlanRefused(UsageError):
    """A saved plan would replace a running cluster's workers all at once."""


@dataclass(frozen=True)
class Instance:
    """One worker droplet as the module's ``worker_instances`` holds it."""

    key: str
    pool: str
    size: str
    image: str
    name: str

    def value(self) -> dict[str, str]:
        return {"pool": self.pool, "size": self.size, "image": self.image}


@dataclass
class Rollout:
    """What the confirmed plan does to the workers, split into the steps above."""

    kept: list[Instance]
    retiring: list[Instance]
    adding: list[Instance]
    at_once: dict[str, int] = field(default_factory=dict)
    drain_timeout: dict[str, int] = field(default_factory=dict)

    def describe(self) -> str:
        """The line the plan display adds: how the workers will be replaced."""
        sizes = sorted({self.at_once.get(i.pool, 1) for i in self.retiring})
        how = " or ".join(str(n) for n in sizes)
        noun = "worker" if len(self.retiring) == 1 else "workers"
        return "\n".join([
            f"the cluster is running: {len(self.retiring)} {noun} will be replaced "
            f"(or removed) {how} at a time: new nodes Ready first, then each old node "
            "cordoned, drained (PodDisruptionBudgets honoured) and deleted"])


def retires_workers(plan: InfraPlan) -> bool:
    """Whether the plan deletes (or replaces) worker droplets."""
    return any(c.address.startswith(WORKERS) and c.action in ("delete", "replace")
               for c in plan.pending)


def _key(address: str) -> str:
    return address[len(WORKERS):].rstrip("]").strip('"')


def _instance(key: str, values: dict[str, Any], env: str) -> Instance | None:
    pool = pool_of(env, [t for t in values.get("tags") or [] if isinstance(t, str)])
    size, image = values.get("size"), values.get("image")
    if not (pool and isinstance(size, str) and isinstance(image, str)):
        return None
    return Instance(key, pool, size, image, str(values.get("name") or f"{env}-{key}"))


def from_document(document: dict[str, Any], prepared: Prepared) -> Rollout:
    """The rollout of a saved plan (``terraform show -json``): what stays, goes and comes."""
    env = prepared.env
    kept: list[Instance] = []
    retiring: list[Instance] = []
    adding: list[Instance] = []
    for rc in document.get("resource_changes", []):
        if rc.get("mode") != "managed" or not rc.get("address", "").startswith(WORKERS):
            continue
        key = _key(rc["address"])
        change = rc.get("change", {})
        actions = list(change.get("actions", []))
        before, after = change.get("before") or {}, change.get("after") or {}
        if "delete" in actions and "create" in actions:
            raise ProvisionError(f"the plan replaces worker {before.get('name') or key} in "
                                 "place, which a rolling replacement cannot stage; this is a "
                                 "change the workers' keys do not carry (e.g. their network)")
        if "delete" in actions:
            found = _instance(key, before, env.name)
            if found:
                retiring.append(found)
        elif "create" in actions:
            found = _instance(key, after, env.name)
            if found:
                adding.append(found)
        else:
            found = _instance(key, before or after, env.name)
            if found:
                kept.append(found)
    pools = {p.name: p for p in env.worker_pools}
    rollout = Rollout(kept, sorted(retiring, key=_order), sorted(adding, key=_order))
    for instance in rollout.retiring + rollout.adding + rollout.kept:
        pool = pools.get(instance.pool)
        rollout.at_once[instance.pool] = pool.replace_at_once if pool else 1
        rollout.drain_timeout[instance.pool] = pool.drain_timeout if pool else 600
    clash = {i.name for i in rollout.adding} & {i.name for i in rollout.retiring}
    if clash:
        raise ProvisionError(f"new workers would take the names of the ones they replace "
                             f"({', '.join(sorted(clash))}); remove them first")
    return rollout


def _order(instance: Instance) -> tuple[str, int, str]:
    """By pool, then by number (``<pool>-<n>-<generation>``), as a person counts them."""
    number = instance.key[len(instance.pool) + 1:].split("-", 1)[0]
    return instance.pool, int(number) if number.isdigit() else 0, instance.key


def refuse_saved_plan(saved: Path | None, plan: InfraPlan) -> None:
    """``up --plan``: a saved plan applies as saved, so it may not retire a live pool."""
    if saved is not None and retires_workers(plan):
        raise SavedPlanRefused(
            "this saved plan deletes worker droplets of a running cluster all at once, "
            "without draining them; run `provision up` without --plan, which replaces "
            "workers a few at a time after confirming the plan")


def prepare(ws: Workspace, planfile: Path, plan: InfraPlan, prepared: Prepared,
            saved_plan: Path | None) -> Rollout | None:
    """The rollout ``up`` runs instead of one apply, or None (no cluster yet, no worker
    retired: a first ``up`` and a scale-up stay a single apply). Writes nothing."""
    from provisioner.pipeline import cluster_stage

    if not retires_workers(plan):
        return None
    if not cluster_stage.kubeconfig_path(prepared).is_file():
        if prepared.env.state.backend != "spaces":
            return None  # this folder holds the state and never reached a cluster
        # A fresh work folder of remote state (a CI runner) holds no kubeconfig even for
        # a running cluster: it would delete the pool's workers in one apply, undrained.
        raise UsageError(
            f"this plan deletes worker droplets, and {prepared.work.root} has no kubeconfig "
            "to drain them through: run `provision kubeconfig "
            f"{prepared.config}` first (it is made from the cluster's CA), then `provision "
            "up` again; nothing was applied")
    refuse_saved_plan(saved_plan, plan)
    rollout = from_document(ws.show(planfile), prepared)
    return rollout if rollout.retiring else None


def release(prepared: Prepared, rollout: Rollout | None, say: Report) -> list[str]:
    """After the plan is confirmed (or when it changes nothing): uncordon the nodes an
    earlier rollout cordoned (``provision.dev/retiring``) that this one does not retire: a
    rollout stopped at a drain and then backed out would otherwise keep them unschedulable
    for good."""
    from provisioner.pipeline import cluster_stage

    path = cluster_stage.kubeconfig_path(prepared)
    if not path.is_file():
        return []
    retiring = {i.name for i in rollout.retiring} if rollout else set()
    return release_kept(cluster_stage.api_client(path), retiring, say)


def release_kept(api: Any, retiring: set[str], say: Report) -> list[str]:
    """Uncordon the nodes provision cordoned to retire that ``retiring`` no longer holds,
    and drop their annotation; their names. Best effort: an API that cannot be reached
    leaves them as they are (said), and the next ``up`` looks again."""
    from provisioner.bootstrap import readiness

    ok, said = readiness.api_ready(api)
    if not ok:
        say(f"could not look for nodes left cordoned by a stopped rollout ({said}); "
            "`provision up` looks again next time")
        return []
    kube = Kube(api, timeout=15)
    try:
        listed = kube.request("GET", "/api/v1/nodes", verb="list nodes")
    except KubeError as e:
        say(f"could not look for nodes left cordoned by a stopped rollout ({e}); "
            "`provision up` looks again next time")
        return []
    released: list[str] = []
    for node in listed.get("items") or []:
        meta = node.get("metadata") or {}
        name = str(meta.get("name"))
        if RETIRING not in (meta.get("annotations") or {}) or name in retiring:
            continue
        if not _mark(kube, name, retiring=False):
            continue
        released.append(name)
        say(f"uncordoned {name}: an earlier rollout cordoned it to replace it, and this "
            "plan keeps it")
    return released


def apply(ws: Workspace, plan: InfraPlan, prepared: Prepared, rollout: Rollout,
          say: Report) -> dict[str, Any]:
    """Run the rollout through Terraform: each step planned and checked, then applied."""
    from provisioner.bootstrap import readiness
    from provisioner.pipeline import cluster_stage, infra_stage
    from provisioner.pipeline.prepare import run_plan_path

    api = cluster_stage.api_client(cluster_stage.kubeconfig_path(prepared))
    ok, said = readiness.api_ready(api)
    if not ok:
        raise ProvisionError(f"the cluster's API cannot be reached ({said}), so the old "
                             "workers cannot be drained; nothing was applied. Bring the API "
                             "back, then run `provision up` again")
    confirmed = {c.address for c in plan.pending}
    retiring = {f'{WORKERS}"{i.key}"]' for i in rollout.retiring}

    def planned(variables: dict[str, Any] | None) -> Path:
        planfile = run_plan_path(prepared.work, "rolling.tfplan")
        result = ws.plan(planfile, variables=variables)
        step = plan_from_events(result.events, {})
        # In-place updates follow from the workers present (a firewall's droplets);
        # anything created or deleted must be in the confirmed plan, and only the
        # retiring workers may go.
        beyond = sorted(c.address for c in step.pending if c.action != "update" and (
            c.address not in confirmed or (c.address.startswith(WORKERS)
                                           and c.action in ("delete", "replace")
                                           and c.address not in retiring)))
        if beyond:  # the cloud or the state moved since the plan was confirmed
            raise ProvisionError("a step of the rolling replacement would change what the "
                                 f"confirmed plan did not: {', '.join(beyond)}; nothing of "
                                 "it was applied. Run `provision up` again to review the plan")
        return planfile

    secrets = prepared.secrets

    def joinable() -> None:
        """A long rollout outlives the join credentials made before it (a bootstrap token
        lasts 4 h, a drain may take its timeout per batch): renew them before new workers
        join once less than an hour is left, so the last batch joins like the first."""
        nonlocal secrets
        if not join_credentials.expired(secrets.token_expires, clock.now(), RENEW_MARGIN):
            return
        secrets = join_credentials.refresh(api, replace(prepared, secrets=secrets), say,
                                           control_plane=False)
        values = json.loads(ws.env["TF_VAR_bootstrap_secrets"])
        values.update(secrets.terraform_values())
        ws.env["TF_VAR_bootstrap_secrets"] = json.dumps(values)

    def step(instances: dict[str, Instance], why: str) -> dict[str, Any]:
        say(f"rolling replacement: {why}")
        joinable()
        value = {key: i.value() for key, i in sorted(instances.items())}
        return infra_stage.apply(ws, planned({"worker_instances": value}), prepared)

    def finish() -> dict[str, Any]:
        return infra_stage.apply(ws, planned(None), prepared)

    return run(rollout, api, step, finish, say)


# ----------------------------------------------------------------------- the steps

ApplyStep = Callable[[dict[str, Instance], str], dict[str, Any]]


def run(rollout: Rollout, api: Any, apply_step: ApplyStep, finish: Callable[[], dict[str, Any]],
        say: Report, nodes_timeout: float | None = None, interval: float = 1.0
        ) -> dict[str, Any]:
    """Replace the workers batch by batch; the outputs of the final apply.

    ``apply_step(instances, why)`` plans and applies the module with exactly these workers
    and returns the outputs; ``finish()`` applies the whole plan.
    """
    from provisioner.bootstrap import readiness

    wait = NODES_TIMEOUT if nodes_timeout is None else nodes_timeout  # read now: tests
    kube = Kube(api, timeout=15)
    current = {i.key: i for i in rollout.kept + rollout.retiring}
    waiting = list(rollout.adding)
    staying = {i.key for i in rollout.kept}
    for pool in sorted({i.pool for i in rollout.retiring}):
        olds = [i for i in rollout.retiring if i.pool == pool]
        news = [i for i in waiting if i.pool == pool]
        at_once = max(1, rollout.at_once.get(pool, 1))
        while olds:
            batch, olds = olds[:at_once], olds[at_once:]
            joining, news = news[:len(batch)], news[len(batch):]
            for instance in joining:
                waiting.remove(instance)
                current[instance.key] = instance
                staying.add(instance.key)
            if joining:
                apply_step(dict(current), "adding " + ", ".join(i.name for i in joining))
            names = sorted(current[k].name for k in staying if k in current)
            readiness.wait_for_nodes(api, names, time.monotonic() + wait, say,
                                     interval=interval)
            for old in batch:
                cordon(kube, old.name, say)
            deadline = time.monotonic() + rollout.drain_timeout.get(pool, 600)
            for old in batch:
                drain(kube, old.name, deadline, say, interval)
            for old in batch:
                current.pop(old.key, None)
            apply_step(dict(current), "removing " + ", ".join(i.name for i in batch))
            for old in batch:
                delete_node(kube, old.name, say)
    return finish()


def _mark(kube: Kube, node: str, retiring: bool) -> bool:
    """Cordon the node and mark it ours to retire (what ``kubectl cordon`` patches, plus
    the annotation), or undo both; False when there is no such Node."""
    body = {"metadata": {"annotations": {RETIRING: "true" if retiring else None}},
            "spec": {"unschedulable": True if retiring else None}}
    try:
        kube.request("PATCH", f"/api/v1/nodes/{node}", body=body,
                     content_type="application/merge-patch+json", verb="patch nodes")
    except KubeError as e:
        if e.status != 404:
            raise
        return False
    return True


def cordon(kube: Kube, node: str, say: Report) -> None:
    """Mark the node unschedulable and ours to retire."""
    if _mark(kube, node, retiring=True):
        say(f"cordoned {node}")
    # else it never joined: nothing runs there


@dataclass
class _Blocked:
    pod: str
    reason: str


def drainable(pod: dict[str, Any]) -> bool:
    """kubectl drain's filters: not a DaemonSet's or mirror pod, not finished. A pod being
    deleted stays: the drain waits until it is gone (kubectl's waitForDelete)."""
    meta = pod.get("metadata") or {}
    if MIRROR in (meta.get("annotations") or {}):
        return False
    if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
        return False
    owner = next((r for r in meta.get("ownerReferences") or [] if r.get("controller")), None)
    return not (owner and owner.get("kind") == "DaemonSet")


def pods_on(kube: Kube, node: str) -> list[dict[str, Any]]:
    """The pods a drain of ``node`` must evict."""
    listed = kube.request("GET", "/api/v1/pods", [("fieldSelector", f"spec.nodeName={node}")],
                          verb="list pods")
    return [p for p in listed.get("items") or [] if drainable(p)]


def _label(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def evict(kube: Kube, pod: dict[str, Any]) -> str | None:
    """POST the pod's eviction; None when it is gone or going, else why it must wait."""
    meta = pod.get("metadata") or {}
    namespace, name = meta.get("namespace"), meta.get("name")
    body = {"apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": name, "namespace": namespace}}
    once = Kube(kube.client, timeout=kube.timeout, attempts=1)  # a 429 is an answer here
    try:
        once.request("POST", f"/api/v1/namespaces/{namespace}/pods/{name}/eviction",
                     body=body, verb="create pods/eviction")
    except KubeError as e:
        if e.status == 404:
            return None
        if e.status in (429, 500):  # 500: more than one budget selects the pod
            causes = (e.body.get("details") or {}).get("causes") or []
            said = [str(c.get("message")) for c in causes if c.get("message")]
            return "; ".join(said) or str(e.body.get("message") or e)
        raise
    return None


def drain(kube: Kube, node: str, deadline: float, say: Report, interval: float = 1.0,
          clock: Callable[[], float] = time.monotonic,
          sleep: Callable[[float], None] = time.sleep) -> None:
    """Evict every pod of the node, retrying refusals, until none is left or the deadline."""
    blocked: dict[str, _Blocked] = {}
    evicted: set[str] = set()
    while True:
        pods = pods_on(kube, node)
        if not pods:
            say(f"drained {node}" + (f" ({len(evicted)} pods evicted)" if evicted else ""))
            return
        for pod in pods:
            label = _label(pod)
            meta = pod.get("metadata") or {}
            uid = str(meta.get("uid"))
            if uid in evicted or meta.get("deletionTimestamp"):
                blocked.pop(label, None)
                continue  # being deleted: waited for until it is gone
            reason = evict(kube, pod)
            if reason is None:
                evicted.add(uid)
                blocked.pop(label, None)
                say(f"evicted {label} from {node}")
            else:
                blocked[label] = _Blocked(label, reason)
        if clock() >= deadline:
            _give_up(node, pods_on(kube, node), blocked)
        sleep(min(EVICTION_RETRY if blocked else interval, max(0.1, deadline - clock())))


def _give_up(node: str, pods: Iterable[dict[str, Any]], blocked: dict[str, _Blocked]) -> None:
    pods = list(pods)
    left = [_label(p) for p in pods]
    if not left:
        return
    why = [f"{label}: {blocked[label].reason}" for label in left if label in blocked]
    going = [_label(p) for p in pods if (p.get("metadata") or {}).get("deletionTimestamp")]
    raise DrainTimeout(
        f"node {node} could not be drained in time; the rollout stopped there and the "
        f"remaining workers are untouched. Pods still on it: {', '.join(left)}"
        + (f". Blocked by: {'; '.join(why)}" if why else "")
        + (f". Still terminating (evicted, not yet gone; a finalizer or a long grace "
           f"period holds them): {', '.join(going)}" if going else "")
        + ". Relax the PodDisruptionBudget or make room (or raise the pool's "
        "replace.drain_timeout), then run `provision up` again to continue")


def delete_node(kube: Kube, node: str, say: Report) -> None:
    """The Node object of a deleted droplet (the cloud controller manager would, later)."""
    try:
        kube.request("DELETE", f"/api/v1/nodes/{node}", verb="delete nodes")
    except KubeError as e:
        if e.status != 404:
            raise
        return
    say(f"deleted node {node}")
