"""The autoscaled droplets `up` and `destroy` delete, against the fake DigitalOcean API and
the fake Kubernetes API server.

* `up` with a pool that lost ``autoscale`` (or is gone): the service's settings list only
  the file's autoscaled pools, so its NodeGroupForNode answers "no group" for such a
  droplet (provisioner/autoscaler/groups.py ``_pool_of``) and cluster-autoscaler never
  scales it down (it deletes only nodes of a node group, cluster-autoscaler 1.36.1
  core/scaledown); Terraform's state never held it. `up` drains and deletes it.
* `destroy` scales the autoscaler to zero, waits for its pods to go (a service pod given
  its grace period may still finish a POST /v2/droplets), then lists and deletes until a
  list comes back empty.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cluster import autoscaler
from provisioner.kube import client_for
from provisioner.pipeline import lifecycle
from provisioner.pipeline.cluster_stage import Cluster
from provisioner.pipeline.prepare import prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.sim import TOKEN, Simulation, simulation

pytestmark = pytest.mark.integration
OUTPUTS = {"api_endpoint": "10.10.0.5", "network": {"vpc_id": "5a4a8f0e-vpc"}}


@pytest.fixture
def sim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Simulation]:
    with simulation(tmp_path) as sim:
        for key, value in sim.env.items():  # in-process calls reach the fake API
            monkeypatch.setenv(key, value)
        yield sim


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


def _autoscaled(sim: Simulation, pool: str, suffix: str) -> int:
    tag = "provision:prod"
    return sim.api.add_droplet(f"prod-{pool}-as-{suffix}", size="s-4vcpu-8gb", tags=[
        tag, f"{tag}:worker", f"{tag}:pool:{pool}", f"{tag}:autoscaled"])


def _ids(sim: Simulation) -> set[int]:
    return {int(d["id"]) for d in sim.resources("digitalocean_droplet")}


def test_up_deletes_the_autoscaled_droplets_no_pool_autoscales(
        sim: Simulation, kube: FakeKubeAPI, tmp_path: Path) -> None:
    sim.write_config()
    kept = _autoscaled(sim, "general", "0a1b2c3d")
    orphan = _autoscaled(sim, "batch", "4e5f6a7b")  # a pool the file no longer has
    terraform = sim.api.add_droplet("prod-general-1", tags=[
        "provision:prod", "provision:prod:worker", "provision:prod:pool:general"])
    cluster = Cluster("10.10.0.5", kube.write_kubeconfig(tmp_path / "kubeconfig"), ())
    said: list[str] = []
    prepared = prepare(sim.config, None)
    lifecycle.retire_autoscaled(prepared, cluster, TOKEN, said.append)
    assert _ids(sim) >= {kept, terraform} and orphan not in _ids(sim)
    assert "deleted autoscaled droplet prod-batch-as-4e5f6a7b (pool batch no longer " \
           "autoscales)" in said

    # Then autoscale comes off general too: its autoscaled droplet goes, Terraform's stays.
    def off(doc: dict[str, Any]) -> None:
        for pool in doc["worker_pools"]:
            if pool.pop("autoscale", None) is not None:
                pool["count"] = 3
    sim.write_config(edit=off)
    lifecycle.retire_autoscaled(prepare(sim.config, None), cluster, TOKEN, said.append)
    assert kept not in _ids(sim) and terraform in _ids(sim)


def _fail_first_delete_with_a_late_create(sim: Simulation) -> list[int]:
    """While the first autoscaled droplet is deleted, a service pod still terminating
    finishes a create: a droplet appears after the first list."""
    late: list[int] = []
    respond = sim.api.respond

    def wrapped(method: str, target: str, authorization: str, raw: bytes) -> Any:
        answer = respond(method, target, authorization, raw)
        if method == "DELETE" and target.startswith("/v2/droplets/") and not late:
            late.append(_autoscaled(sim, "general", "9f8e7d6c"))
        return answer

    sim.api.respond = wrapped  # type: ignore[method-assign]
    return late


def test_destroy_waits_for_the_pods_and_deletes_until_none_is_listed(
        sim: Simulation, kube: FakeKubeAPI, tmp_path: Path) -> None:
    sim.write_config()
    prepared = prepare(sim.config, None)
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    autoscaler.install(prepared, client_for(path), OUTPUTS, TOKEN, lambda m: None)
    first = _autoscaled(sim, "general", "0a1b2c3d")
    late = _fail_first_delete_with_a_late_create(sim)
    said: list[str] = []
    lifecycle._remove_autoscaled(prepared, TOKEN, path, said.append)
    assert late and not {first, *late} & _ids(sim)
    assert any("scaled to 0, no pod left" in m for m in said), said
    assert not kube.objects("v1", "Pod", "provision-system")
    assert "deleted autoscaled droplet prod-general-as-9f8e7d6c" in said


def test_destroy_deletes_the_droplets_when_the_autoscaler_cannot_be_stopped(
        sim: Simulation, kube: FakeKubeAPI, tmp_path: Path) -> None:
    sim.write_config()
    prepared = prepare(sim.config, None)
    path = kube.write_kubeconfig(tmp_path / "kubeconfig")
    autoscaler.install(prepared, client_for(path), OUTPUTS, TOKEN, lambda m: None)
    first = _autoscaled(sim, "general", "0a1b2c3d")
    kube.deny("patch", "deployments", namespace="provision-system")
    said: list[str] = []
    lifecycle._remove_autoscaled(prepared, TOKEN, path, said.append)
    assert first not in _ids(sim)
    assert any(m.startswith("could not scale provision-system/cluster-autoscaler to 0")
               for m in said), said
