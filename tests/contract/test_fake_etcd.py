"""The fake etcd (tests/fakes/kubeapi/etcd.py) does what etcd v3.6.9 and kubeadm do.

Sources, read at etcd tag v3.6.9: etcdctl/README.md (MEMBER LIST JSON example with
numeric IDs, MEMBER REMOVE with a hex ID, ENDPOINT HEALTH, "Exit codes"),
etcdctl/ctlv3/command/member_command.go (``strconv.ParseUint(args[0], 16, 64)``),
ep_command.go (``unhealthy cluster``), server/etcdserver/server.go (``mayRemoveMember``,
``mayAddMember``), server/etcdserver/util.go (``isConnectedFullySince``),
api/membership/cluster.go (``IsReadyToRemoveVotingMember``, ``IsReadyToAddVotingMember``);
kubernetes/kubernetes cmd/kubeadm/app/util/etcd/etcd.go (``AddMember`` sends only the peer URL).
"""

from __future__ import annotations

import json

import pytest

from tests.fakes.kubeapi.etcd import CA, EtcdCluster, EtcdError

# What provision mounts (provisioner/cluster/etcd_members.py MOUNTS): three files.
MOUNTED = {CA, "/etc/kubernetes/pki/etcd/healthcheck-client.crt",
           "/etc/kubernetes/pki/etcd/healthcheck-client.key"}
CTL = ["--endpoints=https://127.0.0.1:2379", f"--cacert={CA}",
       "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt",
       "--key=/etc/kubernetes/pki/etcd/healthcheck-client.key"]


def three() -> EtcdCluster:
    cluster = EtcdCluster()
    cluster.init("cp-1", "10.0.0.2")
    cluster.join("cp-2", "10.0.0.3")
    cluster.join("cp-3", "10.0.0.4")
    return cluster


def test_member_list_json_has_numeric_ids_and_remove_takes_hex() -> None:
    cluster = three()
    code, out = cluster.etcdctl("cp-2", [*CTL, "member", "list", "-w", "json"], MOUNTED)
    assert code == 0
    listed = json.loads(out)
    assert set(listed) == {"header", "members"}
    assert all(isinstance(m["ID"], int) for m in listed["members"])
    victim = next(m for m in listed["members"] if m["name"] == "cp-1")
    assert victim["peerURLs"] == ["https://10.0.0.2:2380"]
    code, out = cluster.etcdctl("cp-2", [*CTL, "member", "remove", str(victim["ID"])],
                                MOUNTED)  # decimal is read as hex: no such member
    assert code == 1 and "ID not found" in out
    code, out = cluster.etcdctl("cp-2", [*CTL, "member", "remove", f"{victim['ID']:x}"],
                                MOUNTED)
    assert code == 0 and out.startswith(f"Member {victim['ID']:16x} removed from cluster")
    assert cluster.names() == ["cp-2", "cp-3"]


def test_a_joining_member_is_unnamed_until_it_starts() -> None:
    cluster = three()
    with pytest.raises(EtcdError, match="peerURL exists"):
        cluster.add("https://10.0.0.3:2380")  # cp-2's
    added = cluster.add("https://10.0.0.9:2380")
    code, out = cluster.etcdctl("cp-1", [*CTL, "member", "list", "-w", "json"], MOUNTED)
    assert code == 0
    raw = next(m for m in json.loads(out)["members"] if m["ID"] == added.id)
    assert "name" not in raw and "clientURLs" not in raw


def test_etcd_refuses_to_add_a_voter_while_a_member_is_down_or_unstarted() -> None:
    """mayAddMember (server/etcdserver/server.go at v3.6.9): isConnectedFullySince fails
    for a downed or never-started peer; IsReadyToAddVotingMember (api/membership/
    cluster.go) wants the started members to be a quorum of the new size."""
    cluster = three()
    cluster.set_healthy("cp-2", False)  # its droplet was replaced: it is gone
    with pytest.raises(EtcdError, match="unhealthy cluster"):
        cluster.join("cp-2", "10.0.0.9")
    assert cluster.names() == ["cp-1", "cp-2", "cp-3"]
    old = cluster.local("cp-2")
    assert old is not None
    cluster.remove(old.id)  # what provision does first
    assert cluster.join("cp-2", "10.0.0.9").name == "cp-2"
    cluster.add("https://10.0.0.10:2380")  # 4 started of 5: allowed, left unstarted
    with pytest.raises(EtcdError, match="unhealthy cluster"):
        cluster.add("https://10.0.0.11:2380")
    lonely = EtcdCluster()
    lonely.init("cp-1", "10.0.0.2")
    lonely.add("https://10.0.0.3:2380")  # one started member may grow to two
    assert len(lonely.members) == 2


def test_endpoint_health_reports_each_member_and_fails_when_one_is_down() -> None:
    cluster = three()
    cluster.set_healthy("cp-3", False)
    code, out = cluster.etcdctl("cp-1", [*CTL, "endpoint", "health", "--cluster", "-w",
                                         "json"], MOUNTED)
    assert code == 1 and out.rstrip().endswith("Error: unhealthy cluster")
    health = json.loads(out.splitlines()[0])
    assert {h["endpoint"]: h["health"] for h in health} == {
        "https://10.0.0.2:2379": True, "https://10.0.0.3:2379": True,
        "https://10.0.0.4:2379": False}


def test_etcd_refuses_a_removal_that_breaks_the_active_quorum() -> None:
    cluster = three()
    cluster.set_healthy("cp-3", False)
    healthy = cluster.local("cp-2")
    assert healthy is not None
    with pytest.raises(EtcdError, match="unhealthy cluster"):
        cluster.remove(healthy.id)
    dead = cluster.local("cp-3")
    assert dead is not None
    cluster.remove(dead.id)  # a downed member is safe to remove
    assert cluster.names() == ["cp-1", "cp-2"]


def test_without_quorum_or_credentials_nothing_answers() -> None:
    cluster = three()
    assert cluster.etcdctl("cp-1", [*CTL, "member", "list"], set())[0] == 1  # not mounted
    code, out = cluster.etcdctl("cp-1", [*CTL, "member", "list"], MOUNTED - {CA})
    assert code == 1 and f"open {CA}: no such file" in out
    assert cluster.etcdctl("cp-1", ["member", "list"], MOUNTED)[0] == 1  # no client cert
    assert cluster.etcdctl("cp-1", [*CTL, "snapshot", "save", "/x"], MOUNTED)[0] == 1
    cluster.set_healthy("cp-2", False)
    cluster.set_healthy("cp-3", False)
    code, out = cluster.etcdctl("cp-1", [*CTL, "member", "list"], MOUNTED)
    assert code == 1 and "deadline exceeded" in out
