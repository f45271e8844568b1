"""`up --plan` refuses a saved plan whose new droplets could not join the running cluster.

The plan document is what `terraform show -json` gives for a saved plan: every root
variable with its value, sensitive ones included (hashicorp/terraform
internal/command/jsonplan/plan.go at commit 883c7221ee2e, marshalPlanVariables: no
redaction; the embedded Terraform is checked to do so by tests/e2e/test_day2_joins.py).
The cluster is the fake API server holding what
join_credentials.refresh wrote (kubeadm's token Secret, kubeadm-certs owned by a 2 h token:
tests/unit/test_join_credentials.py cites kubeadm for both).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.bootstrap import join_credentials as jc
from provisioner.bootstrap.pki import ClusterSecrets, make_secrets
from provisioner.infra.changes import Change, InfraPlan
from provisioner.kube import client_for
from provisioner.pipeline.running import Running, StaleCredentials, check_saved_plan
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import clock
from tests.support.secrets_folder import prepared_with_secrets

NOW = dt.datetime(2026, 3, 7, 3, 0, 12, tzinfo=dt.UTC)
WORKER = Change("digitalocean_droplet.workers[3]", "digitalocean_droplet", "create",
                "prod-general-4")
FIRST = Change("digitalocean_droplet.controllers[0]", "digitalocean_droplet", "create",
               "prod-cp-1")


def _document(secrets: ClusterSecrets, initialised: bool = True) -> dict[str, Any]:
    return {"variables": {"controller_count": {"value": 3},
                          "cluster_initialised": {"value": initialised},
                          "bootstrap_secrets": {"value": secrets.terraform_values()}}}


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
            ) -> Iterator[tuple[Running, ClusterSecrets]]:
    """A cluster whose join credentials provision refreshed at NOW."""
    clock.pin(monkeypatch, NOW)
    prepared = prepared_with_secrets(tmp_path / "secrets")
    with FakeKubeAPI() as kube:
        api = client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))
        fresh = jc.refresh(api, prepared, lambda message: None)  # type: ignore[arg-type]
        yield Running(api, "1.36.2", {}), fresh


def test_fresh_credentials_pass(cluster: tuple[Running, ClusterSecrets]) -> None:
    running, fresh = cluster
    check_saved_plan(_document(fresh), InfraPlan((WORKER, FIRST)), running,
                     NOW + dt.timedelta(minutes=20))


def test_an_expired_token_is_refused(cluster: tuple[Running, ClusterSecrets]) -> None:
    running, fresh = cluster
    with pytest.raises(StaleCredentials, match="join credentials are not accepted by the cluster"):
        check_saved_plan(_document(fresh), InfraPlan((WORKER,)), running,
                         NOW + dt.timedelta(hours=3, minutes=45))


def test_a_token_the_cluster_never_had_is_refused(
        cluster: tuple[Running, ClusterSecrets]) -> None:
    running, _ = cluster
    stranger = make_secrets("prod")  # its token was never written to the cluster
    with pytest.raises(StaleCredentials, match="join credentials are not accepted by the cluster"):
        check_saved_plan(_document(stranger), InfraPlan((WORKER,)), running, NOW)


def test_expiring_certificates_refuse_only_a_control_plane_join(
        cluster: tuple[Running, ClusterSecrets]) -> None:
    running, fresh = cluster
    later = NOW + dt.timedelta(hours=1, minutes=45)  # token fine, kubeadm-certs owner not
    check_saved_plan(_document(fresh), InfraPlan((WORKER,)), running, later)
    with pytest.raises(StaleCredentials, match="kubeadm-certs"):
        check_saved_plan(_document(fresh), InfraPlan((WORKER, FIRST)), running, later)


def test_a_certificate_key_that_does_not_open_kubeadm_certs_is_refused(
        cluster: tuple[Running, ClusterSecrets]) -> None:
    running, fresh = cluster
    other = ClusterSecrets(fresh.ca_crt_pem, fresh.ca_key_pem, fresh.bootstrap_token,
                           "ab" * 32, fresh.shared)
    with pytest.raises(StaleCredentials, match="kubeadm-certs"):
        check_saved_plan(_document(other), InfraPlan((FIRST,)), running, NOW)


def test_a_plan_made_while_the_api_was_down_cannot_init_again(
        cluster: tuple[Running, ClusterSecrets]) -> None:
    """cluster_initialised=false renders cp-1 as `kubeadm init` (terraform/controllers.tf)."""
    running, fresh = cluster
    with pytest.raises(StaleCredentials, match="second, empty cluster"):
        check_saved_plan(_document(fresh, initialised=False), InfraPlan((FIRST,)), running,
                         NOW)
    check_saved_plan(_document(fresh, initialised=False), InfraPlan((WORKER,)), running, NOW)


def test_a_plan_without_readable_credentials_is_refused(
        cluster: tuple[Running, ClusterSecrets]) -> None:
    running, _ = cluster
    with pytest.raises(StaleCredentials, match="cannot read the join credentials"):
        check_saved_plan({"variables": {"controller_count": {"value": 3}}},
                         InfraPlan((WORKER,)), running, NOW)
