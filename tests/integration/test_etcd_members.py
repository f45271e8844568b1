"""The etcd members of control-plane droplets that are gone are removed before a new one joins.

provision runs etcdctl on a Ready control-plane node through the fake API server (a pod
pinned with nodeName, host network, the etcd mirror pod's image, the etcd CA certificate
and the healthcheck client pair mounted read-only as hostPath files), reads its log and
deletes the pod; the fake kubelet runs etcdctl against the fake's etcd membership
(tests/fakes/kubeapi/etcd.py, which cites etcd v3.6.9's etcdctl README and server checks
and kubeadm's AddMember). The Node of a removed member goes too: kubeadm join refuses a
Node of the same name that is still Ready
(kubernetes/kubernetes cmd/kubeadm/app/cmd/phases/join/kubelet.go).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cluster import etcd_members, nodeops
from provisioner.kube import Kube, client_for
from tests.fakes.kubeapi.server import FakeKubeAPI

pytestmark = pytest.mark.integration

CPS = ["prod-cp-1", "prod-cp-2", "prod-cp-3"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[FakeKubeAPI, Any]]:
    """Three control-plane nodes (cp-1 ran kubeadm init, the others joined) and a worker."""
    with FakeKubeAPI(step_delay=0.01) as kube:
        for i, name in enumerate(CPS):
            kube.add_node(name, control_plane=True, address=f"10.110.0.{i + 2}")
            (kube.etcd_init if i == 0 else kube.etcd_join)(name)
        kube.add_node("prod-web-1-abcde", address="10.110.0.9")
        yield kube, client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))


def pods_left(kube: FakeKubeAPI) -> list[str]:
    return [p["metadata"]["name"] for p in kube.objects("v1", "Pod", "kube-system")
            if p["metadata"]["name"].startswith("provision-")]


def test_members_lists_what_etcd_holds(cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    members = etcd_members.members(api)
    assert sorted(m.name for m in members) == CPS
    assert {m.id for m in members} == set(kube.etcd.members)
    assert all(m.client_urls and m.peer_urls for m in members)
    assert pods_left(kube) == [], "the etcdctl pod is deleted afterwards"


def test_the_etcdctl_pod_sees_only_the_ca_certificate_and_its_client_pair(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    """Three read-only hostPath files (type File: kubernetes/kubernetes
    pkg/volume/hostpath/host_path.go ``checkTypeInternal`` at commit 9efa0b0228c0 requires
    a file there), never the etcd CA's key or the server and peer keys beside them."""
    kube, api = cluster
    etcd_members.members(api)
    created = [r.json() for r in kube.requests("POST", "/api/v1/namespaces/kube-system/pods")
               if r.json()["metadata"].get("generateName") == "provision-etcdctl-"]
    assert created
    pki = "/etc/kubernetes/pki/etcd"
    wanted = {f"{pki}/ca.crt", f"{pki}/healthcheck-client.crt", f"{pki}/healthcheck-client.key"}
    for pod in created:
        spec = pod["spec"]
        volumes = {v["name"]: v for v in spec["volumes"]}
        assert {v["hostPath"]["path"] for v in volumes.values()} == wanted
        assert {v["hostPath"]["type"] for v in volumes.values()} == {"File"}
        mounts = spec["containers"][0]["volumeMounts"]
        assert {(m["mountPath"], m["readOnly"]) for m in mounts} == {(p, True) for p in wanted}
        assert all(volumes[m["name"]]["hostPath"]["path"] == m["mountPath"] for m in mounts)


def test_a_hostpath_of_the_wrong_type_does_not_start(cluster: tuple[FakeKubeAPI, Any]) -> None:
    """The kubelet refuses a File hostPath that is a directory (host_path.go, as above)."""
    kube, api = cluster
    pki = "/etc/kubernetes/pki/etcd"
    run = nodeops.run(api, "prod-cp-2", "registry.k8s.io/etcd:3.6.9-0",
                      [*etcd_members.ETCDCTL, "member", "list"], purpose="test",
                      mounts=[nodeops.HostPath("pki", pki, "File")], deadline=60)
    assert run.code != 0 and f"{pki} is not a file" in run.output
    assert pods_left(kube) == []


def test_the_member_of_a_gone_droplet_is_removed_with_its_node(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    gone = kube.etcd.local("prod-cp-1")
    assert gone is not None
    kube.etcd.set_healthy("prod-cp-1", False)  # its droplet was deleted
    said: list[str] = []
    removed = etcd_members.remove_stale(api, {"prod-cp-2", "prod-cp-3"}, said.append)
    assert removed == ["prod-cp-1"]
    assert kube.etcd.names() == ["prod-cp-2", "prod-cp-3"]
    assert [m.id for m in kube.etcd.removed] == [gone.id]
    nodes = {n["metadata"]["name"] for n in kube.objects("v1", "Node")}
    assert nodes == {"prod-cp-2", "prod-cp-3", "prod-web-1-abcde"}
    assert any(f"removed etcd member prod-cp-1 ({gone.id:x})" in line for line in said), said
    assert pods_left(kube) == []
    # etcdctl ran on a kept node, as a pod built as the design says
    created = [r.json() for r in kube.requests("POST", "/api/v1/namespaces/kube-system/pods")]
    assert created and all(p["spec"]["nodeName"] in {"prod-cp-2", "prod-cp-3"}
                           for p in created)
    spec = created[0]["spec"]
    assert spec["hostNetwork"] and spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["image"] == "registry.k8s.io/etcd:3.6.9-0"
    assert spec["containers"][0]["command"][0] == "etcdctl"
    assert all(m["readOnly"] is True for m in spec["containers"][0]["volumeMounts"])


def test_a_member_that_answers_is_never_removed(cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    said: list[str] = []
    # cp-1 is not among the droplets kept (e.g. about to be replaced) but its etcd answers
    assert etcd_members.remove_stale(api, {"prod-cp-2", "prod-cp-3"}, said.append) == []
    assert kube.etcd.names() == CPS
    assert kube.get("v1", "Node", "prod-cp-1") is not None
    assert any("prod-cp-1" in line and "answers" in line for line in said), said


def test_nothing_is_touched_when_every_member_is_kept(cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    kube.etcd.set_healthy("prod-cp-3", False)
    assert etcd_members.remove_stale(api, set(CPS), lambda line: None) == []
    assert kube.etcd.names() == CPS


def test_a_cluster_without_quorum_is_not_changed(cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    kube.etcd.set_healthy("prod-cp-1", False)
    kube.etcd.set_healthy("prod-cp-2", False)
    with pytest.raises(etcd_members.EtcdError, match="quorum"):
        etcd_members.remove_stale(api, {"prod-cp-3"}, lambda line: None)
    assert kube.etcd.names() == CPS
    assert len(kube.objects("v1", "Node")) == 4
    assert pods_left(kube) == []


def test_the_etcd_image_runs_only_etcdctl(cluster: tuple[FakeKubeAPI, Any]) -> None:
    """The image has no shell: a command other than etcdctl fails the pod."""
    kube, api = cluster
    run = nodeops.run(api, "prod-cp-2", "registry.k8s.io/etcd:3.6.9-0",
                      ["sh", "-c", "etcdctl member list"], purpose="test",
                      mounts=etcd_members.MOUNTS, deadline=60)
    assert run.code != 0 and "executable file not found" in run.output
    unknown = nodeops.run(api, "prod-cp-2", "registry.k8s.io/etcd:3.6.9-0",
                          [*etcd_members.ETCDCTL, "member", "evict", "1"], purpose="test",
                          mounts=etcd_members.MOUNTS, deadline=60)
    assert unknown.code == 1 and "unknown command" in unknown.output
    unmounted = nodeops.run(api, "prod-cp-2", "registry.k8s.io/etcd:3.6.9-0",
                            [*etcd_members.ETCDCTL, "member", "list"], purpose="test",
                            deadline=60)
    assert unmounted.code == 1 and "no such file" in unmounted.output
    assert pods_left(kube) == []


def test_the_member_of_a_droplet_about_to_be_replaced_is_removed_while_it_answers(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    """As kubeadm reset's remove-etcd-member phase does for its own node
    (cmd/kubeadm/app/cmd/phases/reset/removeetcdmember.go), but from another node, whose
    etcd stays: etcdctl never runs on the node that leaves."""
    kube, api = cluster
    leaving = kube.etcd.local("prod-cp-2")
    assert leaving is not None and leaving.healthy
    said: list[str] = []
    assert etcd_members.remove_leaving(api, "prod-cp-2", "replaced", said.append) == \
        "prod-cp-2"
    assert kube.etcd.names() == ["prod-cp-1", "prod-cp-3"]
    assert [m.id for m in kube.etcd.removed] == [leaving.id]
    assert kube.get("v1", "Node", "prod-cp-2") is None
    assert any(f"removed etcd member prod-cp-2 ({leaving.id:x})" in line
               and "replaced" in line for line in said), said
    created = [r.json() for r in kube.requests("POST", "/api/v1/namespaces/kube-system/pods")]
    assert created and all(p["spec"]["nodeName"] != "prod-cp-2" for p in created)
    assert pods_left(kube) == []
    # A second call finds no member of that name: nothing to do.
    assert etcd_members.remove_leaving(api, "prod-cp-2", "replaced", said.append) is None


def test_a_healthy_member_is_not_removed_while_another_is_down(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    kube, api = cluster
    kube.etcd.set_healthy("prod-cp-3", False)
    with pytest.raises(etcd_members.EtcdError, match=r"prod-cp-3.*do not answer"):
        etcd_members.remove_leaving(api, "prod-cp-2", "replaced", lambda line: None)
    assert kube.etcd.names() == CPS and not kube.etcd.removed
    assert kube.get("v1", "Node", "prod-cp-2") is not None
    assert pods_left(kube) == []


def test_a_learner_does_not_count_toward_quorum(cluster: tuple[FakeKubeAPI, Any]) -> None:
    """Learners are non-voting members (etcd server/etcdserver/api/membership/cluster.go
    at commit c5eb78e2e639: ``IsReadyToRemoveVotingMember`` counts ``VotingMembers()``
    only): a learner that
    does not answer leaves the three voters' quorum intact, so replacing cp-1 goes ahead."""
    kube, api = cluster
    kube.add_node("prod-cp-4", control_plane=True, address="10.110.0.5")
    learner = kube.etcd_join("prod-cp-4")
    kube.etcd.members[learner.id].learner = True
    kube.etcd.set_healthy("prod-cp-4", False)
    said: list[str] = []
    assert etcd_members.remove_leaving(api, "prod-cp-1", "replaced", said.append) == \
        "prod-cp-1"
    assert kube.etcd.names() == ["prod-cp-2", "prod-cp-3", "prod-cp-4"]
    assert pods_left(kube) == []


def test_malformed_member_list_output_is_an_etcd_error() -> None:
    """An entry without a numeric ID is reported as such, not as a KeyError traceback."""
    for raw in ({"name": "prod-cp-1"}, {"ID": "not-a-number"}, ["ID", 1]):
        with pytest.raises(etcd_members.EtcdError, match="member provision cannot read"):
            etcd_members._member(raw)



def test_a_dead_member_under_a_kept_name_goes_and_the_new_node_stays(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    """cp-2 was replaced while its member answered (left in place), and the new cp-2 joined
    under the same name with a new private IP: the old member, dead, carries a kept name.
    etcd names a member after ``--name`` (the node name kubeadm passes: etcd v3.6.9
    etcdctl README ``member list``), so two members can share it; the one that answers is
    the node's, and the Node object, now the new droplet's, stays."""
    kube, api = cluster
    old = kube.etcd.local("prod-cp-2")
    assert old is not None
    # The new cp-2 joins while the old one still answers (etcd refuses an AddMember while a
    # voter is down: fakes/kubeapi/etcd.py, mayAddMember), then the old droplet is destroyed.
    new = kube.etcd.join("prod-cp-2", "10.110.0.20")
    kube.etcd.stop(old.id)
    kube.etcd.members[old.id].node = ""
    said: list[str] = []
    removed = etcd_members.remove_stale(api, set(CPS), said.append)
    assert removed == ["prod-cp-2"]
    assert [m.id for m in kube.etcd.removed] == [old.id]
    assert new.id in kube.etcd.members and kube.etcd.names() == CPS
    assert kube.get("v1", "Node", "prod-cp-2") is not None, "the new cp-2's Node stays"
    assert any(f"removed etcd member prod-cp-2 ({old.id:x})" in line
               and "another member named prod-cp-2 answers" in line for line in said), said
    assert not any(f"({new.id:x})" in line for line in said), "the live cp-2 is not named"


def test_a_dead_member_whose_peer_host_is_no_current_droplet_goes(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    """The replacement cp-2 (10.110.0.20) has not joined yet: by name the dead member is
    still "cp-2"; its peer URL host (kubeadm advertises the node's address on port 2380:
    cmd/kubeadm/app/util/etcd/etcd.go ``AddMember``) is no current droplet's private IP."""
    kube, api = cluster
    old = kube.etcd.local("prod-cp-2")
    assert old is not None
    kube.etcd.stop(old.id)
    ips = {"10.110.0.2", "10.110.0.20", "10.110.0.4"}
    said: list[str] = []
    # Without the droplets' IPs it cannot be told from a cp-2 that is down for a while.
    assert etcd_members.remove_stale(api, set(CPS), said.append) == []
    assert old.id in kube.etcd.members
    assert etcd_members.remove_stale(api, set(CPS), said.append, ips) == ["prod-cp-2"]
    assert [m.id for m in kube.etcd.removed] == [old.id]
    assert any("10.110.0.3 is not the private IP of the current prod-cp-2" in line
               for line in said), said


def test_a_join_in_progress_is_never_removed(cluster: tuple[FakeKubeAPI, Any]) -> None:
    """kubeadm join adds the member with its peer URL only and then starts etcd
    (cmd/kubeadm/app/util/etcd/etcd.go ``AddMember``): until then etcdctl v3.6.9 lists it
    unstarted, with no name and no client URL, so it never answers ``endpoint health``.
    Here an interrupted `up` left prod-cp-4 mid-join."""
    kube, api = cluster
    joining = kube.etcd.add("https://10.110.0.30:2380")
    said: list[str] = []
    wanted = {*CPS, "prod-cp-4"}
    assert etcd_members.remove_stale(api, wanted, said.append) == []
    assert joining.id in kube.etcd.members
    assert any(f"unstarted member ({joining.id:x})" in line and "join in progress" in line
               for line in said), said
    ips = {"10.110.0.2", "10.110.0.3", "10.110.0.4", "10.110.0.30"}
    assert etcd_members.remove_stale(api, wanted, said.append, ips) == []
    assert joining.id in kube.etcd.members and not kube.etcd.removed
    # prod-cp-4's droplet is gone too (no current droplet has 10.110.0.30): it goes.
    assert etcd_members.remove_stale(api, set(CPS), said.append, ips - {"10.110.0.30"}) == \
        [f"{joining.id:x}"]
    assert kube.etcd.names() == CPS and [m.id for m in kube.etcd.removed] == [joining.id]
    assert len(kube.objects("v1", "Node")) == 4


def test_etcdctl_runs_only_in_the_image_of_the_kubelets_mirror_pod(
        cluster: tuple[FakeKubeAPI, Any]) -> None:
    """The image runs on a control-plane node with the etcd client key mounted, so it comes
    only from the kubelet's mirror of the etcd static pod: annotated
    ``kubernetes.io/config.mirror`` (kubernetes/kubernetes pkg/kubelet/types/pod_update.go,
    ``ConfigMirrorAnnotationKey``), bound to that node, labelled component=etcd,
    tier=control-plane as kubeadm labels its static pods
    (cmd/kubeadm/app/util/staticpod/utils.go ``ComponentPod``). A pod that merely bears
    the name ``etcd-<node>`` is not it."""
    kube, api = cluster
    old = "registry.k8s.io/etcd:3.4.13-0"
    pods = "/api/v1/namespaces/kube-system/pods"
    kube_ = Kube(api)

    def forge(node: str, bound_to: str, annotations: dict[str, str]) -> None:
        kube_.request("DELETE", f"{pods}/etcd-{node}", verb="delete")
        while kube.get("v1", "Pod", f"etcd-{node}", "kube-system") is not None:
            time.sleep(0.05)
        kube_.request("POST", pods, verb="create", body={
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"etcd-{node}", "namespace": "kube-system",
                         "labels": {"component": "etcd", "tier": "control-plane"},
                         "annotations": annotations},
            "spec": {"nodeName": bound_to, "hostNetwork": True, "restartPolicy": "Never",
                     "containers": [{"name": "etcd", "image": old,
                                     "command": ["etcd"]}]}})

    forge("prod-cp-1", "prod-cp-1", {})  # not a mirror pod
    forge("prod-cp-2", "prod-cp-3", {"kubernetes.io/config.mirror": "x"})  # another node's
    members = etcd_members.members(api)
    assert sorted(m.name for m in members) == CPS
    created = [r.json() for r in kube.requests("POST", pods)
               if r.json()["metadata"].get("generateName")]
    assert created
    assert {(p["spec"]["nodeName"], p["spec"]["containers"][0]["image"]) for p in created} \
        == {("prod-cp-3", "registry.k8s.io/etcd:3.6.9-0")}
    assert pods_left(kube) == []
