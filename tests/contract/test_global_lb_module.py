"""The fleet's global load balancer module (terraform/fleet/) under real Terraform.

THE SCHEMA IS DERIVED FROM SOURCE, NOT A DUMP: no ``terraform providers schema -json`` of
a provider release with global load balancer settings can be had offline. The test
provider (tests/fakes/doprovider, PyPI ``tf``) serves
tests/data/digitalocean-provider-schema-2.37.0-derived.json as release 2.37.0: the 2.34.1
dump plus exactly the ``digitalocean_loadbalancer`` attributes and blocks that
digitalocean/terraform-provider-digitalocean declares at tag v2.37.0 in
``digitalocean/loadbalancer/resource_loadbalancer.go`` (``domains``, ``glb_settings``,
``target_load_balancer_ids``, ``forwarding_rule`` no longer required, ``algorithm``
deprecated), each cited to its line in tests/support/provider_schema_2_37.py. v2.37.0 is
the first release with ``glb_settings`` (its CHANGELOG: #1133).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from provisioner.errors import UsageError
from provisioner.gate.global_lb import render_global_lb, write_module
from tests.oracles.terraform import (
    format_diagnostics,
    prepare_plugin_env,
    terraform,
    terraform_init,
    terraform_validate,
)
from tests.support.provider_schema_2_37 import BASE, DERIVED, PROVIDER, derive, derived_text

pytestmark = pytest.mark.oracle

MODULE = Path(__file__).resolve().parents[2] / "terraform" / "fleet"
REGIONS = {"fra1": "lb-fra1-0001", "ams3": "lb-ams3-0002", "nyc3": "lb-nyc3-0003"}


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    return prepare_plugin_env(tmp_path / "tf", token="sim-token",
                              also_versions={"2.37.0": DERIVED})


def test_stored_schema_is_the_derivation() -> None:
    """The file in tests/data is exactly what the cited derivation makes, and it differs
    from the 2.34.1 dump in digitalocean_loadbalancer only."""
    assert DERIVED.read_text(encoding="utf-8") == derived_text()
    base = json.loads(BASE.read_text(encoding="utf-8"))
    derived = derive(base)
    old = base["provider_schemas"][PROVIDER]["resource_schemas"]
    new = derived["provider_schemas"][PROVIDER]["resource_schemas"]
    assert [k for k in new if new[k] != old[k]] == ["digitalocean_loadbalancer"]
    lb = new["digitalocean_loadbalancer"]["block"]
    assert "glb_settings" not in old["digitalocean_loadbalancer"]["block"]["block_types"]
    assert lb["block_types"]["glb_settings"]["max_items"] == 1
    assert lb["attributes"]["target_load_balancer_ids"]["type"] == ["set", "string"]


def test_module_is_formatted_and_valid_against_2_37_0(plugin_env: dict[str, str]) -> None:
    fmt = terraform(MODULE, plugin_env, "fmt", "-check", "-diff")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ok, diagnostics = terraform_validate(MODULE, plugin_env)
    assert ok, format_diagnostics(diagnostics)


def test_the_pinned_2_34_1_has_no_global_settings(tmp_path: Path,
                                                   plugin_env: dict[str, str]) -> None:
    """Why the module pins 2.37.0: under the environments' 2.34.1 it does not validate."""
    module = shutil.copytree(MODULE, tmp_path / "old")
    versions = module / "versions.tf"
    versions.write_text(versions.read_text().replace('"2.37.0"', '"2.34.1"'))
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert not ok
    text = format_diagnostics(diagnostics)
    assert "glb_settings" in text or "target_load_balancer_ids" in text, text


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("    target_port     = var.target_port\n", "    target_prot     = var.target_port\n",
     "target_prot"),
    ("    target_protocol = var.target_protocol\n", "", "target_protocol"),
    ("  target_load_balancer_ids = var.target_load_balancer_ids",
     "  target_load_balancer_ids = 7", "target_load_balancer_ids"),
    ("  dynamic \"domains\" {", "  dynamic \"domain\" {", "domain"),
])
def test_validate_bites(old: str, new: str, expected: str, tmp_path: Path,
                        plugin_env: dict[str, str]) -> None:
    """A misspelt attribute, a missing required one, a wrong type, an unknown block."""
    module = shutil.copytree(MODULE, tmp_path / "broken")
    path = module / "global-lb.tf"
    text = path.read_text()
    assert old in text, f"fixture drifted: {old!r}"
    path.write_text(text.replace(old, new, 1))
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert not ok
    assert expected in format_diagnostics(diagnostics)


def test_render_leaves_the_evacuated_region_out(tmp_path: Path,
                                                plugin_env: dict[str, str]) -> None:
    """fra1 evacuated: the targets are ams3's and nyc3's load balancers, and real Terraform
    accepts the written tfvars (a plan of the written module type-checks every value)."""
    values = render_global_lb("acme", REGIONS, {"fra1"},
                              domains=[{"name": "shop.example.com", "is_managed": True}])
    assert values["target_load_balancer_ids"] == ["lb-ams3-0002", "lb-nyc3-0003"]
    assert values["name"] == "acme.fleet.global"
    assert render_global_lb("acme", REGIONS, set())["target_load_balancer_ids"] == sorted(
        REGIONS.values())
    module = write_module(tmp_path / "work", values)
    assert json.loads((module / "terraform.tfvars.json").read_text()) == values
    terraform_init(module, plugin_env).check()
    plan = terraform(module, plugin_env, "plan", "-input=false", "-no-color", "-json")
    assert plan.returncode == 0, plan.stdout[-3000:] + plan.stderr
    lock = (module / ".terraform.lock.hcl").read_text()
    assert 'version     = "2.37.0"' in lock


def test_render_refuses_unknown_regions_and_an_empty_target_list() -> None:
    with pytest.raises(UsageError, match="cannot evacuate sfo3: not a region of fleet acme"):
        render_global_lb("acme", REGIONS, {"sfo3"})
    with pytest.raises(UsageError, match="no region to send traffic to"):
        render_global_lb("acme", REGIONS, set(REGIONS))
    with pytest.raises(UsageError, match="port 80 or 443"):
        render_global_lb("acme", REGIONS, set(), target_port=8080)
