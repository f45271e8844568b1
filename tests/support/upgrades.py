"""The nodes' side of `provision upgrade` in the simulated world: our agents' contracts.

Both agents are provision's own components, so what they do is their contract, not a
third party's behaviour:

* the upgrade agent (provisioner/agents/node_upgrade.py, its docstring and README
  "Upgrades"): a Node annotated ``provision.dev/upgrade`` = {id, version, step, kubelet}
  answers, after a simulated delay, with ``provision.dev/upgrade-result`` = {id, ok, message,
  at}; an id is run once. Step "apply" or "node" on a control plane rewrites kubeadm's static
  pods, so the kubelet recreates the mirror pods kube-apiserver-, kube-controller-manager-
  and kube-scheduler-<node> with the target's image tag (kubeadm upgrade's static pod
  manifests; the mirror pod's annotation ``kubernetes.io/config.mirror``); "apply" also
  makes ``/version`` answer the target (the API server answering runs it). Unless
  ``kubelet`` is false (and always for step "kubelet") the kubelet restarts on the target:
  ``status.nodeInfo.kubeletVersion``. Each node also carries ``provision.dev/upgrade-agent``.
* the backup agent (provisioner/agents/etcd_backup.py ``due`` and ``run_pass``; README "Etcd
  backups"): ConfigMap kube-system/provision-etcd-backup whose ``requested-at`` differs from
  its ``answered-request`` gets, after a delay, ``last-snapshot-at`` (the node's clock when
  it was taken), ``last-snapshot-key``, ``last-snapshot-node`` and ``answered-request`` (the
  request's value, echoed); each control-plane Node carries ``provision.dev/etcd-backup-agent``.
  Given the cluster's PKI (``pki``: /etc/kubernetes/pki as the first node's user-data writes
  it) and once `up` stored the agents' Secret kube-system/provision-backup, a pass makes a
  REAL object in the bucket that Secret names, with the agent's own code
  (provisioner/agents/etcd_backup.py ``pack``, ``seal`` and its SigV4 ``s3`` PUT): the
  snapshot.db is the fake API server's store dump (what an etcd snapshot holds:
  tests/fakes/kubeapi/store.py), and the record gets the key and size it uploaded.

Every version change goes to `timeline` (node, component, version, time) with the state the
cluster started from, so a test can replay it and check the version skew policy at each
entry. Kubeadm's control-plane static pods are made here too (the world's kubeadm plays only
etcd's), with the version each control plane joined with.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from provisioner.agents.etcd_backup import ANNOUNCE as BACKUP_AGENT
from provisioner.agents.node_upgrade import AGENT, CONTRACT, REQUEST, RESULT
from tests.fakes.kubeapi import catalog
from tests.fakes.kubeapi.server import FakeKubeAPI

NODE = catalog.get("v1", "Node")
POD = catalog.get("v1", "Pod")
CONFIGMAP = catalog.get("v1", "ConfigMap")
COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
RECORD = "provision-etcd-backup"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"


@dataclass(frozen=True)
class Change:
    """One version change (or, with at=0, a starting version)."""

    at: float  # time.time()
    node: str
    component: str  # kubelet, kube-apiserver, kube-controller-manager, kube-scheduler
    version: str  # plain, e.g. 1.36.3


@dataclass(frozen=True)
class Ran:
    """One request the agent ran."""

    seen: float  # when the agent first saw it
    done: float
    node: str
    id: str
    step: str
    kubelet: bool
    ok: bool


def _rfc3339(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class NodeAgents:
    """Plays every node's upgrade agent and the control planes' backup agent."""

    kube: FakeKubeAPI
    # Real seconds a step takes (the simulated kubeadm, apt and kubelet restart).
    delays: dict[str, float] = field(default_factory=lambda: {
        "apply": 0.4, "node": 0.2, "kubelet": 0.15, "snapshot": 0.2})
    failures: dict[str, str] = field(default_factory=dict)  # node -> its next result's message
    timeline: list[Change] = field(default_factory=list)
    ran: list[Ran] = field(default_factory=list)
    snapshots: list[float] = field(default_factory=list)  # times taken (time.time())
    pki: dict[str, bytes] | None = None  # kubeadm's names -> PEM; None: record only
    uploaded: list[str] = field(default_factory=list)  # object keys PUT to the bucket
    errors: list[str] = field(default_factory=list)
    _seen: dict[str, float] = field(default_factory=dict)
    _asked: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> NodeAgents:
        for node in self.kube.objects("v1", "Node"):
            name = node["metadata"]["name"]
            version = node["status"]["nodeInfo"]["kubeletVersion"].removeprefix("v")
            self.timeline.append(Change(0.0, name, "kubelet", version))
            if CONTROL_PLANE in node["metadata"].get("labels", {}):
                for component in COMPONENTS:
                    self._mirror(name, component, version)
                    self.timeline.append(Change(0.0, name, component, version))
        self.tick()  # every agent has announced itself once this returns
        self._thread = threading.Thread(target=self._loop, daemon=True, name="node-agents")
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(0.02):
            try:
                self.tick()
            except Exception as e:  # surfaced by the test
                self.errors.append(f"{type(e).__name__}: {e}")

    # --------------------------------------------------------------- the agents

    def tick(self) -> None:
        for node in self.kube.objects("v1", "Node"):
            notes = node["metadata"].get("annotations") or {}
            if notes.get(AGENT) != CONTRACT:
                self._annotate(node["metadata"]["name"], {AGENT: CONTRACT})
            # The backup agent marks its control-plane Node (etcd_backup.announce).
            if CONTROL_PLANE in node["metadata"].get("labels", {}) and \
                    notes.get(BACKUP_AGENT) != "1":
                self._annotate(node["metadata"]["name"], {BACKUP_AGENT: "1"})
            request, result = _parse(notes.get(REQUEST)), _parse(notes.get(RESULT))
            if request is None or (result is not None and result["id"] == request["id"]):
                continue
            seen = self._seen.setdefault(request["id"], time.time())
            step = str(request.get("step"))
            if time.time() - seen >= self.delays.get(step, 0.2):
                self._run(node, request, seen)
        self._backup()

    def _run(self, node: dict[str, Any], request: dict[str, Any], seen: float) -> None:
        name = node["metadata"]["name"]
        version, step = str(request["version"]), str(request["step"])
        kubelet = step == "kubelet" or request.get("kubelet") is not False
        control_plane = CONTROL_PLANE in node["metadata"].get("labels", {})
        failure = self.failures.pop(name, None)
        if failure is None:
            if step in ("apply", "node") and control_plane:
                for component in COMPONENTS:
                    self._mirror(name, component, version)
                    self.timeline.append(Change(time.time(), name, component, version))
                if step == "apply":
                    self.kube.rest.git_version = f"v{version}"
            if kubelet:
                self._kubelet(name, version)
                self.timeline.append(Change(time.time(), name, "kubelet", version))
        message = failure or f"{step} done with {version}-1.1"
        self._annotate(name, {RESULT: json.dumps({
            "id": request["id"], "ok": failure is None, "message": message,
            "at": _rfc3339(dt.datetime.now(dt.UTC))})})
        self.ran.append(Ran(seen, time.time(), name, request["id"], step, kubelet,
                            failure is None))

    def _backup(self) -> None:
        record = self.kube.get("v1", "ConfigMap", RECORD, "kube-system")
        if record is None:
            return
        data = record.get("data") or {}
        asked = data.get("requested-at")
        if not asked or asked == data.get("answered-request"):
            self._asked = None
            return
        if self._asked is None:
            self._asked = time.time()
            return
        if time.time() - self._asked < self.delays["snapshot"]:
            return
        taken = dt.datetime.now(dt.UTC)  # the node's clock, whatever the operator's says
        node = sorted(n["metadata"]["name"] for n in self.kube.objects("v1", "Node")
                      if CONTROL_PLANE in n["metadata"].get("labels", {}))[0]
        stamp = taken.strftime("%Y%m%dT%H%M%SZ")
        new = json.loads(json.dumps(record))
        new["data"] = {**data, "last-snapshot-at": _rfc3339(taken), "answered-request": asked,
                       "last-snapshot-key": f"prod/hourly/{stamp}-{node}.pbk",
                       "last-snapshot-node": node}
        stored = self._store(f"{stamp}-{node}", node, taken)
        if stored is not None:
            new["data"].update(stored)
        self.kube.registry.commit(CONFIGMAP, record, new, "etcd-backup")
        self.snapshots.append(time.time())
        self._asked = None

    def _store(self, ident: str, node: str, taken: dt.datetime) -> dict[str, str] | None:
        """The agent's pass (etcd_backup.take) on the store's dump: pack, seal, PUT."""
        import base64
        import tempfile
        from pathlib import Path

        from provisioner.agents import etcd_backup

        secret = self.kube.get("v1", "Secret", etcd_backup.SECRET[1], etcd_backup.SECRET[0])
        if self.pki is None or secret is None:
            return None
        values = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
        settings = json.loads(values["settings.json"])
        bucket = etcd_backup.Bucket(settings["endpoint"], settings["region"],
                                    settings["bucket"], values["access-key-id"].decode(),
                                    values["secret-access-key"].decode())
        with tempfile.TemporaryDirectory() as folder:
            work = Path(folder)
            db = work / "snapshot.db"
            db.write_bytes(self.kube.snapshot())
            pki = work / "pki"
            for name, pem in self.pki.items():
                (pki / name).parent.mkdir(parents=True, exist_ok=True)
                (pki / name).write_bytes(pem)
            at = taken.strftime(etcd_backup.STAMP)
            meta = {"format": etcd_backup.FORMAT, "environment": settings["environment"],
                    "id": ident, "taken_at": at, "node": node,
                    "snapshot_sha256": etcd_backup.file_sha256(db),
                    "snapshot_bytes": db.stat().st_size}
            etcd_backup.pack(db, meta, pki, work / "archive.tar.gz")
            etcd_backup.seal(work / "archive.tar.gz", work / "object.pbk",
                             values["recipient.pem"], {"id": ident, "environment":
                                                       settings["environment"], "taken_at": at},
                             work)
            key = f"{settings['prefix'].strip('/')}/hourly/{ident}.pbk"
            etcd_backup.s3(bucket, "PUT", etcd_backup.object_url(bucket, key),
                           work / "object.pbk")
            size = (work / "object.pbk").stat().st_size
        self.uploaded.append(key)
        return {"last-snapshot-key": key, "last-snapshot-bytes": str(size)}

    # ----------------------------------------------------------------- helpers

    def _annotate(self, name: str, values: dict[str, str]) -> None:
        with self.kube.store.lock:
            old = self.kube.registry.get(NODE, "", name)
            new = json.loads(json.dumps(old))
            new["metadata"].setdefault("annotations", {}).update(values)
            self.kube.registry.commit(NODE, old, new, "node-upgrade")

    def _kubelet(self, name: str, version: str) -> None:
        with self.kube.store.lock:
            old = self.kube.registry.get(NODE, "", name)
            new = json.loads(json.dumps(old))
            new["status"]["nodeInfo"]["kubeletVersion"] = f"v{version}"
            new["status"]["nodeInfo"]["kubeProxyVersion"] = f"v{version}"
            self.kube.registry.commit(NODE, old, new, "kubelet", subresource="status")

    def _mirror(self, node: str, component: str, version: str) -> None:
        """The kubelet's mirror of kubeadm's static pod: a changed manifest is a new pod."""
        name = f"{component}-{node}"
        if self.kube.get("v1", "Pod", name, "kube-system") is not None:
            self.kube.registry.delete(POD, "kube-system", name)
        self.kube.registry.create(POD, "kube-system", {
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"component": component, "tier": "control-plane"},
                         "annotations": {"kubernetes.io/config.mirror": "mirror",
                                         "kubernetes.io/config.source": "file"}},
            "spec": {"nodeName": node, "hostNetwork": True,
                     "priorityClassName": "system-node-critical",
                     "tolerations": [{"operator": "Exists", "effect": "NoExecute"}],
                     "containers": [{"name": component,
                                     "image": f"registry.k8s.io/{component}:v{version}"}]}},
            "kubelet")


def _parse(text: object) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def skew_violations(timeline: list[Change]) -> list[str]:
    """Replayed in order: each moment a kubelet is newer than some API server."""
    def key(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split("."))

    kubelets: dict[str, str] = {}
    apiservers: dict[str, str] = {}
    found = []
    for change in sorted(timeline, key=lambda c: c.at):
        if change.component == "kubelet":
            kubelets[change.node] = change.version
        elif change.component == "kube-apiserver":
            apiservers[change.node] = change.version
        if not kubelets or not apiservers:
            continue
        newest = max(kubelets.values(), key=key)
        oldest = min(apiservers.values(), key=key)
        if key(newest) > key(oldest):
            found.append(f"after {change}: a kubelet at {newest}, an API server at {oldest}")
    return found
