"""How `up` keeps the node autoscaler's objects in a running cluster (cluster/autoscaler.py),
against the fake Kubernetes API server.

Server-side apply never deletes an object the new render no longer has: an object an
earlier provision applied is deleted by name (Kubernetes' server-side apply documentation,
"Server-Side Apply": apply merges the fields it is given into one object; pruning is
kubectl's client-side ``--prune``, which provision does not use).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

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
