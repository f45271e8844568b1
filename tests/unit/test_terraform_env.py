"""What Terraform and its providers are started with."""

from __future__ import annotations

import pytest

from provisioner.infra import runner


def test_terraform_never_sees_provisions_own_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key that seals the cluster secrets and the failover agent's token are provision's:
    the provider needs the API token, nothing else of them (the failover token reaches
    Terraform only as the bootstrap_secrets variable provision builds)."""
    monkeypatch.setenv("PROVISION_SECRETS_KEY", "sealing-key")
    monkeypatch.setenv("PROVISION_FAILOVER_TOKEN", "scoped-token")
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "api-token")
    env = runner.base_env({"TF_VAR_x": "1"})
    assert "PROVISION_SECRETS_KEY" not in env and "PROVISION_FAILOVER_TOKEN" not in env
    assert "sealing-key" not in env.values() and "scoped-token" not in env.values()
    assert env["DIGITALOCEAN_TOKEN"] == "api-token" and env["TF_VAR_x"] == "1"
    assert env["TF_INPUT"] == "0"
