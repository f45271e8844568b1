"""A lost control-plane droplet is replaced by `up` and the cluster keeps one etcd.

The simulated world runs kubeadm's etcd side (tests/fakes/kubeapi/etcd.py): the first
control-plane node's init starts the etcd cluster, each other control-plane node's join
adds a member (kubeadm's AddMember), and a member whose droplet is gone stops answering.
Before the apply that recreates the droplet, provision removes the dead member (and its
Node) by running etcdctl on a healthy control-plane node, so the replacement joins a
cluster whose members are exactly the control-plane droplets.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.world import World, world
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.kubeapi.server import FakeKubeAPI

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]

CPS = ["prod-cp-1", "prod-cp-2", "prod-cp-3"]


def _up(w: World) -> tuple[str, FakeKubeAPI]:
    """`up` to a running cluster of three control-plane nodes, one etcd member each."""
    config = str(w.sim.config)
    up = w.provision("up", config, "--yes", "--until", "cluster")
    assert up.code == 0, up.stderr
    kube = w.boot.kube
    assert kube is not None and w.boot.error is None
    assert kube.etcd.names() == CPS
    return config, kube


def test_replacing_cp1_leaves_one_etcd_whose_members_are_the_droplets(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        config, kube = _up(w)
        cluster_id = kube.etcd.cluster_id
        old = kube.etcd.local("prod-cp-1")
        assert old is not None

        # cp-1's droplet is lost (deleted outside provision); its etcd stops answering.
        with Cloud(Path(w.sim.env["DO_SIM_STATE"])).transaction() as account:
            table = account.table("digitalocean_droplet")
            rid = next(k for k, d in table.items() if d["name"] == "prod-cp-1")
            account.delete("digitalocean_droplet", rid)
        kube.wait_for(lambda: not kube.etcd.members[old.id].healthy, timeout=30)

        again = w.provision("up", config, "--yes", "--until", "cluster",
                            "--allow-control-plane-changes")
        assert again.code == 0, again.stderr
        assert w.boot.error is None

        # One etcd cluster, its members exactly the control-plane droplets, all answering.
        assert kube.etcd.cluster_id == cluster_id
        droplets = sorted(n for n in w.sim.droplet_names() if "-cp-" in n)
        assert droplets == CPS
        assert kube.etcd.names() == droplets
        assert all(m.healthy for m in kube.etcd.members.values())
        new = kube.etcd.local("prod-cp-1")
        assert new is not None and new.id != old.id
        assert [m.id for m in kube.etcd.removed] == [old.id]
        assert f"removed etcd member prod-cp-1 ({old.id:x})" in again.stderr
        assert again.stderr.index("removed etcd member") < again.stderr.index("nodes Ready")
        node = kube.get("v1", "Node", "prod-cp-1")
        assert node is not None, "the replacement registered under the same name"
        assert not [p for p in kube.objects("v1", "Pod", "kube-system")
                    if p["metadata"]["name"].startswith("provision-etcdctl-")]


def droplet_ids(w: World) -> dict[str, str]:
    with Cloud(Path(w.sim.env["DO_SIM_STATE"])).transaction() as account:
        return {str(d["name"]): str(rid)
                for rid, d in account.table("digitalocean_droplet").items()}


def test_replacing_a_healthy_cp2_removes_its_member_first_and_two_at_once_are_refused(
        tmp_path: Path) -> None:
    """A planned replacement (`up --replace`, Terraform's -replace): Terraform destroys the
    old droplet, then creates the new one (controllers have no create_before_destroy), so
    its member, still answering before the apply, would be a dead voter when the new
    droplet's kubeadm join asks etcd to add a member, which etcd v3.6.9 then refuses
    (server/etcdserver/server.go ``mayAddMember``: "etcdserver: unhealthy cluster", as
    tests/fakes/kubeapi/etcd.py plays it). provision removes the member (and its Node)
    before the apply, as kubeadm reset's remove-etcd-member phase does
    (cmd/kubeadm/app/cmd/phases/reset/removeetcdmember.go). Two controllers at once would
    take two of three members down: refused before anything changes, even with
    --allow-control-plane-changes.
    """
    with world(tmp_path) as w:
        config, kube = _up(w)
        cluster_id = kube.etcd.cluster_id
        before = droplet_ids(w)
        tokens = {s["metadata"]["name"] for s in kube.objects("v1", "Secret", "kube-system")}

        two = w.provision("up", config, "--yes", "--until", "cluster",
                          "--allow-control-plane-changes",
                          "--replace", "prod-cp-1", "--replace", "prod-cp-3")
        assert two.code == 3, two.stderr
        assert "2 control-plane droplets at once" in two.stderr
        assert "one at a time" in two.stderr and "--replace NAME" in two.stderr
        assert droplet_ids(w) == before
        assert kube.etcd.names() == CPS and not kube.etcd.removed
        assert all(m.healthy for m in kube.etcd.members.values())
        assert {s["metadata"]["name"] for s in kube.objects(
            "v1", "Secret", "kube-system")} == tokens, "no join credentials were minted"

        # With a worker pool change in the same run, each step of the rolling replacement
        # would plan -replace again: refused before anything changes.
        w.sim.write_config(edit=lambda d: d["worker_pools"][0]["labels"].update(tier="next"))
        mixed = w.provision("up", config, "--yes", "--until", "cluster",
                            "--replace", "prod-cp-2")
        assert mixed.code == 2, mixed.stderr
        assert "--replace cannot be combined" in mixed.stderr
        assert droplet_ids(w) == before and not kube.etcd.removed
        w.sim.write_config()  # the example as the first up had it

        old = kube.etcd.local("prod-cp-2")
        assert old is not None and old.healthy
        again = w.provision("up", config, "--yes", "--until", "cluster",
                            "--replace", "prod-cp-2")
        assert again.code == 0, again.stderr
        assert w.boot.error is None
        after = droplet_ids(w)
        assert after["prod-cp-2"] != before["prod-cp-2"], "Terraform made a new droplet"
        assert {n: i for n, i in after.items() if n != "prod-cp-2"} == \
            {n: i for n, i in before.items() if n != "prod-cp-2"}

        # One etcd cluster, its members exactly the control-plane droplets, all answering.
        assert kube.etcd.cluster_id == cluster_id
        droplets = sorted(n for n in w.sim.droplet_names() if "-cp-" in n)
        assert droplets == CPS
        # The world has played the new droplet's kubeadm join: etcd took it, or refused.
        kube.wait_for(lambda: after["prod-cp-2"] in w.boot.etcd_ids
                      or "prod-cp-2" in w.boot.refused, timeout=60)
        assert "prod-cp-2" not in w.boot.refused, w.boot.refused
        assert kube.etcd.names() == droplets
        assert all(m.healthy for m in kube.etcd.members.values())
        new = kube.etcd.local("prod-cp-2")
        assert new is not None and new.id != old.id
        assert [m.id for m in kube.etcd.removed] == [old.id]
        assert f"removed etcd member prod-cp-2 ({old.id:x})" in again.stderr
        assert "deleted Node prod-cp-2" in again.stderr
        assert not w.boot.second_inits
        assert not [p for p in kube.objects("v1", "Pod", "kube-system")
                    if p["metadata"]["name"].startswith("provision-etcdctl-")]
