"""Loading valid environment files: defaults, typing and the forgiving parts of YAML."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from provisioner.config import parse
from provisioner.errors import ConfigError
from tests.support.rendering import ROOT, example

MINIMAL = """\
name: demo
digitalocean:
  region: fra1
  ssh_keys: ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
  vpc_cidr: 10.20.0.0/16
kubernetes:
  version: "1.36.2"
worker_pools:
  - {name: general, count: 2, size: s-2vcpu-4gb}
access:
  api_cidrs: [203.0.113.0/24]
"""


def load(text: str):  # type: ignore[no-untyped-def]
    return parse(text.encode(), "env.yaml")


def test_examples_load_with_the_documented_shapes() -> None:
    prod = example("production")
    assert prod.control_plane.count == 3 and prod.control_plane.endpoint == "floating_ip"
    assert [p.count for p in prod.worker_pools] == [3]
    es = next(a for a in prod.apps if a.name == "elasticsearch")
    assert es.replicas == 3 and es.stateful
    api = next(a for a in prod.apps if a.name == "api")
    assert api.autoscale is not None and api.replicas == api.autoscale.min == 3
    window = prod.deploy_policy.windows[0]
    assert window.days == ("mon", "tue", "wed", "thu")
    assert (window.start, window.end) == (dt.time(9), dt.time(16))
    assert window.timezone == "Europe/Berlin"
    staging = example("staging")
    assert staging.control_plane.count == 1 and sum(p.count for p in staging.worker_pools) == 2


def test_defaults_are_applied() -> None:
    env = load(MINIMAL)
    assert env.namespace == "demo"
    assert env.kubernetes.pod_cidr == "10.244.0.0/16"
    assert env.kubernetes.service_cidr == "10.96.0.0/12"
    assert env.kubernetes.cni == "calico"
    assert env.control_plane.count == 3 and env.control_plane.endpoint == "floating_ip"
    assert env.digitalocean.image == "ubuntu-24-04-x64"
    assert env.state.backend == "local" and not env.deletion_protection


def test_env_and_config_values_keep_the_characters_typed() -> None:
    env = load(MINIMAL + """\
config:
  RATIO: 1.10
  DEBUG: yes
  PORT: 8080
apps:
  - name: api
    image: nginx:1.27
    env: {ENABLED: true, TIMEOUT: 0.50}
""")
    assert dict(env.config) == {"RATIO": "1.10", "DEBUG": "yes", "PORT": "8080"}
    assert dict(env.apps[0].env) == {"ENABLED": "true", "TIMEOUT": "0.50"}


def test_anchors_and_merge_keys_work() -> None:
    env = load(MINIMAL.replace("worker_pools:\n  - {name: general, count: 2, size: s-2vcpu-4gb}",
                               "worker_pools:\n  - &pool {name: general, count: 2, size: c-4}\n"
                               "  - {<<: *pool, name: batch, count: 1}"))
    assert [(p.name, p.count, p.size) for p in env.worker_pools] == [
        ("general", 2, "c-4"), ("batch", 1, "c-4")]


def test_strategy_short_and_long_forms() -> None:
    env = load(MINIMAL + """\
apps:
  - {name: a, image: "nginx:1.27", strategy: blue_green}
  - name: b
    image: nginx:1.27
    strategy: {type: rolling, max_surge: 1, max_unavailable: 25%}
""")
    assert env.apps[0].strategy.kind == "blue_green"
    assert (env.apps[1].strategy.max_surge, env.apps[1].strategy.max_unavailable) == (1, "25%")


def test_freeze_single_dates_and_ranges() -> None:
    env = load(MINIMAL + """\
deploy_policy:
  freeze:
    - 2026-12-24
    - {from: 2026-12-30, to: 2027-01-02, reason: new year}
""")
    freezes = env.deploy_policy.freezes
    assert (freezes[0].start, freezes[0].end) == (dt.date(2026, 12, 24),) * 2
    assert freezes[1].reason == "new year"


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as caught:
        load(MINIMAL.replace("fra1", "Frankfurt").replace('"1.36.2"', '"1.20.0"')
             .replace("count: 2", "count: -1"))
    paths = [i.path for i in caught.value.issues]
    assert paths == ["digitalocean.region", "kubernetes.version", "worker_pools[0].count"]
    assert all(i.line > 0 and i.hint for i in caught.value.issues)


def test_example_files_parse_identically_through_plain_yaml() -> None:
    """Our positioned loader and PyYAML agree on what the examples say."""
    for path in sorted((ROOT / "examples").glob("*.yaml")):
        plain = yaml.safe_load(path.read_text())
        env = parse(path.read_bytes(), str(path))
        assert env.name == plain["name"]
        assert [a.name for a in env.apps] == [a["name"] for a in plain.get("apps", [])]


def test_a_pools_replacement_settings_default_and_are_checked() -> None:
    pool = load(MINIMAL).worker_pools[0]
    assert (pool.replace_at_once, pool.drain_timeout) == (1, 600)
    set_ = load(MINIMAL.replace(
        "size: s-2vcpu-4gb}", "size: s-2vcpu-4gb, replace: {at_once: 2, drain_timeout: 90}}"))
    assert (set_.worker_pools[0].replace_at_once, set_.worker_pools[0].drain_timeout) == (2, 90)
    with pytest.raises(ConfigError) as bad:
        load(MINIMAL.replace("size: s-2vcpu-4gb}",
                             "size: s-2vcpu-4gb, replace: {at_once: 0, drain: 5}}"))
    text = str(bad.value)
    assert "env.yaml:9: worker_pools[0].replace.at_once: 0 is out of range" in text
    assert "env.yaml:9: worker_pools[0].replace.drain: unknown key" in text
