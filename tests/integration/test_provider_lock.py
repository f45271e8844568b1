"""The provider lock provision ships, and real Terraform enforcing it.

A work folder's first ``init`` without a lock trusts whatever package a registry or mirror
serves and records its checksums. provision seeds every new work folder's module with the
lock of the provider release the module is validated against (terraform/provider.lock.hcl),
so Terraform installs only that release's official packages. The simulated world's
provider is not the official package: real Terraform must refuse it under the shipped lock,
and accept it under a lock of its own given through PROVISION_TERRAFORM_LOCK_FILE.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from provisioner.resources import data_dir
from tests.support.rendering import ROOT
from tests.support.sim import simulation

pytestmark = pytest.mark.integration
SHIPPED = ROOT / "terraform" / "provider.lock.hcl"
SCHEMA = ROOT / "tests" / "data" / "digitalocean-provider-schema-2.34.1.json"


def _locked_version(text: str) -> str:
    match = re.search(r'provider "registry\.terraform\.io/digitalocean/digitalocean" \{\s*'
                      r'version\s*=\s*"([^"]+)"', text)
    assert match, text
    return match.group(1)


def test_the_shipped_lock_pins_the_release_the_module_is_validated_against() -> None:
    """The contract tests validate the module against the provider schema of 2.34.1
    (tests/data, `terraform providers schema -json` of that release); the lock pins the
    same release, within terraform/versions.tf's `~> 2.34`, with a checksum for every
    platform's archive (zh:) and the linux_amd64 package (h1:)."""
    text = SHIPPED.read_text()
    assert _locked_version(text) == "2.34.1"
    schema = json.loads(SCHEMA.read_text())
    assert "registry.terraform.io/digitalocean/digitalocean" in schema["provider_schemas"]
    assert 'version = "~> 2.34"' in (ROOT / "terraform" / "versions.tf").read_text()
    assert len(re.findall(r'"zh:[0-9a-f]{64}"', text)) >= 10
    assert len(re.findall(r'"h1:[A-Za-z0-9+/]{43}="', text)) >= 1
    assert data_dir("terraform") / "provider.lock.hcl" == SHIPPED


def test_terraform_refuses_a_provider_that_does_not_match_the_shipped_lock(
        tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        sim.env.pop("PROVISION_TERRAFORM_LOCK_FILE")
        result = sim.run("plan", str(sim.config))
        assert result.code == 1, result.stderr
        assert "checksum" in result.stderr and "digitalocean/digitalocean" in result.stderr
        assert "Traceback" not in result.stderr
        lock = sim.workdir / "terraform" / ".terraform.lock.hcl"
        assert lock.read_text() == SHIPPED.read_text(), "seeded with the shipped lock"
        assert sim.resources("digitalocean_droplet") == []


def test_a_lock_of_ones_own_is_seeded_once_and_never_replaced(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        own = Path(sim.env["PROVISION_TERRAFORM_LOCK_FILE"]).read_text()
        assert sim.run("plan", str(sim.config)).code == 0
        lock = sim.workdir / "terraform" / ".terraform.lock.hcl"
        assert lock.read_text() == own
        # Terraform owns the file from now on (init -upgrade rewrites it): a later run
        # with another lock named keeps the work folder's.
        other = tmp_path / "other.lock.hcl"
        other.write_text(SHIPPED.read_text())
        sim.env["PROVISION_TERRAFORM_LOCK_FILE"] = str(other)
        assert sim.run("plan", str(sim.config)).code == 0
        assert lock.read_text() == own


def test_an_unreadable_lock_file_named_by_the_user_is_a_usage_error(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        sim.env["PROVISION_TERRAFORM_LOCK_FILE"] = str(tmp_path / "missing.lock.hcl")
        result: Any = sim.run("plan", str(sim.config))
        assert result.code == 2, result.stderr
        assert result.stderr.count("\n") == 1
        assert "PROVISION_TERRAFORM_LOCK_FILE=" in result.stderr
        assert "missing.lock.hcl" in result.stderr
