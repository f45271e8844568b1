"""Real Terraform checks the rendered root module against DigitalOcean's real provider schema.

The provider is the project's fake (tests/fakes/doprovider) serving the schema dump of
digitalocean/digitalocean 2.34.1, so `validate` catches unknown or misspelt attributes,
missing required ones and wrong types exactly as the real provider would; `plan` and `apply`
also type-check terraform.tfvars.json and run the module's expressions for real.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from provisioner.render.markers import SECRET_VALUES
from provisioner.render.names import all_names, worker_keys
from provisioner.render.writer import write_tree
from tests.oracles.terraform import (
    copy_module,
    format_diagnostics,
    prepare_plugin_env,
    state_resources,
    terraform,
    terraform_apply,
    terraform_init,
    terraform_show_state,
    terraform_validate,
)
from tests.support.rendering import example, late_values, materialize, rendered

pytestmark = pytest.mark.oracle


def _module(tmp_path: Path, example: str) -> Path:
    out = tmp_path / "rendered"
    write_tree(out, rendered(example))
    return out / "terraform"


@pytest.fixture
def plugin_env(tmp_path: Path) -> dict[str, str]:
    return prepare_plugin_env(tmp_path / "tf", token="sim-token", projects=["Acme Production"])


@pytest.mark.parametrize("example", ["production", "staging"])
def test_rendered_module_is_formatted_and_valid(example: str, tmp_path: Path,
                                                plugin_env: dict[str, str]) -> None:
    module = _module(tmp_path, example)
    fmt = terraform(module, plugin_env, "fmt", "-check", "-diff")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert ok, format_diagnostics(diagnostics)


@pytest.mark.parametrize(("file", "old", "new", "expected"), [
    ("controllers.tf", "  size     = var.controller_size", "  sizee    = var.controller_size",
     "sizee"),
    ("network.tf", "  ip_range = var.vpc_cidr", "  ip_range = var.vpc_cidr\n  colour   = \"red\"",
     "colour"),
    ("api-endpoint.tf", "  region = var.region\n\n  lifecycle", "\n  lifecycle", "region"),
    ("controllers.tf", "  monitoring        = true", "  monitoring        = [true]",
     "monitoring"),
    ("network.tf", "resource \"digitalocean_vpc\"", "resource \"digitalocean_vpcc\"",
     "digitalocean_vpcc"),
])
def test_validate_bites_on_broken_modules(file: str, old: str, new: str, expected: str,
                                          tmp_path: Path, plugin_env: dict[str, str]) -> None:
    module = _module(tmp_path, "production")
    text = (module / file).read_text()
    assert old in text, f"fixture drifted: {old!r} not in {file}"
    (module / file).write_text(text.replace(old, new, 1))
    ok, diagnostics = terraform_validate(module, plugin_env)
    assert not ok
    assert expected in format_diagnostics(diagnostics)


def test_apply_splices_late_values_into_user_data_exactly(tmp_path: Path,
                                                          plugin_env: dict[str, str]) -> None:
    """Terraform's join of the segments equals provision's own join, byte for byte."""
    work = copy_module(_module(tmp_path, "production"), tmp_path / "work")
    secrets = tmp_path / "secrets.tfvars.json"
    values = late_values()
    secrets.write_text(json.dumps({"bootstrap_secrets": {
        k: v for k, v in values.items() if k in SECRET_VALUES}}))
    terraform_init(work, plugin_env).check()
    terraform_apply(work, plugin_env, f"-var-file={secrets}").check()
    resources = state_resources(terraform_show_state(work, plugin_env))
    ip = resources["digitalocean_reserved_ip.api[0]"]["ip_address"]
    vpc = resources["digitalocean_vpc.network"]["id"]
    assert not any(a.startswith("digitalocean_reserved_ip_assignment") for a in resources), (
        "the nodes own the floating IP's assignment, never Terraform")
    files = rendered("production")
    general_3 = worker_keys(example("production"))["general"][2]
    for address, role in [("digitalocean_droplet.controllers[0]", "controller-init"),
                          ("digitalocean_droplet.controllers[1]", "controller-join"),
                          (f'digitalocean_droplet.workers["{general_3}"]', "worker-general")]:
        text = files[f"cloud-init/{role}.yaml"]
        expected = materialize(text).replace(values["api_endpoint"], ip).replace(
            values["vpc_id"], vpc)
        stored = resources[address]["user_data"]
        # The provider keeps only the SHA-1 of user_data in state, as the real one does.
        assert stored == hashlib.sha1(expected.encode()).hexdigest(), address
    names = sorted(r["name"] for a, r in resources.items() if a.startswith("digitalocean_droplet"))
    assert names == sorted(all_names(example("production")))
    firewall = resources["digitalocean_firewall.controllers"]
    ports = sorted(rule.get("port_range") or "" for rule in firewall["inbound_rule"])
    assert ports == sorted(["6443", "2379-2380", "22", "10250", "4789", "8473", ""])
