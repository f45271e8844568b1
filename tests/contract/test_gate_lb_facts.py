"""Which load balancer the cloud controller manager makes for an app, held to the pinned
CCM and the README's gate section ("Which load balancers report HTTP codes").

digitalocean/digitalocean-cloud-controller-manager v0.1.68 (the pin in
provisioner/render/addons.py): with no ``service.beta.kubernetes.io/do-loadbalancer-type``
annotation a Service's load balancer is ``REGIONAL_NETWORK`` (``do/cloud.go``: the
default is ``godo.LoadBalancerTypeRegionalNetwork`` unless ``DEFAULT_LB_TYPE`` is set;
``getType`` in ``do/loadbalancers.go`` reads the annotation, ``REGIONAL`` or
``REGIONAL_NETWORK``), and with no ``do-loadbalancer-protocol`` its rules are ``tcp``
(``getProtocol``: "return protocolTCP"; ``docs/controllers/services/annotations.md``:
"Options are `tcp`, `http`, `https`, and `http2`. Defaults to `tcp`"). A network load
balancer reports no HTTP response codes (digitalocean/openapi: network load balancers
have ``frontend_nlb_*`` throughput metrics); a REGIONAL one with http rules does
(``frontend_http_responses``, what the fleet's gate reads).

So an app's ``load_balancer: {type: http}`` renders both annotations, ``REGIONAL`` and
``http``; without it both are left to the CCM (the network load balancer).
"""

from __future__ import annotations

from typing import Any

import yaml

from provisioner.config import load_environment
from provisioner.render import render_environment
from provisioner.render.addons import DO_CCM
from tests.support.rendering import ROOT, rendered

TYPE = "service.beta.kubernetes.io/do-loadbalancer-type"
PROTOCOL = "service.beta.kubernetes.io/do-loadbalancer-protocol"


def load_balancer_services(files: dict[str, str], name: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(files[name])
            if doc and doc.get("kind") == "Service" and doc["spec"]["type"] == "LoadBalancer"]


def test_without_load_balancer_type_the_ccm_defaults_stay() -> None:
    assert DO_CCM == "v0.1.68"  # the version whose defaults the docstring quotes
    services = load_balancer_services(rendered("production"), "manifests/app-api.yaml")
    assert services, "examples/production.yaml's api app is exposed through a load balancer"
    for service in services:
        annotations = service["metadata"].get("annotations") or {}
        assert "service.beta.kubernetes.io/do-loadbalancer-name" in annotations
        assert TYPE not in annotations and PROTOCOL not in annotations


def test_load_balancer_type_http_asks_the_ccm_for_a_regional_http_load_balancer() -> None:
    env = load_environment(ROOT / "examples" / "fleet" / "fra1.yaml")
    [web] = [a for a in env.apps if a.name == "web"]
    assert web.load_balancer == "http"
    files = render_environment(env)
    [service] = [s for name in files if name.startswith("manifests/app-web")
                 for s in load_balancer_services(files, name)]
    annotations = service["metadata"]["annotations"]
    assert annotations[TYPE] == "REGIONAL" and annotations[PROTOCOL] == "http"
    assert annotations["service.beta.kubernetes.io/do-loadbalancer-name"] == "fra1.web"
