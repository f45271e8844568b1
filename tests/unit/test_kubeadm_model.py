"""The simulated world's kubeadm (tests/support/kubeadm.py) bites: it reads the user-data
provision renders (with Terraform's values spliced in), and refuses joins the way kubeadm
and the API server do (facts and sources cited in that module)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest

from provisioner.bootstrap.pki import ClusterSecrets, make_secrets
from provisioner.config import load_environment
from provisioner.render import cloudinit
from provisioner.render.markers import join, segments
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import kubeadm
from tests.support.rendering import ROOT

NOW = dt.datetime(2026, 3, 7, 3, 0, 12, tzinfo=dt.UTC)


def _spliced(text: str, secrets: ClusterSecrets) -> str:
    """What Terraform hands DigitalOcean: the markers replaced by their values."""
    values = {**secrets.terraform_values(), "api_endpoint": "203.0.113.10",
              "vpc_id": "5a4c0b4e-0000-4000-8000-000000000001", "failover_token": "t" * 71}
    return join(segments(text), values)


@pytest.fixture
def setting() -> Iterator[tuple[FakeKubeAPI, dict[str, kubeadm.NodeConfig], ClusterSecrets]]:
    env = load_environment(ROOT / "examples" / "production.yaml")
    secrets = make_secrets("prod")
    configs = {}
    for name, data in (("init", cloudinit.controller(env, True)),
                       ("control-plane", cloudinit.controller(env, False)),
                       ("worker", cloudinit.worker(env, env.worker_pools[0]))):
        config = kubeadm.read_user_data(_spliced(data.text, secrets))
        assert config is not None, name
        configs[name] = config
    with FakeKubeAPI() as kube:
        kubeadm.init(kube, configs["init"], NOW)
        yield kube, configs, secrets


def test_user_data_is_read_as_kubeadm_would(
        setting: tuple[FakeKubeAPI, dict[str, kubeadm.NodeConfig], ClusterSecrets]) -> None:
    _, configs, secrets = setting
    init, plane, worker = configs["init"], configs["control-plane"], configs["worker"]
    assert (init.init, init.token, init.token_ttl) == (
        True, secrets.bootstrap_token, dt.timedelta(hours=4))
    assert init.pki["ca.key"] == secrets.ca_key_pem
    assert init.pki["etcd/ca.key"] == secrets.shared["etcd/ca.key"]
    assert (plane.init, plane.control_plane, plane.certificate_key) == (
        False, True, secrets.certificate_key)
    assert (worker.control_plane, worker.token, worker.pki) == (
        False, secrets.bootstrap_token, {})


def test_joins_until_the_credentials_expire(
        setting: tuple[FakeKubeAPI, dict[str, kubeadm.NodeConfig], ClusterSecrets]) -> None:
    kube, configs, _ = setting
    soon = NOW + dt.timedelta(hours=1)
    assert kubeadm.join_refusal(kube, configs["worker"], soon) is None
    assert kubeadm.join_refusal(kube, configs["control-plane"], soon) is None
    later = NOW + dt.timedelta(hours=2, minutes=1)  # kubeadm-certs' owner token expired
    assert kubeadm.clean_tokens(kube, later)
    assert kube.get("v1", "Secret", "kubeadm-certs", "kube-system") is None
    assert kubeadm.join_refusal(kube, configs["worker"], later) is None
    assert "kubeadm-certs" in str(kubeadm.join_refusal(kube, configs["control-plane"], later))
    last = NOW + dt.timedelta(hours=4, minutes=1)
    assert "expired" in str(kubeadm.join_refusal(kube, configs["worker"], last))
    kubeadm.clean_tokens(kube, last)
    assert "not in the cluster" in str(kubeadm.join_refusal(kube, configs["worker"], last))


def test_a_wrong_certificate_key_or_token_secret_is_refused(
        setting: tuple[FakeKubeAPI, dict[str, kubeadm.NodeConfig], ClusterSecrets]) -> None:
    kube, configs, _ = setting
    plane = configs["control-plane"]
    wrong_key = kubeadm.NodeConfig(False, plane.token, None, "ab" * 32, True)
    assert "does not open" in str(kubeadm.join_refusal(kube, wrong_key, NOW))
    token_id = plane.token.split(".")[0]
    wrong_secret = kubeadm.NodeConfig(False, f"{token_id}.0000000000000000", None, None, False)
    assert "wrong secret" in str(kubeadm.join_refusal(kube, wrong_secret, NOW))


def test_go_durations() -> None:
    assert kubeadm.go_duration("4h0m0s") == dt.timedelta(hours=4)
    assert kubeadm.go_duration("1h30m") == dt.timedelta(minutes=90)
    with pytest.raises(ValueError):
        kubeadm.go_duration("4 hours")


def test_no_user_data_is_no_kubeadm() -> None:
    assert kubeadm.read_user_data(None) is None
    assert kubeadm.read_user_data("#cloud-config\nwrite_files: []\n") is None
