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

from tests.e2e.world import world
from tests.fakes.doprovider.cloud import Cloud

pytestmark = pytest.mark.integration

CPS = ["prod-cp-1", "prod-cp-2", "prod-cp-3"]


def test_replacing_cp1_leaves_one_etcd_whose_members_are_the_droplets(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        config = str(w.sim.config)
        up = w.provision("up", config, "--yes", "--until", "cluster")
        assert up.code == 0, up.stderr
        kube = w.boot.kube
        assert kube is not None and w.boot.error is None
        assert kube.etcd.names() == CPS
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
