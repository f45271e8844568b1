"""The CCM's load balancer id on a Service survives provision's deploys.

digitalocean-cloud-controller-manager v0.1.68, cloud-controller-manager/do/loadbalancers.go:
after creating (or finding) a Service's load balancer it writes the id into the
`kubernetes.digitalocean.com/load-balancer-id` annotation (`updateServiceAnnotation`) and
from then on looks the load balancer up by that id (`retrieveLoadBalancer`), never by
name; k8s.io/cloud-provider's service controller sends that change as a patch under the
CCM's own field manager. provision applies its Services server-side, declaring only the
name annotation, so a later deploy must leave the id (the pin) in place.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner import lb_names
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.integration.test_deploy import always_open, kget, kube, kubectl, run, write

pytestmark = pytest.mark.integration
__all__ = ["kube"]  # the fixture, shared with test_deploy

LB_ID = "4de7ac8b-495b-4884-9a69-1050c6793cd6"


def test_a_redeploy_keeps_the_load_balancer_pinned_by_id(kube: FakeKubeAPI,
                                                        tmp_path: Path) -> None:
    env_file = write(tmp_path / "prod.yaml", always_open)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 0, err
    annotated = kubectl(kube, "-n", "prod", "annotate", "service", "api",
                        "--field-manager=digitalocean-cloud-controller-manager",
                        f"{lb_names.ID_ANNOTATION}={LB_ID}")
    assert annotated.returncode == 0, annotated.stderr

    def bump(doc: dict[str, object]) -> None:
        always_open(doc)
        apps = doc["apps"]
        assert isinstance(apps, list)
        apps[0]["image"] = "ghcr.io/acme/api:1.4.3"

    write(env_file, bump)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 0, err
    service = kget(kube, "-n", "prod", "service", "api")
    annotations = service["metadata"]["annotations"]
    assert annotations[lb_names.ID_ANNOTATION] == LB_ID
    assert annotations[lb_names.NAME_ANNOTATION] == "prod.api"
