"""`provision restore CONFIG --snapshot ID|latest`: the control plane rebuilt from a snapshot.

Every control-plane droplet is replaced (Terraform's ``-replace``) with ``var.restore`` on:
the first one downloads the staged copy of ``snapshot.db`` (restore_staging.py), checks its
SHA-256, restores etcd from it and runs ``kubeadm init`` with the CA, service-account and
front-proxy keys provision holds, on the same endpoint (the floating IP or load balancer is
kept: a restore never creates one); the others join it. Workers, the endpoint and every
kubeconfig keep working: same address, same CA. The apps come back from etcd as of the
snapshot; what changed after it is lost.

Order, each stage refused before anything changes where it can be: the file has `backups:`
and provision holds the recipient key; the environment exists (its endpoint and kubeconfig
are in the work folder); the snapshot verifies exactly as `backup --fetch` checks it (tag,
ID, environment, PKI: another cluster's is refused, exit 2); fresh join credentials for the
restored cluster's `kubeadm init`; the copy staged; the plan, which must replace the
control-plane droplets and change nothing else (exit 3 otherwise: run `up` first); the
confirmation; the apply; then the API on the same endpoint, the control planes, the
workers; the copy deleted.

Resumable: ``restore.json`` in the work folder (restore_record.py) names the restore under
way. Once its apply started, a run waits for the API (``came_back``); one that answers
without the old cluster's marker (cluster/restore_marker.py) came back, and the run only
finishes (missing control-plane droplets created, tainted ones other than the first
replaced, waits, clean-up); one that cannot be told apart exits 1 and changes nothing;
only an API silent for the whole wait, or the old cluster (marked), starts it over. Never
two restores on top of each other.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.bootstrap import join_credentials, readiness
from provisioner.bootstrap.pki import new_bootstrap_token, new_certificate_key
from provisioner.bootstrap.readiness import Report
from provisioner.cloud import backup_bucket
from provisioner.cloud.preflight import preflight
from provisioner.cloud.token import api_token
from provisioner.config.model import Backups
from provisioner.errors import ProvisionError, UsageError
from provisioner.infra.changes import CONTROL_PLANE, Change, InfraPlan, names_by_address
from provisioner.infra.engine import Engine
from provisioner.infra.workspace import Workspace
from provisioner.pipeline import (
    backup_fetch,
    backup_now,
    change_window,
    cluster_stage,
    infra_stage,
    replacing,
    restore_nodes,
    restore_record,
    restore_staging,
    running,
)
from provisioner.pipeline.infra_stage import PolicyError
from provisioner.pipeline.prepare import Prepared, holds_work_folder, prepare, run_plan_path
from provisioner.render.names import controller_names, resource_names
from provisioner.ui.progress import Progress

ShowPlan = Callable[[InfraPlan, Prepared], None]
Confirm = Callable[[InfraPlan, Prepared, str], bool]  # the third: what is destroyed
MakeProgress = Callable[[dict[str, str]], Progress]
# What a restore's plan may change besides the control-plane droplets: the project
# listing every droplet's URN follows the new droplets.
FOLLOWERS = ("digitalocean_project_resources",)
ENDPOINTS = ("digitalocean_reserved_ip", "digitalocean_loadbalancer")
SCRATCH = ".restore-"  # the verify step's private folder in the work folder


class RestoreDeclined(ProvisionError):
    """The user answered no; nothing was applied (exit 1, as Terraform does)."""


@dataclass
class Restored:
    """What the restore did."""

    prepared: Prepared
    snapshot: str
    taken_at: str
    endpoint: str
    resumed: bool = False
    plan: InfraPlan | None = None
    timings: list[tuple[str, float]] = field(default_factory=list)
    nodes: tuple[str, ...] = ()
    copy_deleted: bool = True
    lost_workers: tuple[str, ...] = ()  # workers the snapshot has no Node of theirs for

    def summary(self) -> str:
        lines = [f"restored {self.prepared.env.name} from snapshot {self.snapshot} (taken "
                 f"{self.taken_at or 'at an unknown time'}); API at https://{self.endpoint}:"
                 f"6443, same CA, {len(self.nodes)} nodes Ready"
                 + (" (an interrupted restore, finished)" if self.resumed else "")]
        if self.lost_workers:
            lines.append(f"  not back: {', '.join(self.lost_workers)} (created after the "
                         "snapshot; " + restore_nodes.recovery(list(self.lost_workers),
                                                               self.prepared.config) + ")")
        lines += [f"  {stage:<22} {seconds:8.1f} s" for stage, seconds in self.timings]
        lines.append(f"  {'total':<22} {sum(s for _, s in self.timings):8.1f} s")
        return "\n".join(lines)


class _Timer:
    def __init__(self, into: list[tuple[str, float]]) -> None:
        self.into = into

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.into.append((stage, time.monotonic() - started))


@holds_work_folder("restore")
def restore(config: Path, workdir: Path | None, engine: Engine, snapshot: str,
            show: ShowPlan, confirm: Confirm, progress: MakeProgress,
            report: Report | None = None, allow_full_token: bool = False) -> Restored:
    """Restore the environment's control plane from ``snapshot`` (an ID or ``latest``)."""
    say = report or (lambda message: None)
    prepared = prepare(config, workdir)
    backups = backup_now.configured(prepared.env, config)
    # custody and recipient key, from this work folder (the --workdir given, or the default)
    backup_fetch.held_secrets(config, prepared.env, prepared.work.root)
    endpoint = known_endpoint(prepared)
    token = api_token()
    failover = infra_stage.failover_token(prepared, token, allow_full_token, say)
    preflight(prepared.env, token, config=prepared.config)
    backup_bucket.preflight(backups)
    windows_said(prepared, say)
    root = prepared.work.root
    # A run killed while it verified the snapshot (SIGKILL: no finally) left the plaintext
    # snapshot.db, every Secret of the cluster, in a scratch folder; this run holds the work
    # folder, so none is in use.
    for scratch in root.glob(f"{SCRATCH}*"):
        shutil.rmtree(scratch, ignore_errors=True)
    record = restore_record.read(root)
    if record is not None:
        if snapshot not in (backup_fetch.LATEST, record.snapshot):
            raise UsageError(
                f"a restore of {prepared.env.name} from snapshot {record.snapshot} is under "
                f"way (started {record.started_at}, {root / restore_record.RECORD}): run "
                f"`provision restore {config} --snapshot {record.snapshot}` to finish it "
                "before restoring another snapshot")
        cluster = None if record.stage == "staged" else came_back(prepared, record,
                                                                   endpoint, say)
        if cluster is not None:
            say(f"the cluster answers on {endpoint} as restored from snapshot "
                f"{record.snapshot}: finishing that restore (no second one)")
            return _finish(prepared, backups, record, endpoint, token, failover, engine,
                           show, confirm, progress, say, cluster)
        say(f"the restore from snapshot {record.snapshot} started {record.started_at} did "
            "not bring the cluster back: starting it over")
        restore_staging.remove(backups, record.staged_key, say)
        (root / restore_record.RECORD).unlink(missing_ok=True)
        snapshot = record.snapshot if snapshot == backup_fetch.LATEST else snapshot
    return _restore(prepared, backups, snapshot, endpoint, token, failover, engine, show,
                    confirm, progress, say)


def known_endpoint(prepared: Prepared) -> str:
    """The endpoint of the environment provision brought up (exit 2 when there is none):
    a restore keeps it, never creates one."""
    recorded = infra_stage.recorded_outputs(prepared) or {}
    endpoint = recorded.get("api_endpoint")
    path = cluster_stage.kubeconfig_path(prepared)
    if not endpoint or not path.is_file():
        raise UsageError(
            f"{prepared.env.name} has no cluster this work folder brought up ("
            f"{infra_stage.infrastructure_file(prepared)} and {path} name its endpoint and "
            "CA): a restore keeps the existing API endpoint and never creates one. Create "
            f"the environment with `provision up {prepared.config}` (or restore the work "
            "folder); nothing was changed")
    return str(endpoint)


def windows_said(prepared: Prepared, say: Report) -> None:
    """A restore is a recovery: the freeze calendar does not hold it back (README
    "Restoring from a snapshot"); a closed window is said, and recorded with the restore."""
    from provisioner.workloads import windows

    if not change_window.governs(prepared.env, "infrastructure"):
        return
    decision = windows.decide(prepared.env.deploy_policy, clock.now())
    if not decision.allowed:
        say(f"infrastructure changes are not allowed now ({decision.reason}); a restore is a "
            "recovery and is not held back by the windows: it is recorded in "
            f"{prepared.work.root / restore_record.HISTORY}")


class RestoreUndecided(ProvisionError):
    """It cannot be told whether the restore under way brought the cluster back: nothing
    is changed (exit 1), the next run asks again."""


def came_back(prepared: Prepared, record: restore_record.InProgress, endpoint: str,
              say: Report) -> running.Running | None:
    """The cluster restored by the apply ``record`` started, or None when that restore
    did not bring it back (then it starts over). Raises RestoreUndecided when it cannot
    tell: starting over would replace a control plane that may be the restored one.

    The first node takes minutes (cloud-init, packages, images, the etcd restore, kubeadm
    init) after its droplet exists, and it may still be downloading the staged copy: an
    API that does not answer yet is waited for, up to the API timeout, as the first run
    would have waited. One that answers still carrying the marker the run put into the old
    cluster is the old one: nothing was restored.
    """
    from provisioner.cluster import restore_marker
    from provisioner.kube import KubeError

    path = cluster_stage.kubeconfig_path(prepared)
    minutes = int(cluster_stage.API_TIMEOUT // 60)
    say(f"a restore from snapshot {record.snapshot} was applied ({record.stage}): waiting up "
        f"to {minutes} min for the API at {endpoint} before judging whether it came back")
    try:
        api = cluster_stage.api_client(path)
        readiness.wait_for_api(api, endpoint, time.monotonic() + cluster_stage.API_TIMEOUT,
                               say)
    except readiness.NotReady:
        return None  # as long as the first run waits: that restore did not come back
    except Exception as e:  # an unusable kubeconfig: ConfigException, OSError, ValueError
        raise RestoreUndecided(f"cannot ask the cluster through {path} ({e}): whether the "
                               "restore under way came back is unknown; nothing was "
                               f"changed, run `provision restore {prepared.config} "
                               f"--snapshot {record.snapshot}` again") from e
    cluster = running.probe(prepared, say)
    try:
        if cluster is None:
            raise KubeError("the API answered /readyz, then not the version and nodes")
        if record.marked and restore_marker.present(cluster.api, record.restore_id):
            return None  # the old cluster, which got the marker before the apply
    except KubeError as e:
        raise RestoreUndecided(
            f"the API at {endpoint} answers, but whether it is the restored cluster cannot "
            f"be told now ({e}); nothing was changed: run `provision restore "
            f"{prepared.config} --snapshot {record.snapshot}` again") from e
    return cluster


def verified_snapshot(prepared: Prepared, backups: Backups, snapshot: str
                      ) -> tuple[backup_fetch.Fetched, bytes]:
    """Download, open and check the snapshot exactly as `backup --fetch` does (into a
    private folder of the work folder, deleted at once); its snapshot.db."""
    if snapshot != backup_fetch.LATEST:
        known = [s.id for s in backup_bucket.BackupBucket(backups).snapshots()]
        if snapshot not in known:
            shown = ", ".join(dict.fromkeys(known[:5])) or "none yet"
            raise UsageError(
                f"--snapshot {snapshot}: no such snapshot under s3://{backups.bucket}/"
                f"{backups.prefix}/ (newest: {shown}); `provision backup "
                f"{prepared.config} --list` shows them all; nothing was changed")
    scratch = Path(tempfile.mkdtemp(dir=prepared.work.root, prefix=SCRATCH))
    try:
        fetched = backup_fetch.fetch(prepared.config, prepared.env, prepared.work.root,
                                     backups, snapshot, scratch / "snapshot")
        return fetched, (fetched.folder / "snapshot.db").read_bytes()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def fresh_join_credentials(prepared: Prepared) -> Prepared:
    """New bootstrap token and certificate key, in memory: saved to the work folder only
    when the apply starts (``_restore``). Until then the running cluster (if any) never
    issued them, and `_joinable` and `up`'s rolling replacement trust what bootstrap.json
    holds: a declined or refused restore must leave it as it was.

    The restored cluster does not answer before the apply, so they cannot be made through
    its API: the first node's `kubeadm init` creates the InitConfiguration's token and
    uploads kubeadm-certs under its certificateKey, both valid from then on (4 h and 2 h),
    while the token Secrets in the snapshot may long have expired. The others join with
    these.
    """
    now = clock.now()
    rfc = join_credentials.rfc3339
    fresh = replace(prepared.secrets, bootstrap_token=new_bootstrap_token(),
                    certificate_key=new_certificate_key(),
                    token_expires=rfc(now + join_credentials.TOKEN_TTL),
                    certificate_key_expires=rfc(now + join_credentials.CERT_TOKEN_TTL))
    return replace(prepared, secrets=fresh)


def check_plan(plan: InfraPlan, prepared: Prepared, replacing: bool) -> None:
    """A restore's plan replaces (or creates, for droplets gone) the control-plane
    droplets and changes nothing else; refused otherwise, nothing applied.

    Finishing one (``replacing`` false) creates the control-plane droplets the interrupted
    apply did not make, and replaces the ones it left tainted (a create whose wait until
    active failed: Terraform keeps the droplet and plans its replacement), never the
    first: that one is the restored cluster."""
    made = [c for c in plan.pending if c.type in ENDPOINTS and c.action == "create"]
    if made:
        raise UsageError(
            f"the plan creates the API endpoint ({made[0].noun}): the Terraform state does "
            f"not hold {prepared.env.name}'s endpoint, and a restore keeps the existing one "
            "(the workers and kubeconfigs use it) and never creates one; nothing was applied")
    first = f"{CONTROL_PLANE}[0]"
    if not replacing:
        restored = [c for c in plan.pending if c.address == first and c.action != "create"]
        if restored:
            raise PolicyError(
                f"the plan would {restored[0].action} {restored[0].name or first}, the first "
                f"control-plane droplet, which holds the restored cluster of "
                f"{prepared.env.name}: finishing a restore never touches it. Look at it "
                "(`provision status`); nothing was applied")

    def allowed(c: Change) -> bool:
        if replacing:
            return c.action in ("replace", "create")
        return c.action == "create" or (c.action == "replace" and c.address != first)

    others = [c for c in plan.pending
              if not (c.control_plane and allowed(c))
              and not (c.type in FOLLOWERS and c.action == "update")]
    if others:
        names = ", ".join(f"{c.name or c.address} ({c.action})" for c in others[:6])
        raise PolicyError(
            f"the restore's plan also changes {names}: the environment differs from "
            f"{prepared.config} (drift, or an edited file). A restore changes only the "
            f"control-plane droplets: run `provision up {prepared.config}` first, then the "
            "restore; nothing was applied")
    if replacing:
        planned = {c.address for c in plan.pending if c.control_plane}
        wanted = set(_addresses(prepared))
        if planned != wanted:
            raise PolicyError("the restore's plan does not replace every control-plane "
                              f"droplet ({', '.join(sorted(wanted - planned))} missing); "
                              "nothing was applied")


def _addresses(prepared: Prepared) -> list[str]:
    return [f"{CONTROL_PLANE}[{i}]" for i in range(len(controller_names(prepared.env)))]


def lost_text(prepared: Prepared, fetched: backup_fetch.Fetched,
              late: list[str] | None = None) -> str:
    """What the confirmation names: destroyed, kept, lost; ``late``: the workers created
    after the snapshot, which the restored cluster will not know."""
    cps = ", ".join(controller_names(prepared.env))
    text = (f"This destroys every control-plane droplet of {prepared.env.name} ({cps}) with "
            f"its etcd data and rebuilds etcd from snapshot {fetched.id} (taken "
            f"{fetched.taken_at or '?'}): every change to the cluster's objects after it is "
            "lost (apps deployed, scaled or deleted since, Secrets, ConfigMaps). Workers, "
            "the API endpoint and the CA stay.")
    if late:
        text += (f" Workers created after the snapshot ({', '.join(late)}) have no Node in "
                 "it and do not come back by themselves (a kubelet registers once): "
                 "afterwards, " + restore_nodes.recovery(late, prepared.config) + ".")
    return text


def late_workers(prepared: Prepared, token: str, taken_at: str, say: Report) -> list[str]:
    """The workers created after the snapshot (DigitalOcean's created_at); [] when the
    account cannot be asked now (said: the Nodes tell once the API answers)."""
    try:
        return restore_nodes.workers_created_after(prepared.env, token, taken_at)
    except ProvisionError as e:
        say(f"could not list the droplets' creation times ({e}); the workers the restored "
            "cluster does not know are named once it answers")
        return []


def _restore(prepared: Prepared, backups: Backups, snapshot: str, endpoint: str, token: str,
             failover: str, engine: Engine, show: ShowPlan, confirm: Confirm,
             progress: MakeProgress, say: Report) -> Restored:
    timings: list[tuple[str, float]] = []
    timed = _Timer(timings)
    with timed("verify"):
        fetched, db = verified_snapshot(prepared, backups, snapshot)
    say(f"snapshot {fetched.id} verified: taken {fetched.taken_at} on {fetched.node}, "
        f"{len(db)} bytes, this cluster's PKI")
    prepared = fresh_join_credentials(prepared)
    old = running.probe(prepared, say)  # the old cluster, if it still answers
    if old is not None:
        # The wrong environment, or a cluster that recovered by itself: said before the
        # question, which reads the same for a dead cluster.
        say(f"warning: {prepared.env.name}'s API answers now (Kubernetes {old.version}, "
            f"{len(old.kubelets)} nodes registered): this restore replaces a control plane "
            "that is running; every change since the snapshot is lost")
    root = prepared.work.root
    with timed("stage copy"):
        staged = restore_staging.stage(backups, fetched.id, db)
    say(f"staged the copy at s3://{backups.bucket}/{staged.key} (URL valid until "
        f"{staged.expires_at})")
    record = restore_record.InProgress(secrets.token_hex(6), fetched.id, staged.key,
                                       join_credentials.rfc3339(clock.now()), "staged", False)
    restore_record.write(root, record)
    applying = False
    try:
        ws = infra_stage.workspace(prepared, engine, token, progress({}), failover,
                                   initialised=True)
        values = json.loads(ws.env["TF_VAR_bootstrap_secrets"])
        values.update(staged.values())
        ws.env["TF_VAR_bootstrap_secrets"] = json.dumps(values)  # never on disk
        ws.env["TF_VAR_restore"] = "true"
        ws.replace = tuple(_addresses(prepared))
        planfile = run_plan_path(prepared.work, "restore.tfplan")
        plan = infra_stage.plan(ws, planfile, resource_names(prepared.env), detail=False)
        check_plan(plan, prepared, replacing=True)
        show(plan, prepared)
        late = late_workers(prepared, token, fetched.taken_at, say)
        if not confirm(plan, prepared, lost_text(prepared, fetched, late)):
            raise RestoreDeclined("not restored: the plan was not confirmed; nothing was "
                                  "applied")
        marked = False
        if old is not None:
            from provisioner.cluster import restore_marker

            restore_marker.put(old.api, record.restore_id)
            marked = True
        record = replace(record, stage="applying", marked=marked)
        restore_record.write(root, record)
        applying = True
        # The droplets about to be made carry these: from now on they are the cluster's.
        join_credentials.save(prepared, prepared.secrets)
        with timed("apply"):
            outputs = _apply(ws, planfile, prepared, plan, progress)
        record = replace(record, stage="applied")
        restore_record.write(root, record)
    except BaseException:
        if not applying:  # nothing changed: no copy, no record left behind
            restore_staging.remove(backups, staged.key, say)
            (root / restore_record.RECORD).unlink(missing_ok=True)
        else:
            say(f"the restore copy s3://{backups.bucket}/{staged.key} stays: the first "
                "control-plane node may still be downloading it; run `provision restore "
                f"{prepared.config} --snapshot {fetched.id}` again to finish (it deletes "
                "the copy)")
        raise
    result = Restored(prepared, fetched.id, fetched.taken_at, endpoint, plan=plan,
                      timings=timings)
    return _come_back(result, backups, record, outputs, token, say)


def _apply(ws: Workspace, planfile: Path, prepared: Prepared, plan: InfraPlan,
           progress: MakeProgress) -> dict[str, Any]:
    tracker = progress(names_by_address(plan))
    ws.on_event = tracker
    try:
        return infra_stage.apply(ws, planfile, prepared)
    finally:
        tracker.close()


def _finish(prepared: Prepared, backups: Backups, record: restore_record.InProgress,
            endpoint: str, token: str, failover: str, engine: Engine, show: ShowPlan,
            confirm: Confirm, progress: MakeProgress, say: Report,
            cluster: running.Running) -> Restored:
    """The cluster came back: create the control-plane droplets still missing (they join
    with credentials made through its API, as `up` makes them), then wait and clean up."""
    timings: list[tuple[str, float]] = []
    prepared = _joinable(prepared, cluster, say)
    ws = infra_stage.workspace(prepared, engine, token, progress({}), failover,
                               initialised=True)
    planfile = run_plan_path(prepared.work, "restore.tfplan")
    plan = infra_stage.plan(ws, planfile, resource_names(prepared.env), detail=False)
    check_plan(plan, prepared, replacing=False)
    # A tainted droplet may hold an etcd member of the restored cluster already: as for
    # `up --replace`, one at a time, its member and Node removed before the apply.
    replacing.refuse_several(plan, prepared, cluster)
    outputs = infra_stage.recorded_outputs(prepared) or {}
    if plan.pending:
        show(plan, prepared)
        what = (f"This creates the control-plane droplets the interrupted restore of "
                f"{prepared.env.name} did not make (and replaces the ones it left tainted); "
                "they join the restored cluster.")
        if not confirm(plan, prepared, what):
            raise RestoreDeclined("not applied: the plan was not confirmed")
        replacing.before_apply(prepared, plan, say)
        with _Timer(timings)("apply"):
            outputs = _apply(ws, planfile, prepared, plan, progress)
    result = Restored(prepared, record.snapshot, "", endpoint, resumed=True, plan=plan,
                      timings=timings)
    return _come_back(result, backups, record, outputs, token, say)


def _joinable(prepared: Prepared, cluster: running.Running, say: Report) -> Prepared:
    """The join credentials for control-plane droplets the interrupted run did not make.

    The ones in the work folder are what the restored node's `kubeadm init` created (the
    token) and uploaded kubeadm-certs under (the certificate key), and the droplets that
    run made carry them: while both are valid, the new droplets get them too. Minting new
    ones (as `up` does) would upload kubeadm-certs under another key, and a droplet of the
    interrupted run still joining could then never decrypt them. Expired (or about to be):
    new ones through the restored API; a droplet of that run not joined by then keeps
    failing and is replaced with `provision up --replace NAME`.
    """
    secrets, now = prepared.secrets, clock.now()
    margin = running.SAVED_PLAN_MARGIN
    if not (join_credentials.expired(secrets.token_expires, now, margin)
            or join_credentials.expired(secrets.certificate_key_expires, now, margin)):
        return prepared
    say("the join credentials of the interrupted restore expire within "
        f"{margin.seconds // 60} minutes: making new ones; a control-plane droplet it made "
        "that has not joined yet cannot join with its old ones (replace it with `provision "
        "up --replace NAME`)")
    return replace(prepared, secrets=join_credentials.refresh(cluster.api, prepared, say,
                                                              True))


def _come_back(result: Restored, backups: Backups, record: restore_record.InProgress,
               outputs: dict[str, Any], token: str, say: Report) -> Restored:
    """Wait for the API (same endpoint, same CA), the control planes, the workers; then
    delete the copy and close the record. Interrupted or timed out here, the control
    plane is already replaced: the way on is said before the error."""
    try:
        return _wait_and_close(result, backups, record, outputs, token, say)
    except BaseException:
        say(f"the control-plane droplets of {result.prepared.env.name} were replaced for the "
            f"restore from snapshot {record.snapshot} ({restore_record.RECORD} in the work "
            f"folder records it): run `provision restore {result.prepared.config} "
            f"--snapshot {record.snapshot}` again to wait for it and finish; it does not "
            "restore a second time")
        raise


def _wait_and_close(result: Restored, backups: Backups, record: restore_record.InProgress,
                    outputs: dict[str, Any], token: str, say: Report) -> Restored:
    prepared = result.prepared
    timed = _Timer(result.timings)
    path = cluster_stage.kubeconfig_path(prepared)
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    api = cluster_stage.api_client(path)  # its CA is the custody's: TLS proves the same CA
    start = time.monotonic()
    with timed("API answers"):
        readiness.wait_for_api(api, result.endpoint, start + cluster_stage.API_TIMEOUT, say)
    if hashlib.sha256(path.read_bytes()).hexdigest() != before:
        raise ProvisionError(f"{path} changed during the restore: not the kubeconfig it began "
                             "with")
    try:
        cluster_stage.store_cloud_token(api, token)  # the snapshot's copy may be older
        backup = cluster_stage.backup_access(prepared, say)
        if backup is not None:
            cluster_stage.store_backup_access(api, backup, say)
    except ProvisionError:
        raise
    except Exception as e:
        raise ProvisionError(f"cannot store the cluster's Secrets after the restore: {e}"
                             ) from e
    controllers = [c for c in outputs.get("controllers") or [] if isinstance(c, dict)]
    cps = {str(c["name"]): restore_nodes.provider_id(c.get("id")) for c in controllers}
    # The first node deletes the snapshot's stale control-plane Nodes itself (bootstrap.sh
    # restore_nodes): a Node counts once it carries its new droplet's ID.
    with timed("control planes Ready"):
        restore_nodes.wait_current(api, cps, time.monotonic() + cluster_stage.NODES_TIMEOUT,
                                   say, "control planes")
    workers = {str(w["name"]): restore_nodes.provider_id(w.get("id"))
               for w in (outputs.get("workers") or {}).values() if isinstance(w, dict)}
    try:
        lost = restore_nodes.unknown_workers(api, workers)
    except Exception as e:  # KubeError: the API flapped; the wait below says it again
        say(f"could not list the workers' Nodes ({e}); waiting for every worker")
        lost = {}
    if lost:
        say(f"{len(lost)} worker(s) the restored cluster does not know, not waited for: "
            + "; ".join(f"{name} ({why})" for name, why in sorted(lost.items()))
            + ". A kubelet registers its Node only when it starts: "
            + restore_nodes.recovery(sorted(lost), prepared.config))
    waited = {name: pid for name, pid in workers.items() if name not in lost}
    with timed("workers Ready"):
        if waited:
            restore_nodes.wait_current(api, waited,
                                       time.monotonic() + cluster_stage.NODES_TIMEOUT, say,
                                       "workers")
    result.lost_workers = tuple(sorted(lost))
    result.nodes = tuple([*cps, *waited])
    result.copy_deleted = restore_staging.remove(backups, record.staged_key, say)
    restore_record.finish(prepared.work.root, record, {
        "finished_at": join_credentials.rfc3339(clock.now()),
        "by": _who(), "copy_left": "" if result.copy_deleted else record.staged_key,
        "stages": {stage: round(seconds, 1) for stage, seconds in result.timings}})
    return result


def _who() -> str:
    from provisioner.workloads.windows import who_am_i

    return who_am_i()
