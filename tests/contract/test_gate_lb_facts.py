"""What the README's gate section says about provision's app load balancers, held to the
rendered manifests and the pinned cloud controller manager.

digitalocean/digitalocean-cloud-controller-manager v0.1.68 (the pin in
provisioner/render/addons.py): with no ``service.beta.kubernetes.io/do-loadbalancer-type``
annotation a Service's load balancer is ``REGIONAL_NETWORK`` (``do/cloud.go``: the
default is ``godo.LoadBalancerTypeRegionalNetwork`` unless ``DEFAULT_LB_TYPE`` is set;
``getType`` in ``do/loadbalancers.go``), and with no ``do-loadbalancer-protocol`` its
rules are ``tcp`` (``getProtocol``: "return protocolTCP"; annotations.md "Defaults to
`tcp`"). Neither reports HTTP response codes (digitalocean/openapi: network load
balancers have ``frontend_nlb_*`` throughput metrics). If provision starts rendering
those annotations, this test fails and the README's "Which load balancers report HTTP
codes" must change with it.
"""

from __future__ import annotations

import yaml

from provisioner.render.addons import DO_CCM
from tests.support.rendering import rendered


def test_app_load_balancers_are_left_to_the_ccm_defaults() -> None:
    assert DO_CCM == "v0.1.68"  # the version whose defaults the docstring quotes
    services = [doc for doc in yaml.safe_load_all(rendered("production")["manifests/app-api.yaml"])
                if doc and doc.get("kind") == "Service" and doc["spec"]["type"] == "LoadBalancer"]
    assert services, "examples/production.yaml's api app is exposed through a load balancer"
    for service in services:
        annotations = service["metadata"].get("annotations") or {}
        assert "service.beta.kubernetes.io/do-loadbalancer-name" in annotations
        assert "service.beta.kubernetes.io/do-loadbalancer-type" not in annotations
        assert "service.beta.kubernetes.io/do-loadbalancer-protocol" not in annotations
