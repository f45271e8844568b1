"""How `up` keeps the node autoscaler's objects in a running cluster (cluster/autoscaler.py),
against the fake Kubernetes API server.

Server-side apply never deletes an object the new render no longer has: an object an
earlier provision applied is deleted by name (Kubernetes' server-side apply documentation,
"Server-Side Apply": apply merges the fields it is given into one object; pruning is
kubectl's client-side ``--prune``, which provision does not use).
"""

from __future__ import annotations

import json
import re
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


def test_up_deletes_the_node_read_grant_the_service_no_longer_has(
        prepared: Prepared, kube: FakeKubeAPI, tmp_path: Path) -> None:
    """Earlier renders bound the service's ServiceAccount to a ClusterRole reading Nodes,
    which it never used; `up` must take that grant away, not only stop rendering it."""
    rbac = "rbac.authorization.k8s.io/v1"
    kube.create({"apiVersion": rbac, "kind": "ClusterRole",
                 "metadata": {"name": "provision-autoscaler-nodes"},
                 "rules": [{"apiGroups": [""], "resources": ["nodes"],
                            "verbs": ["get", "list", "watch"]}]})
    kube.create({"apiVersion": rbac, "kind": "ClusterRoleBinding",
                 "metadata": {"name": "provision-autoscaler-nodes"},
                 "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                             "name": "provision-autoscaler-nodes"},
                 "subjects": [{"kind": "ServiceAccount", "name": "provision-autoscaler",
                               "namespace": "provision-system"}]})
    api = client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))
    autoscaler.install(prepared, api, OUTPUTS, "do-token", lambda m: None)
    assert kube.get(rbac, "ClusterRole", "provision-autoscaler-nodes") is None
    assert kube.get(rbac, "ClusterRoleBinding", "provision-autoscaler-nodes") is None
    assert kube.get("apps/v1", "Deployment", "provision-autoscaler", "provision-system")


def _template(objects: list[dict[str, Any]], name: str) -> dict[str, Any]:
    template: dict[str, Any] = next(
        o for o in objects if o["kind"] == "Deployment"
        and o["metadata"]["name"] == name)["spec"]["template"]
    return template


def test_each_deployment_rolls_with_the_secrets_it_mounts_and_shows_no_value(
        prepared: Prepared) -> None:
    """A Deployment replaces its pods only when its pod template changes (Kubernetes'
    Deployment controller, "Updating a Deployment": "if and only if the Deployment's Pod
    template (.spec.template) is changed"); the service and cluster-autoscaler read their
    Secrets once, at start. The template carries a digest, never the value."""
    before = autoscaler.desired(prepared, OUTPUTS, "old-token")
    after = autoscaler.desired(prepared, OUTPUTS, "new-token")
    key = "provision.dev/secrets-checksum"
    service = [_template(o, "provision-autoscaler")["metadata"]["annotations"][key]
               for o in (before, after)]
    assert service[0] != service[1]
    assert re.fullmatch(r"[0-9a-f]{64}", service[1])
    # The cluster-autoscaler mounts only its client certificate: the token leaves it be.
    ca = [_template(o, "cluster-autoscaler")["metadata"]["annotations"][key]
          for o in (before, after)]
    assert ca[0] == ca[1] and re.fullmatch(r"[0-9a-f]{64}", ca[0])
    deployments = json.dumps([o for o in after if o["kind"] == "Deployment"])
    assert "new-token" not in deployments and "PRIVATE KEY" not in deployments
