"""The control plane's etcd members: list them, and remove those of droplets that are gone.

etcd is reached as kubeadm leaves it: on each control-plane node at https://127.0.0.1:2379,
with client certificates signed by the etcd CA in /etc/kubernetes/pki/etcd. provision runs
etcdctl there through nodeops (a pod on the node's network), with the image of that node's
own etcd static pod (mirror pod ``etcd-<node>``): the etcdctl that matches the server, from
an image the node already has. That image has no shell, so the command is etcdctl itself.

The client certificate is kubeadm's ``etcd/healthcheck-client`` (CN
kube-etcd-healthcheck-client, client-auth usage, signed by the etcd CA:
kubernetes/kubernetes cmd/kubeadm/app/phases/certs/certlist.go at commit 3510e45d9707,
``KubeadmCertEtcdHealthcheck``; its files etcd/healthcheck-client.{crt,key} beside
etcd/ca.crt: cmd/kubeadm/app/constants/constants.go at commit 3301161c36ac).
kubeadm runs etcd with ``--client-cert-auth`` and no etcd authentication, so that
certificate may do everything a client may. The pod sees exactly three files, each a
read-only hostPath of type File: the etcd CA's certificate and that client pair. The rest
of /etc/kubernetes/pki/etcd (the etcd CA's key, the server and peer keys) stays out of it,
as does the API server's client certificate one level up beside the cluster CA's key.

etcdctl v3.6 (etcd's etcdctl/README.md at v3.6.9, the version kubeadm pins for
Kubernetes 1.34-1.36): ``member list -w json`` gives IDs as unsigned 64-bit numbers;
``member remove`` takes the ID in hexadecimal; ``endpoint health --cluster -w json`` checks
every member's client URL and exits 1 when one is unhealthy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from provisioner.cluster import nodeops
from provisioner.errors import ProvisionError
from provisioner.kube import Kube, KubeError

PKI = "/etc/kubernetes/pki/etcd"
ETCDCTL = ("etcdctl", "--endpoints=https://127.0.0.1:2379", f"--cacert={PKI}/ca.crt",
           f"--cert={PKI}/healthcheck-client.crt", f"--key={PKI}/healthcheck-client.key",
           "--dial-timeout=5s", "--command-timeout=20s")
MOUNTS = tuple(nodeops.HostPath(f"etcd-{name.replace('.', '-')}", f"{PKI}/{name}", "File")
               for name in ("ca.crt", "healthcheck-client.crt", "healthcheck-client.key"))
DEADLINE = 120  # seconds a pod may take, image pull included (the node has the image)
UNSTARTED = "has not started"


class EtcdError(ProvisionError):
    """etcd could not be read or changed safely."""


@dataclass(frozen=True)
class Member:
    """One etcd member as ``member list`` reports it."""

    id: int
    name: str  # the node name kubeadm gave it; empty while the member has not started
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    learner: bool = False  # a non-voting member (kubeadm's learner mode joins as one)

    @property
    def hex_id(self) -> str:
        """The form ``member remove`` takes."""
        return f"{self.id:x}"

    @property
    def label(self) -> str:
        """How messages name it."""
        return f"{self.name or 'unstarted member'} ({self.hex_id})"


@dataclass(frozen=True)
class Runner:
    """Where etcdctl runs: a Ready control-plane node and its etcd's image."""

    node: str
    image: str


def members(api: Any) -> list[Member]:
    """Every member of the cluster's etcd, as a healthy control-plane node sees them."""
    return _members(api, _runners(api, set()))[1]


def health(api: Any) -> list[tuple[Member, bool]]:
    """Every member and whether it answers, as ``endpoint health --cluster`` run on a
    Ready control-plane node sees them. A member that has not started has no client URL
    and never answers. Raises EtcdError when no node can list the members."""
    runner, current = _members(api, _runners(api, set()))
    answering = _answering(api, runner)
    return [(m, any(url in answering for url in m.client_urls)) for m in current]


def remove_stale(api: Any, wanted: set[str], say: Callable[[str], None],
                 wanted_ips: set[str] | None = None) -> list[str]:
    """Remove the members that belong to no current control-plane droplet and no longer answer.

    ``wanted`` names the control-plane droplets that stay; ``wanted_ips`` (when known, from
    Terraform's outputs) are the private IPs of the current control-plane droplets, the host
    of each one's etcd peer URL (kubeadm advertises the node's address on port 2380:
    cmd/kubeadm/app/util/etcd/etcd.go, ``AddMember``). A name alone does not identify a
    member: a control-plane droplet replaced while its member still answered comes back
    under the same name, and the old member, dead, carries a kept name. So a member that
    does not answer is stale when its name is not wanted, or another member of that name
    answers, or its peer URL host is no current control-plane droplet's private IP.

    A member that answers is never removed (its node is alive: removing it is a decision
    for a person), nor one whose removal etcd refuses, nor the last one. An unstarted member
    (no name and no client URL: ``kubeadm join`` has added it and its etcd has not started,
    etcdctl v3.6.9 ``member list`` shows it "unstarted") never answers health checks; it is
    removed only when its peer URL host is known to be no current droplet's, never while it
    may be a join in progress. The Node of a removed member goes too when its name is not
    wanted: kubeadm join refuses a Node of the same name that is still Ready
    (cmd/kubeadm/app/cmd/phases/join/kubelet.go, ``runKubeletStartJoinPhase``); a wanted
    name's Node is its replacement's and stays. Returns the names (or hex IDs) of the
    members removed.
    """
    runner, current = _members(api, _runners(api, wanted))
    names = [m.name for m in current]
    if all(m.name in wanted and names.count(m.name) == 1 and
           (wanted_ips is None or _peer_host(m) in wanted_ips) for m in current):
        return []  # one started member per kept droplet: no need to ask which answer
    answering = _answering(api, runner)

    def answers(member: Member) -> bool:
        return any(url in answering for url in member.client_urls)

    live = [m for m in current if m.name and answers(m)]
    removable = []
    for member in current:
        successor = any(m.name == member.name and m.id != member.id for m in live)
        why = _stale_reason(member, wanted, wanted_ips, successor)
        if why is None:
            continue
        if answers(member):
            say(f"etcd member {member.label}: {why}, but it answers; left in place (remove "
                "it by hand once its node is gone)")
        elif why == UNSTARTED:
            say(f"etcd member {member.label} ({', '.join(member.peer_urls)}) has not started; "
                "left in place: it may be a control-plane join in progress (if its droplet "
                f"is gone, remove it by hand: etcdctl member remove {member.hex_id})")
        else:
            removable.append((member, why))
    going = {m.id for m, _ in removable}
    if removable and all(m.id in going for m in current if not m.learner):
        raise EtcdError("every voting etcd member would be removed; refusing (the "
                        "cluster's data lives in them)")
    removed = []
    for member, why in removable:
        result = _etcdctl(api, runner, "member", "remove", member.hex_id)
        if result.code != 0:
            raise EtcdError(f"etcd refused to remove member {member.label}: "
                            f"{_last_error(result.output)}; nothing else was changed")
        say(f"removed etcd member {member.label}: it does not answer and {why}")
        removed.append(member.name or member.hex_id)
        if member.name and member.name not in wanted:
            _delete_node(api, member.name, say)
    return removed


def _stale_reason(member: Member, wanted: set[str], wanted_ips: set[str] | None,
                  successor: bool) -> str | None:
    """Why ``member`` belongs to no current control-plane droplet, or None if it may.

    ``successor``: another member of the same name answers."""
    host = _peer_host(member)
    if not member.name:
        if wanted_ips is not None and host not in wanted_ips:
            return (f"its peer URL host {host or '(none)'} is no current control-plane "
                    "droplet's private IP")
        return UNSTARTED  # kept: its peer host is a current droplet's, or not known
    if member.name not in wanted:
        return "its control-plane droplet no longer exists"
    if successor:
        return (f"another member named {member.name} answers (its droplet was replaced and "
                "the new one joined under the same name)")
    if wanted_ips is not None and host not in wanted_ips:
        return (f"its peer URL host {host or '(none)'} is not the private IP of the current "
                f"{member.name} droplet")
    return None


def _peer_host(member: Member) -> str:
    """The host of the member's first peer URL ("" without one)."""
    for url in member.peer_urls:
        host = urlsplit(url).hostname
        if host:
            return host
    return ""


def remove_leaving(api: Any, name: str, going: str, say: Callable[[str], None]) -> str | None:
    """Remove the member of control-plane droplet ``name``, which the apply is about to
    replace or delete (``going``: "replaced" or "deleted"), and its Node.

    Its etcd may well still answer: the removal is deliberate, as ``kubeadm reset`` removes
    its own node's member before the node goes (kubernetes/kubernetes
    cmd/kubeadm/app/cmd/phases/reset/removeetcdmember.go, ``runRemoveETCDMemberPhase`` ->
    ``etcdphase.RemoveStackedEtcdMemberFromCluster``). Left in place, it becomes a dead voter
    the moment Terraform destroys its droplet, and etcd then refuses the replacement's
    AddMember (v3.6.9 server/etcdserver/server.go ``mayAddMember``: the serving member is
    not connected to every voter, "etcdserver: unhealthy cluster").

    Every other member must answer first: removing a healthy member while another is down
    leaves the cluster one failure from losing quorum, so that is refused here, and etcd's
    own answer (``mayRemoveMember``) is the last word. etcdctl runs on another node, whose
    etcd stays. Returns the name removed, or None when ``name`` has no member.
    """
    runners = [r for r in _runners(api, set()) if r.node != name]
    if not runners:
        raise EtcdError(f"no other Ready control-plane node runs etcd; {name}'s member "
                        "cannot be removed safely; nothing was changed")
    runner, current = _members(api, runners)
    leaving = [m for m in current if m.name == name]
    if not leaving:
        return None
    # Learners do not vote: etcd counts quorum among VotingMembers() alone
    # (server/etcdserver/api/membership/cluster.go at commit c5eb78e2e639,
    # IsReadyToRemoveVotingMember), and so does this.
    voters = [m for m in current if not m.learner]
    others = [m for m in voters if m.name != name]
    if not others:
        raise EtcdError(f"{name} holds the only voting etcd member (the cluster's data); "
                        "refusing to remove it")
    answering = _answering(api, runner)
    silent = [m for m in others if not any(url in answering for url in m.client_urls)]
    if silent:
        raise EtcdError(
            f"etcd member(s) {', '.join(m.label for m in silent)} do not answer; with "
            f"{name}'s member gone too, {len(others) - len(silent)} of {len(voters)} voting "
            "members would be left, one failure from losing quorum. Nothing was changed: "
            "bring them back (or replace a lost droplet with `provision up` first), then "
            f"replace {name}")
    for member in leaving:
        result = _etcdctl(api, runner, "member", "remove", member.hex_id)
        if result.code != 0:
            raise EtcdError(f"etcd refused to remove member {member.label}: "
                            f"{_last_error(result.output)}; nothing else was changed")
        say(f"removed etcd member {member.label}: its droplet is about to be {going}")
    _delete_node(api, name, say)
    return name


# ---------------------------------------------------------------------------- helpers


def _runners(api: Any, prefer: set[str]) -> list[Runner]:
    """Ready control-plane nodes with their etcd image, the kept ones first."""
    kube = Kube(api)
    try:
        nodes = nodeops.control_plane_nodes(api)
        pods = kube.request("GET", f"/api/v1/namespaces/{nodeops.NAMESPACE}/pods",
                            [("labelSelector", "component=etcd")],
                            verb="list pods in kube-system").get("items", [])
    except KubeError as e:
        raise EtcdError(f"cannot find a control-plane node to reach etcd from: {e}") from e
    by_name = {str(p["metadata"]["name"]): p for p in pods}
    runners = []
    for node in nodes:
        name = str(node["metadata"]["name"])
        pod = by_name.get(f"etcd-{name}")
        image = _image(pod) if pod is not None and is_mirror_of(pod, name) else ""
        if image:
            runners.append(Runner(name, image))
    if not runners:
        raise EtcdError("no Ready control-plane node runs an etcd static pod (the kubelet's "
                        "mirror pod etcd-<node> in kube-system); cannot reach etcd")
    return sorted(runners, key=lambda r: (r.node not in prefer, r.node))


def is_mirror_of(pod: dict[str, Any], node: str) -> bool:
    """Whether ``pod`` is the kubelet's mirror of kubeadm's etcd static pod on ``node``.

    Its image is run on a control-plane node with the etcd client key mounted, so it must
    come from the pod the kubelet created for the static pod, not from any pod that happens
    to be named ``etcd-<node>``: the kubelet marks a mirror pod with the annotation
    ``kubernetes.io/config.mirror`` (kubernetes/kubernetes pkg/kubelet/types/pod_update.go,
    ``ConfigMirrorAnnotationKey``) and binds it to its own node; kubeadm labels its etcd
    static pod component=etcd, tier=control-plane (cmd/kubeadm/app/util/staticpod/utils.go,
    ``ComponentPod``).
    """
    metadata = pod.get("metadata", {})
    labels = metadata.get("labels") or {}
    return ("kubernetes.io/config.mirror" in (metadata.get("annotations") or {})
            and pod.get("spec", {}).get("nodeName") == node
            and labels.get("component") == "etcd" and labels.get("tier") == "control-plane")


def _image(pod: dict[str, Any]) -> str:
    for container in pod.get("spec", {}).get("containers", []):
        if container.get("name") == "etcd":
            return str(container.get("image") or "")
    return ""


def _etcdctl(api: Any, runner: Runner, *args: str) -> nodeops.Run:
    return nodeops.run(api, runner.node, runner.image, [*ETCDCTL, *args], purpose="etcdctl",
                       mounts=MOUNTS, deadline=DEADLINE)


def _members(api: Any, runners: list[Runner]) -> tuple[Runner, list[Member]]:
    """The member list from the first node whose etcd answers with a quorum behind it."""
    failures = []
    for runner in runners:
        result = _etcdctl(api, runner, "member", "list", "-w", "json")
        document = _json(result.output, dict) if result.code == 0 else None
        if document is not None and "members" in document:
            return runner, [_member(m) for m in document["members"]]
        failures.append(f"{runner.node}: {_last_error(result.output)}")
    raise EtcdError("no control-plane node could list the etcd members (" +
                    "; ".join(failures) + "); etcd may have lost quorum")


def _member(raw: object) -> Member:
    """One entry of ``member list -w json``; an entry without an ID is an EtcdError."""
    try:
        if not isinstance(raw, dict):
            raise TypeError(type(raw).__name__)
        return Member(int(raw["ID"]), str(raw.get("name") or ""),
                      tuple(str(u) for u in raw.get("peerURLs") or ()),
                      tuple(str(u) for u in raw.get("clientURLs") or ()),
                      bool(raw.get("isLearner")))
    except (KeyError, TypeError, ValueError) as e:
        raise EtcdError(f"etcdctl member list gave a member provision cannot read "
                        f"({type(e).__name__}: {e}): {str(raw)[:200]}; nothing was "
                        "changed") from e


def _answering(api: Any, runner: Runner) -> set[str]:
    """The client URLs whose etcd answers, as ``endpoint health --cluster`` sees them.

    It exits 1 when any endpoint is unhealthy, which is the case this looks for: the
    answer is read from the JSON it printed either way.
    """
    result = _etcdctl(api, runner, "endpoint", "health", "--cluster", "-w", "json")
    health = _json(result.output, list)
    if health is None:
        raise EtcdError(f"cannot tell which etcd members answer (from {runner.node}: "
                        f"{_last_error(result.output)}); nothing was removed")
    return {str(h.get("endpoint")) for h in health if isinstance(h, dict) and h.get("health")}


def _json(output: str, kind: type[dict[str, Any]] | type[list[Any]]) -> Any:
    """The first line of ``output`` that is JSON of ``kind`` (etcdctl's own log lines are
    JSON objects too, on standard error, which the pod's log interleaves)."""
    for line in output.splitlines():
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, list) and kind is list:
            return value
        if isinstance(value, dict) and kind is dict and "members" in value:
            return value
    return None


def _last_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("Error: ") for line in lines if line.startswith("Error:")]
    return (errors or lines or ["no output"])[-1][:300]


def _delete_node(api: Any, name: str, say: Callable[[str], None]) -> None:
    try:
        Kube(api).request("DELETE", f"/api/v1/nodes/{name}", verb="delete nodes")
    except KubeError as e:
        if e.status == 404:
            return
        raise EtcdError(f"removed the etcd member of {name} but cannot delete its Node: {e}; "
                        f"delete it (kubectl delete node {name}) before the replacement "
                        "joins") from e
    say(f"deleted Node {name}, so its replacement can join under the same name")


def silent(api: Any) -> list[str]:
    """The members (labels) whose etcd does not answer ``endpoint health --cluster``; empty
    when every member is healthy. An upgrade checks it after each control-plane node."""
    runner, current = _members(api, _runners(api, set()))
    answering = _answering(api, runner)
    return [m.label for m in current
            if not any(url in answering for url in m.client_urls)]
