"""The autoscaler service's settings file: the contract's keys, and a clear error naming the key."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.autoscaler import settings
from provisioner.errors import EXIT_USAGE


def sample() -> dict[str, Any]:
    return {
        "environment": "prod", "listen": "0.0.0.0:8086",
        "tls": {"cert": "tls.crt", "key": "tls.key", "client_ca": "ca.crt"},
        "do_api_url": "https://api.example.test/", "do_token_file": "token",
        "secret_values_file": "values.json", "kube_api": None,
        "pools": [{
            "name": "general", "min": 2, "max": 8, "size": "s-4vcpu-8gb", "region": "fra1",
            "image": "ubuntu-24-04-x64", "vpc_uuid": "vpc-1", "ssh_keys": ["aa:bb"],
            "tags": ["provision:prod", "provision:prod:worker"],
            "labels": {"tier": "general"},
            "taints": [{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}],
            "user_data": [{"text": "#!/bin/sh\n"}, {"ref": "bootstrap_token"}],
            "values": {"api_endpoint": "10.0.0.1:6443"},
        }],
    }


def test_the_contract_keys_load(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text(json.dumps(sample()))
    loaded = settings.load(path)
    pool = loaded.pools[0]
    assert loaded.do_api_url == "https://api.example.test"
    assert loaded.kube_api is None
    assert loaded.group_id(pool) == "prod-general"
    assert loaded.pool_for_group("prod-general") is pool
    assert loaded.pool_for_group("prod-other") is None
    assert loaded.autoscaled_tag == "provision:prod:autoscaled"
    assert pool.group_max == 6
    explicit = {"server": "https://10.0.0.1:6443", "token_file": "t", "ca_file": "c"}
    path.write_text(json.dumps({**sample(), "kube_api": explicit}))
    assert settings.load(path).kube_api == settings.KubeApiSettings(**explicit)
    assert pool.taints[0].effect == "NoSchedule"
    assert pool.user_data[1] == {"ref": "bootstrap_token"}
    assert dict(pool.values) == {"api_endpoint": "10.0.0.1:6443"}


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d.pop("listen"), "listen: missing"),
    (lambda d: d["pools"][0].update(max="8"), "pools[0].max: expected a whole number"),
    (lambda d: d["pools"][0].update(max=1), "pools[0].max: 1 is below min 2"),
    (lambda d: d["tls"].pop("client_ca"), "tls.client_ca: missing"),
    (lambda d: d["pools"][0]["user_data"].append({"file": "x"}), "pools[0].user_data[2]"),
    (lambda d: d["pools"].append(dict(d["pools"][0])), "a pool name appears twice"),
    (lambda d: d.update(kube_api={"server": "http://10.0.0.1:6443", "token_file": "t",
                                  "ca_file": "c"}), "kube_api.server: expected an https"),
    (lambda d: d.update(kube_api={"server": "https://10.0.0.1:6443", "token_file": "t"}),
     "kube_api.ca_file: missing"),
])
def test_a_wrong_key_is_named(tmp_path: Path, change: Any, expected: str) -> None:
    data = sample()
    change(data)
    path = tmp_path / "s.json"
    path.write_text(json.dumps(data))
    with pytest.raises(settings.SettingsError, match=None) as caught:
        settings.load(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert expected in str(caught.value)
    assert caught.value.exit_code == EXIT_USAGE


def test_not_json_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "s.json"
    path.write_text("{\n  oops\n}")
    with pytest.raises(settings.SettingsError, match=r"s\.json:2: not JSON"):
        settings.load(path)
