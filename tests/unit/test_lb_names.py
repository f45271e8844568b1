"""Load balancer names no other environment's can equal.

Upstream facts (digitalocean-cloud-controller-manager v0.1.68):

* cloud-controller-manager/do/loadbalancers.go, ``retrieveLoadBalancer``: without the
  ``kubernetes.digitalocean.com/load-balancer-id`` annotation the CCM lists every load
  balancer of the account (``allLoadBalancerList``) and ``findLoadBalancerByName`` takes the
  first whose ``Name`` equals the Service's ``service.beta.kubernetes.io/do-loadbalancer-name``;
  ``EnsureLoadBalancer`` then updates it (``updateLoadBalancer``): whoever's it is.
* the same file: after ``Create`` (and after every lookup) ``updateServiceAnnotation`` writes
  the load balancer's id into that annotation; docs/getting-started.md "Load-balancer ID
  annotations": used "to efficiently look up load-balancer resources".
* docs/controllers/services/annotations.md: a name is at most 255 characters, starts
  alphanumeric, consists of alphanumerics, '.' and '-', and does not end in '-'.
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import yaml

from provisioner import lb_names
from provisioner.config import checks
from provisioner.render.names import resource_names
from tests.support.rendering import ROOT, example, rendered

DO_LB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*\Z")


def _valid_do_name(name: str) -> bool:
    return len(name) <= 255 and bool(DO_LB_NAME.match(name)) and not name.endswith("-")


def test_the_takeovers_of_the_issue_are_different_names_now() -> None:
    # env prod, app eu-api  vs  env prod-eu's API load balancer: once both "prod-eu-api".
    assert lb_names.load_balancer("prod", "eu-api") != lb_names.api_load_balancer("prod-eu")
    # env prod's app "api-x" vs env prod-api's app "x": once both "prod-api-x".
    assert lb_names.load_balancer("prod", "api-x") != lb_names.load_balancer("prod-api", "x")
    assert lb_names.load_balancer("prod", "web") == "prod.web"


def test_names_are_unambiguous_for_every_pair_of_dns_labels() -> None:
    labels = ["a", "prod", "prod-eu", "eu", "eu-api", "api", "prod-api", "x", "api-x",
              "a-b-c", "b-c", "a-b", "c", "9", "1-2"]
    assert all(checks.dns_label(label) is None for label in labels)
    seen: dict[str, tuple[str, str]] = {}
    for env, component in itertools.product(labels, repeat=2):
        name = lb_names.load_balancer(env, component)
        assert name not in seen, f"{(env, component)} and {seen[name]} are both {name!r}"
        seen[name] = (env, component)
        # What makes it so: the environment's part ends at the first dot.
        assert name.split(lb_names.SEPARATOR, 1) == [env, component]


def test_the_longest_names_are_valid_load_balancer_names() -> None:
    longest = "a" + "-b" * 31  # 63 characters, the most a DNS label has
    assert checks.dns_label(longest) is None
    name = lb_names.load_balancer(longest, longest)
    assert len(name) == 127 and _valid_do_name(name)
    assert _valid_do_name(lb_names.api_load_balancer("prod-eu"))


def test_terraform_and_the_manifests_use_these_names() -> None:
    module = (ROOT / "terraform" / "api-endpoint.tf").read_text()
    assert f'name        = "{lb_names.api_load_balancer("${var.name}")}"' in module
    env = example("production")
    assert resource_names(env)["digitalocean_loadbalancer.api[0]"] == "prod.api"
    services = [d for d in yaml.safe_load_all(rendered("production")["manifests/app-api.yaml"])
                if d and d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"]
    assert len(services) == 1
    annotations = services[0]["metadata"]["annotations"]
    assert annotations[lb_names.NAME_ANNOTATION] == "prod.api"
    # The id is the CCM's to write; provision never sets (and so never owns) it.
    assert lb_names.ID_ANNOTATION not in annotations


def test_only_load_balancer_endpoints_collide_with_an_app_called_api(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from provisioner.cli.main import cli

    doc = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    assert [a["expose"] for a in doc["apps"] if a["name"] == "api"] == ["load_balancer"]
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    assert CliRunner().invoke(cli, ["validate", str(path)]).exit_code == 0  # floating IP
    doc["control_plane"]["endpoint"] = "load_balancer"
    doc["access"]["api_cidrs"] = ["0.0.0.0/0"]
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    result = CliRunner().invoke(cli, ["validate", str(path)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1)
                if text.strip() in ("- name: api", "name: api"))
    assert lines == [f"{path}:{line}: apps[0].name: app 'api' would name its load balancer "
                     "'prod.api', the name of the API's load balancer (the cloud controller "
                     "manager would take it over) (rename the app, e.g. 'api-app', or use "
                     "expose: node_port)"]
