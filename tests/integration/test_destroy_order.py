"""`provision destroy` releases the cluster's load balancers and volumes before Terraform runs,
then accounts for everything left in the account (and sweeps it on request)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration
SECRETS = {"PROD_DATABASE_URL": "postgres://db", "PROD_STRIPE_API_KEY": "sk"}


class CloudControllers:
    """Stands in for the DigitalOcean CCM and CSI driver: when the Service or the claim goes,
    the load balancer or the volume they made goes too (bounded polling, stops with the test)."""

    def __init__(self, kube: FakeKubeAPI, account: Path, lb_id: str, volume_id: str) -> None:
        self.kube, self.cloud = kube, Cloud(account)
        self.lb_id, self.volume_id = lb_id, volume_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _delete(self, type_name: str, rid: str) -> None:
        with self.cloud.transaction() as account:
            record = account.delete(type_name, rid)
            if record is not None:
                account.log("delete", type_name, rid, record.get("name"))

    def _run(self) -> None:
        for _ in range(3000):  # at most five minutes
            if self.stop.wait(0.1):
                return
            if self.kube.get("v1", "Service", "api", "prod") is None:
                self._delete("digitalocean_loadbalancer", self.lb_id)
            if self.kube.get("v1", "PersistentVolumeClaim", CLAIM, "prod") is None:
                self._delete("digitalocean_volume", self.volume_id)


# A claim elasticsearch's `data` volume template made for a pod of an earlier, larger scale
# (<template>-<statefulset>-<ordinal>; kept after a scale-down by default) and bound to a
# DigitalOcean volume: the fake's StatefulSet controller makes claims 0-2 of today's three.
CLAIM = "data-elasticsearch-3"


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[tuple[Simulation, FakeKubeAPI, Path, CloudControllers]]:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        sim.write_config({"deploy_policy": {}})
        sim.env.update(SECRETS)
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        for i in (1, 2, 3):
            kube.add_node(f"prod-general-{i}")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        assert sim.run("deploy", str(sim.config), "--kubeconfig", str(kubeconfig)).code == 0
        lb = sim.api.add_load_balancer("prod.api", tags=["k8s"])
        volume = sim.api.add_volume("pvc-0a1b2c", 50, tags=["k8s"])
        kube.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": CLAIM, "namespace": "prod"},
                     "spec": {"accessModes": ["ReadWriteOnce"], "volumeName": "pvc-0a1b2c",
                              "resources": {"requests": {"storage": "50Gi"}}}})
        controllers = CloudControllers(kube, Path(sim.env["DO_SIM_STATE"]), lb, volume)
        controllers.thread.start()
        try:
            yield sim, kube, kubeconfig, controllers
        finally:
            controllers.stop.set()


def _events(sim: Simulation) -> list[dict[str, Any]]:
    return list(Cloud(Path(sim.env["DO_SIM_STATE"])).snapshot().get("events", []))


def test_load_balancers_and_volumes_go_before_terraform_touches_a_droplet(
        deployed: tuple[Simulation, FakeKubeAPI, Path, CloudControllers]) -> None:
    sim, kube, kubeconfig, _ = deployed
    result = sim.run("destroy", str(sim.config), "--yes", "--force", "--kubeconfig",
                     str(kubeconfig))
    assert result.code == 0, result.stderr
    events = _events(sim)
    deletes = [(i, e["type"]) for i, e in enumerate(events) if e["op"] == "delete"]
    first_droplet = min(i for i, t in deletes if t == "digitalocean_droplet")
    lb_gone = next(i for i, t in deletes if t == "digitalocean_loadbalancer")
    volume_gone = next(i for i, t in deletes if t == "digitalocean_volume")
    assert lb_gone < first_droplet and volume_gone < first_droplet
    assert kube.get("v1", "Service", "api", "prod") is None
    assert kube.get("apps/v1", "StatefulSet", "elasticsearch", "prod") is None
    assert "the cluster's load balancers and volumes are gone" in result.stderr
    assert "nothing of the environment is left in the account" in result.stderr
    assert sim.droplet_names() == []


def test_leftovers_are_reported_and_swept_on_request(
        deployed: tuple[Simulation, FakeKubeAPI, Path, CloudControllers]) -> None:
    sim, _, kubeconfig, _ = deployed
    sim.api.add_droplet("prod-stray", tags=["provision:prod"])
    result = sim.run("destroy", str(sim.config), "--yes", "--force", "--kubeconfig",
                     str(kubeconfig))
    assert result.code == 1
    assert "still in the account (billed)" in result.stderr
    assert "droplet prod-stray" in result.stderr
    assert sim.droplet_names() == ["prod-stray"]
    swept = sim.run("destroy", str(sim.config), "--yes", "--force", "--sweep")
    assert swept.code == 0, swept.stderr
    assert "deleted droplet prod-stray" in swept.stderr
    assert sim.droplet_names() == []
    assert os.path.exists(kubeconfig)
