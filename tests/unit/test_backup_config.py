"""The `backups:` section: defaults, and values the loader refuses (see also tests/corpus)."""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.config import load_environment
from provisioner.config.model import Backups, Environment
from provisioner.errors import ConfigError

BASE = """\
name: demo
digitalocean:
  region: nyc3
  ssh_keys: ["3b:16:bf:e4:8b:00:8b:b8:59:8c:a9:d3:f0:19:45:fa"]
  vpc_cidr: 10.20.0.0/16
kubernetes:
  version: "1.36.2"
worker_pools: [{name: a, count: 1, size: s-2vcpu-4gb}]
access: {api_cidrs: [0.0.0.0/0]}
"""


def _load(tmp_path: Path, extra: str) -> Environment:
    path = tmp_path / "env.yaml"
    path.write_text(BASE + extra)
    return load_environment(path)


def _backups(tmp_path: Path, extra: str) -> Backups:
    backups = _load(tmp_path, extra).backups
    assert backups is not None
    return backups


def test_absent_section_means_no_backups(tmp_path: Path) -> None:
    env = _load(tmp_path, "")
    assert env.backups is None


def test_defaults_follow_the_droplets_region_and_the_environment_name(tmp_path: Path) -> None:
    backups = _backups(tmp_path, "backups: {bucket: acme-etcd}\n")
    assert (backups.bucket, backups.region, backups.endpoint, backups.prefix, backups.every,
            backups.keep_hourly, backups.keep_daily) == (
        "acme-etcd", "nyc3", "https://nyc3.digitaloceanspaces.com", "demo", 3600, 24, 14)


def test_region_defaults_to_the_state_buckets(tmp_path: Path) -> None:
    backups = _backups(tmp_path, "state: {backend: spaces, bucket: tf, region: ams3}\n"
                                      "backups: {bucket: acme-etcd, every: 30m, keep_daily: 0}\n")
    assert backups.region == "ams3"
    assert backups.endpoint == "https://ams3.digitaloceanspaces.com"
    assert backups.every == 1800 and backups.keep_daily == 0


@pytest.mark.parametrize(("every", "seconds"), [("15m", 900), ("24h", 86400), ("90m", 5400)])
def test_every_bounds_are_inclusive(tmp_path: Path, every: str, seconds: int) -> None:
    backups = _backups(tmp_path, f"backups: {{bucket: acme-etcd, every: {every}}}\n")
    assert backups.every == seconds


@pytest.mark.parametrize(("extra", "message"), [
    ("backups: {bucket: acme-etcd, every: 25h}\n", "backups.every: '25h' is out of range"),
    ("backups: {bucket: acme-etcd, every: 60}\n", "backups.every: '60' is not a duration"),
    ("backups: {bucket: acme-etcd, keep_daily: 1001}\n",
     "backups.keep_daily: 1001 is out of range"),
    ("backups: {bucket: acme-etcd, endpoint: fra1}\n", "backups.endpoint: 'fra1' is not a URL"),
    ("backups: {bucket: acme-etcd, prefix: a/../b}\n", "backups.prefix: 'a/../b' is not"),
    ("backups: {bucket: acme-etcd, buckets: x}\n", "backups.buckets: unknown key"),
    ("backups:\n", "backups: expected a mapping, got nothing"),
])
def test_bad_values_are_located(tmp_path: Path, extra: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, extra)
    assert message in str(caught.value)
