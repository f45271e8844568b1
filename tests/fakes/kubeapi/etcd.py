"""A stacked etcd cluster as kubeadm builds one, and etcdctl run in a pod against it.

Only what these upstream sources say the real components do:

* Membership. ``kubeadm init`` starts a one-member cluster named after the node; ``kubeadm
  join --control-plane`` calls ``AddMember(name, peerURL)``, which sends only the peer URL
  (``MemberAdd(ctx, []string{peerAddrs})``): the member is unnamed and has no client URL
  until its etcd starts with ``--name=<node>`` and publishes both
  (kubernetes/kubernetes cmd/kubeadm/app/util/etcd/etcd.go, ``AddMember``; peer port 2380,
  client port 2379: cmd/kubeadm/app/constants/constants.go).
* Adding. etcd v3.6.9's ``AddMember`` runs ``mayAddMember`` (server/etcdserver/server.go;
  strict reconfiguration checking is on by default and kubeadm leaves it on) before the
  change is proposed: a voting member is refused when the started members would not be a
  quorum of the new size, a one-member cluster growing to two excepted
  (``IsReadyToAddVotingMember``, api/membership/cluster.go: "re-configuration failed due
  to not enough started members"), and when the member serving the request has not been
  connected to every voting member within the last ``HealthInterval``
  (``isConnectedFullySince``, server/etcdserver/util.go: a peer that is down, or added and
  never started, is not): "etcdserver: unhealthy cluster" (server/etcdserver/errors/
  errors.go ``ErrUnhealthy``). So a replacement cannot join while its predecessor's
  member is still listed and no longer answers. A peer URL already listed is refused only
  when the change is applied, after those checks.
* Removal. etcd v3.6.9 refuses to remove a voting member when fewer than a majority of
  the remaining voting members are started (``IsReadyToRemoveVotingMember``,
  server/etcdserver/api/membership/cluster.go: "re-configuration failed due to not
  enough started members"), and refuses to remove an active member when the rest would
  not be an active quorum (``mayRemoveMember``, server/etcdserver/server.go: "unhealthy
  cluster"); a downed member is safe to remove. An unknown ID: "membership: ID not found";
  a peer URL already in use: "membership: peerURL exists" (api/membership/errors.go).
* etcdctl v3.6.9 (etcdctl/README.md, ctlv3/command/*.go): ``member list -w json`` prints
  ``{"header": {...}, "members": [{"ID": <uint64 number>, "name", "peerURLs",
  "clientURLs"}]}``; ``member remove <hex ID>`` parses the ID as hexadecimal
  (``strconv.ParseUint(args[0], 16, 64)``) and prints "Member <id> removed from cluster
  <cluster id>"; ``endpoint health [--cluster] -w json`` prints a list of
  ``{"endpoint", "health", "took", "error"}`` and exits 1 ("Error: unhealthy cluster")
  when any endpoint is unhealthy. Failures print "Error: <reason>" to standard error
  and exit non-zero (README "Exit codes"; cobrautl: ExitError = 1, ExitBadArgs = 128).
* The image. kubeadm for Kubernetes 1.34-1.36 runs ``registry.k8s.io/etcd:3.6.9-0``
  (SupportedEtcdVersion in cmd/kubeadm/app/constants/constants.go, as etcd's
  Documentation/contributor-guide/bump_etcd_version_k8s.md shows it), a distroless image
  with ``etcd`` and ``etcdctl`` and no shell: any other command fails to start.
  The kubelet names a static pod's mirror ``<name>-<node>``; kubeadm's is ``etcd``
  (cmd/kubeadm/app/phases/etcd/local.go) with the host's network.
* Client certificates. kubeadm's etcd listens with ``--client-cert-auth=true`` and no
  etcd authentication: any client certificate its etcd CA signed for client auth is
  allowed every request. Those are etcd/healthcheck-client, etcd/server, etcd/peer and
  apiserver-etcd-client (cmd/kubeadm/app/phases/certs/certs.go, KubeadmCert* usages).
* Mounts. etcdctl sees a host file only through a hostPath volume mounted at the same
  path (a file, or a directory holding it). The kubelet checks a hostPath's ``type``
  before the container starts: ``File`` needs a file there, ``Directory`` a directory,
  else "hostPath type check failed: <path> is not a file" / "is not a directory"
  (kubernetes/kubernetes pkg/volume/hostpath/host_path.go ``checkTypeInternal``, at commit
  9efa0b0228c0). The real pod then waits in ContainerCreating until its deadline; this
  fake ends it at once with that message (provision's node operations treat both alike:
  the command did not run).
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .registry import Registry

IMAGE = "registry.k8s.io/etcd:3.6.9-0"
PKI = "/etc/kubernetes/pki"
# The client certificates an etcd CA of kubeadm's signs with the client-auth usage.
CLIENT_PAIRS = {f"{PKI}/etcd/healthcheck-client", f"{PKI}/etcd/server", f"{PKI}/etcd/peer",
                f"{PKI}/apiserver-etcd-client"}
CA = f"{PKI}/etcd/ca.crt"
# What kubeadm leaves on a control-plane node under /etc/kubernetes/pki (certs.go).
FILES = {f"{pair}.{ext}" for pair in CLIENT_PAIRS for ext in ("crt", "key")} | {
    CA, f"{PKI}/etcd/ca.key", f"{PKI}/ca.crt", f"{PKI}/ca.key"}
DIRECTORIES = {PKI, f"{PKI}/etcd"}
POD = catalog.get("v1", "Pod")
NODE = catalog.get("v1", "Node")

EXIT_ERROR = 1
EXIT_BAD_ARGS = 128
EXIT_START_ERROR = 128  # the runtime could not start the container (no such executable)


class EtcdError(Exception):
    """An error etcd answers, with its text."""


@dataclass
class Member:
    """One member as MemberList returns it, plus whether it answers."""

    id: int
    name: str
    peer_urls: list[str]
    client_urls: list[str]
    healthy: bool = True
    node: str = ""  # the node whose etcd this is (empty until it starts)
    learner: bool = False  # set by tests: listed with "isLearner": true

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"ID": self.id, "peerURLs": list(self.peer_urls)}
        if self.learner:
            out["isLearner"] = True
        if self.name:
            out["name"] = self.name
        if self.client_urls:
            out["clientURLs"] = list(self.client_urls)
        return out


@dataclass
class EtcdCluster:
    """The membership of one stacked etcd cluster."""

    cluster_id: int = 0
    members: dict[int, Member] = field(default_factory=dict)
    removed: list[Member] = field(default_factory=list)
    lock: threading.RLock = field(default_factory=threading.RLock)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def _new_id(self) -> int:
        # Large, like etcd's (a hash of peer URLs and time): exercises 64-bit IDs.
        return (0x8211F1D0F64F3269 * next(self._ids)) % (1 << 64) or 1

    @property
    def exists(self) -> bool:
        return self.cluster_id != 0

    def init(self, node: str, ip: str) -> Member:
        """``kubeadm init``: a new cluster of one started member."""
        with self.lock:
            if self.exists:
                raise EtcdError("a cluster already exists")
            self.cluster_id = self._new_id() ^ 0x5A5A5A5A5A5A5A5A
            member = Member(self._new_id(), "", [f"https://{ip}:2380"], [])
            self.members[member.id] = member
            self.start(member.id, node, ip)
            return member

    def add(self, peer_url: str) -> Member:
        """MemberAdd with a peer URL only: an unstarted, unnamed member."""
        with self.lock:
            self._need_quorum()
            self._may_add()
            if any(peer_url in m.peer_urls for m in self.members.values()):
                raise EtcdError("membership: peerURL exists")
            member = Member(self._new_id(), "", [peer_url], [])
            self.members[member.id] = member
            return member

    def _may_add(self) -> None:
        """``mayAddMember`` for a voting member (no learners here)."""
        voting = list(self.members.values())
        size = len(voting) + 1
        started = sum(1 for m in voting if m.name)
        if not (started == 1 and size == 2) and started < size // 2 + 1:
            raise EtcdError("etcdserver: re-configuration failed due to not enough started "
                            "members")
        if any(not (m.name and m.healthy) for m in voting):  # not connected to every peer
            raise EtcdError("etcdserver: unhealthy cluster")

    def start(self, member_id: int, node: str, ip: str) -> None:
        """The member's etcd starts and publishes its name and client URL."""
        with self.lock:
            member = self.members[member_id]
            member.name, member.node = node, node
            member.client_urls = [f"https://{ip}:2379"]
            member.healthy = True

    def join(self, node: str, ip: str) -> Member:
        """``kubeadm join --control-plane``: AddMember, then the new etcd starts."""
        with self.lock:
            member = self.add(f"https://{ip}:2380")
            self.start(member.id, node, ip)
            return member

    def set_healthy(self, name: str, healthy: bool) -> None:
        """A member's etcd stops answering (its droplet is gone) or answers again."""
        with self.lock:
            for member in self.members.values():
                if member.name == name:
                    member.healthy = healthy

    def stop(self, member_id: int) -> None:
        """The member's etcd stops answering (its droplet is gone); a removed one: nothing."""
        with self.lock:
            if member_id in self.members:
                self.members[member_id].healthy = False

    def names(self) -> list[str]:
        with self.lock:
            return sorted(m.name for m in self.members.values())

    def _quorum(self) -> bool:
        healthy = sum(1 for m in self.members.values() if m.healthy and m.name)
        return healthy >= len(self.members) // 2 + 1

    def _need_quorum(self) -> None:
        if not self._quorum():
            raise EtcdError("context deadline exceeded")

    def remove(self, member_id: int) -> None:
        """MemberRemove, with etcd's strict reconfiguration checks."""
        with self.lock:
            self._need_quorum()
            if member_id not in self.members:
                raise EtcdError("membership: ID not found")
            others = [m for m in self.members.values() if m.id != member_id]
            started = sum(1 for m in others if m.name)
            if started < len(others) // 2 + 1:
                raise EtcdError("etcdserver: re-configuration failed due to not enough "
                                "started members")
            target = self.members[member_id]
            if target.healthy and target.name:
                active = sum(1 for m in self.members.values() if m.healthy and m.name)
                if active - 1 < 1 + (len(self.members) - 1) // 2:
                    raise EtcdError("etcdserver: unhealthy cluster")
            self.removed.append(self.members.pop(member_id))

    def local(self, node: str) -> Member | None:
        """The member whose etcd runs on ``node``."""
        with self.lock:
            return next((m for m in self.members.values() if m.node == node), None)

    # ------------------------------------------------------------------ etcdctl

    def etcdctl(self, node: str, args: list[str], mounted: set[str]) -> tuple[int, str]:
        """Run ``etcdctl args`` on ``node``'s host network: (exit code, output)."""
        flags: dict[str, str] = {}
        words: list[str] = []
        it = iter(args)
        for arg in it:
            if arg.startswith("--") or arg == "-w":
                key, _, value = arg.lstrip("-").partition("=")
                key = "write-out" if key == "w" else key
                if key == "cluster":
                    flags[key] = "true"
                    continue
                if not value:
                    value = next(it, "")
                flags[key] = value
            else:
                words.append(arg)
        known = {"endpoints", "cacert", "cert", "key", "write-out", "cluster", "dial-timeout",
                 "command-timeout"}
        unknown = sorted(set(flags) - known)
        if unknown:
            return EXIT_ERROR, f"Error: unknown flag: --{unknown[0]}\n"
        problem = self._credentials(flags, mounted)
        if problem:
            return EXIT_ERROR, f"Error: {problem}\n"
        endpoints = flags.get("endpoints", "127.0.0.1:2379").split(",")
        if endpoints != ["https://127.0.0.1:2379"]:
            return EXIT_ERROR, "Error: context deadline exceeded\n"
        json_out = flags.get("write-out", "simple") == "json"
        with self.lock:
            here = self.local(node)
            if here is None or not here.healthy:
                return EXIT_ERROR, "Error: context deadline exceeded\n"
            try:
                return self._command(words, flags, json_out, here)
            except EtcdError as e:
                return EXIT_ERROR, f"Error: {e}\n"

    @staticmethod
    def _credentials(flags: Mapping[str, str], mounted: set[str]) -> str:
        """Why the TLS client cannot connect, or ""."""
        cacert, cert, key = flags.get("cacert"), flags.get("cert"), flags.get("key")
        if not (cacert and cert and key):
            return "context deadline exceeded"  # etcd requires a client certificate
        for path in (cacert, cert, key):
            if not any(path == d or path.startswith(d.rstrip("/") + "/") for d in mounted):
                return f"open {path}: no such file or directory"
        if cacert != CA or cert.removesuffix(".crt") != key.removesuffix(".key") or \
                cert.removesuffix(".crt") not in CLIENT_PAIRS:
            return "context deadline exceeded"  # a handshake the etcd CA does not accept
        return ""

    def _header(self, here: Member) -> dict[str, Any]:
        return {"cluster_id": self.cluster_id, "member_id": here.id, "raft_term": 2}

    def _command(self, words: list[str], flags: Mapping[str, str], json_out: bool,
                 here: Member) -> tuple[int, str]:
        if words == ["member", "list"]:
            self._need_quorum()
            members = sorted(self.members.values(), key=lambda m: m.id)
            if json_out:
                body = {"header": self._header(here),
                        "members": [m.as_json() for m in members]}
                return 0, json.dumps(body, separators=(",", ":")) + "\n"
            return 0, "".join(
                f"{m.id:x}, {'started' if m.name else 'unstarted'}, {m.name}, "
                f"{','.join(m.peer_urls)}, {','.join(m.client_urls)}\n" for m in members)
        if words[:2] == ["member", "remove"]:
            if len(words) != 3:
                return EXIT_BAD_ARGS, "Error: member ID is not provided\n"
            try:
                member_id = int(words[2], 16)
            except ValueError:
                return EXIT_BAD_ARGS, (f"Error: bad member ID arg (strconv.ParseUint: parsing "
                                       f"{words[2]!r}: invalid syntax), expecting ID in Hex\n")
            self.remove(member_id)
            return 0, f"Member {member_id:16x} removed from cluster {self.cluster_id:16x}\n"
        if words == ["endpoint", "health"]:
            if flags.get("cluster") == "true":
                self._need_quorum()
                targets = [(url, m) for m in self.members.values() for url in m.client_urls]
            else:
                targets = [("https://127.0.0.1:2379", here)]
            results = []
            for url, member in targets:
                entry: dict[str, Any] = {"endpoint": url, "health": member.healthy,
                                         "took": "1.2ms"}
                if not member.healthy:
                    entry["error"] = "context deadline exceeded"
                results.append(entry)
            if json_out:
                out = json.dumps(results, separators=(",", ":")) + "\n"
            else:
                out = "".join(f"{r['endpoint']} is healthy: successfully committed proposal: "
                              f"took = {r['took']}\n" if r["health"] else
                              f"{r['endpoint']} is unhealthy: failed to commit proposal: "
                              f"{r['error']}\n" for r in results)
            if any(not r["health"] for r in results):
                return EXIT_ERROR, out + "Error: unhealthy cluster\n"
            return 0, out
        return EXIT_ERROR, f"Error: unknown command {' '.join(words)!r} for \"etcdctl\"\n"


# ------------------------------------------------------------------------------ pods


def node_ip(registry: Registry, node: str) -> str:
    obj = registry.store.get(NODE, "", node) or {}
    for address in obj.get("status", {}).get("addresses", []):
        if address.get("type") == "InternalIP":
            return str(address["address"])
    raise KeyError(f"node {node} has no InternalIP")


def mirror_pod(registry: Registry, node: str, ip: str, image: str = IMAGE) -> None:
    """The kubelet's mirror of kubeadm's etcd static pod on ``node``."""
    name = f"etcd-{node}"
    if registry.store.get(POD, "kube-system", name) is not None:
        return
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {
        "name": name, "namespace": "kube-system",
        "labels": {"component": "etcd", "tier": "control-plane"},
        "annotations": {"kubeadm.kubernetes.io/etcd.advertise-client-urls":
                        f"https://{ip}:2379", "kubernetes.io/config.mirror": "mirror",
                        "kubernetes.io/config.source": "file"}},
        "spec": {"nodeName": node, "hostNetwork": True, "priorityClassName":
                 "system-node-critical", "tolerations": [{"operator": "Exists",
                                                          "effect": "NoExecute"}],
                 "containers": [{"name": "etcd", "image": image, "command": [
                     "etcd", f"--name={node}", f"--advertise-client-urls=https://{ip}:2379",
                     "--client-cert-auth=true", f"--trusted-ca-file={CA}"]}]}}
    registry.create(POD, "kube-system", pod, "kubelet")


def run_pod(cluster: EtcdCluster, pod: Mapping[str, Any]) -> tuple[int, str] | None:
    """What the container of a pod started from the etcd image does, or None for other pods.

    The etcd image has no shell: only ``etcdctl`` (and ``etcd``) can be started.
    """
    spec = pod.get("spec", {})
    containers = spec.get("containers", [])
    if len(containers) != 1 or not str(containers[0].get("image", "")).startswith(
            "registry.k8s.io/etcd:"):
        return None
    if pod.get("metadata", {}).get("annotations", {}).get("kubernetes.io/config.mirror"):
        return None  # etcd itself, not a command
    container = containers[0]
    argv = [*container.get("command", []), *container.get("args", [])]
    if not argv or argv[0] not in ("etcdctl", "/usr/local/bin/etcdctl"):
        first = argv[0] if argv else "etcd"
        return EXIT_START_ERROR, (f'exec: "{first}": executable file not found in $PATH\n')
    if spec.get("restartPolicy") != "Never":
        return None  # a command that would be restarted: not something this fake runs
    host_paths = {v.get("name"): v["hostPath"] for v in spec.get("volumes", [])
                  if v.get("hostPath")}
    for volume in host_paths.values():
        path, kind = str(volume.get("path", "")), volume.get("type") or ""
        if (kind == "File" and path not in FILES) or \
                (kind == "Directory" and path not in DIRECTORIES):
            return EXIT_START_ERROR, (f"hostPath type check failed: {path} is not a "
                                      f"{'file' if kind == 'File' else 'directory'}\n")
    mounted = {m["mountPath"] for m in container.get("volumeMounts", [])
               if host_paths.get(m.get("name"), {}).get("path") == m.get("mountPath")}
    if not spec.get("hostNetwork"):
        return EXIT_ERROR, "Error: context deadline exceeded\n"  # 127.0.0.1 is the pod's own
    return cluster.etcdctl(str(spec.get("nodeName", "")), argv[1:], mounted)

