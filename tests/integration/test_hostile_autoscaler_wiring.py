"""Hostile checks of how `up` applies the node autoscaler (cluster/autoscaler.py) against
the fake Kubernetes API server.

* The service reads its DigitalOcean token, TLS pair and secret values once, at start
  (provisioner/autoscaler/serve.py ``build``); a Deployment's pods are replaced only when
  its pod template changes (Kubernetes' Deployment controller): a Secret `up` changes must
  change the template, or the running service keeps the old token and certificates.
* Taking ``autoscale`` off every pool must stop the cluster-autoscaler: otherwise it keeps
  creating droplets that no Terraform state and no settings of the file describe.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cluster import autoscaler
from provisioner.kube import client_for
from provisioner.pipeline.prepare import Prepared, prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
OUTPUTS = {"api_endpoint": "10.10.0.5", "network": {"vpc_id": "5a4a8f0e-vpc"}}


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    return prepare(config, None)


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        yield server


def _template(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    template: dict[str, Any] = next(
        o for o in objects if o["kind"] == "Deployment"
        and o["metadata"]["name"] == name)["spec"]["template"]
    return template


def test_a_new_token_replaces_the_service_pod(prepared: Prepared) -> None:
    """`up` with a rotated (or newly scoped) token applies the new Secret; the pod template
    must change with it, or the service keeps calling with the revoked token."""
    before = _template(autoscaler.desired(prepared, OUTPUTS, "old-token"),
                       "provision-autoscaler")
    after = _template(autoscaler.desired(prepared, OUTPUTS, "new-token"),
                      "provision-autoscaler")
    assert before != after


def test_taking_autoscale_off_stops_the_cluster_autoscaler(prepared: Prepared,
                                                          kube: FakeKubeAPI,
                                                          tmp_path: Path) -> None:
    api = client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    autoscaler.install(prepared, api, OUTPUTS, "do-token", lambda m: None)
    assert kube.get("apps/v1", "Deployment", "cluster-autoscaler", "provision-system")
    env = prepared.env
    pools = tuple(dataclasses.replace(p, autoscale=None, count=p.count)
                  for p in env.worker_pools)
    off = dataclasses.replace(prepared, env=dataclasses.replace(env, worker_pools=pools))
    autoscaler.install(off, api, OUTPUTS, "do-token", lambda m: None)
    left = kube.get("apps/v1", "Deployment", "cluster-autoscaler", "provision-system")
    assert left is None or left["spec"]["replicas"] == 0, "still scaling the old node groups"
