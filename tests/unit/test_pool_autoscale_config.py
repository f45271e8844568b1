"""A worker pool's `autoscale: {min, max}`: Terraform owns the floor, the node group the rest."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.config import load_environment
from provisioner.config.model import Environment, PoolAutoscale
from provisioner.errors import ConfigError

BASE = """\
name: demo
digitalocean:
  region: nyc3
  ssh_keys: ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
  vpc_cidr: 10.20.0.0/16
kubernetes:
  version: "1.36.2"
access: {api_cidrs: [0.0.0.0/0]}
worker_pools:
"""


def _load(tmp_path: Path, pool: str) -> Environment:
    path = tmp_path / "env.yaml"
    path.write_text(BASE + pool)
    return load_environment(path)


def test_a_fixed_pool_has_no_autoscale(tmp_path: Path) -> None:
    pool = _load(tmp_path, "  - {name: a, count: 2, size: s-2vcpu-4gb}\n").worker_pools[0]
    assert pool.autoscale is None and pool.count == 2


def test_the_floor_is_terraforms_count_and_the_group_holds_the_rest(tmp_path: Path) -> None:
    pool = _load(tmp_path, "  - {name: a, size: s-2vcpu-4gb, autoscale: {min: 2, max: 10}}\n"
                 ).worker_pools[0]
    assert pool.autoscale == PoolAutoscale(2, 10)
    assert pool.count == 2 and pool.autoscale.group_max == 8


def test_scale_from_zero_is_allowed(tmp_path: Path) -> None:
    pool = _load(tmp_path, "  - {name: a, size: s-2vcpu-4gb, autoscale: {min: 0, max: 3}}\n"
                 ).worker_pools[0]
    assert pool.count == 0 and pool.autoscale == PoolAutoscale(0, 3)


@pytest.mark.parametrize(("pool", "says"), [
    ("  - {name: a, count: 3, size: s-2vcpu-4gb, autoscale: {min: 1, max: 4}}\n",
     "env.yaml:10: worker_pools[0].count: is set with autoscale"),
    ("  - {name: a, size: s-2vcpu-4gb, autoscale: {min: 4, max: 4}}\n",
     "worker_pools[0].autoscale.max: 4 is not above min (4)"),
    ("  - {name: a, size: s-2vcpu-4gb, autoscale: {max: 4}}\n",
     "worker_pools[0].autoscale.min: is required"),
    ("  - {name: a, size: s-2vcpu-4gb, autoscale: {min: 1, max: 501}}\n",
     "worker_pools[0].autoscale.max: 501 is out of range"),
    ("  - {name: a, size: s-2vcpu-4gb, autoscale: {min: 1, max: 3, step: 2}}\n",
     "worker_pools[0].autoscale.step: unknown key"),
])
def test_bad_bounds_name_the_line_and_key(tmp_path: Path, pool: str, says: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, pool)
    assert says in str(caught.value)
    # An autoscaled pool without count is not also told that count is required.
    assert "count: is required" not in str(caught.value)
