"""`digitalocean.image: snapshot:<name>`: the module resolves the name to the snapshot's id
through data.digitalocean_droplet_snapshot, checked by real Terraform against the pinned
provider schema (2.34.1: the data source takes name, region and most_recent and returns the
id; tests/data/digitalocean-provider-schema-2.34.1.json), then planned and applied on the
simulated account, whose data source follows the provider's read
(datasource_digitalocean_droplet_snapshot.go: exact name, then region, most_recent picks
the newest, none found is an error).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from provisioner.config import load_environment
from provisioner.render import render_environment
from provisioner.render.markers import SECRET_VALUES
from provisioner.render.names import all_names
from provisioner.render.writer import write_tree
from tests.fakes.doprovider.cloud import Cloud
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
from tests.support.rendering import ROOT, late_values

pytestmark = pytest.mark.oracle

NAME = "provision-prod-k8s-1.36.2-20261208t002025z"


def _module(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "production.yaml").read_text()
    assert "\n  image:" not in text
    text = text.replace("\ndigitalocean:\n", f"\ndigitalocean:\n  image: snapshot:{NAME}\n", 1)
    (tmp_path / "production.yaml").write_text(text)
    env = load_environment(tmp_path / "production.yaml")
    assert env.digitalocean.snapshot == NAME
    out = tmp_path / "rendered"
    write_tree(out, render_environment(env))
    values = json.loads((out / "terraform" / "terraform.tfvars.json").read_text())
    assert (values["image"], values["image_snapshot"]) == ("ubuntu-24-04-x64", NAME)
    return out / "terraform"


def _snapshot(state: Path, sid: str, name: str, region: str, created: str) -> None:
    with Cloud(state).transaction() as account:
        account.put("digitalocean_droplet_snapshot", {
            "id": sid, "name": name, "regions": [region], "created_at": created,
            "resource_id": "400000001", "resource_type": "droplet", "min_disk_size": 25,
            "size_gigabytes": 2.5, "tags": []})


def _apply(tmp_path: Path, module: Path, env: dict[str, str]) -> tuple[int, str, Path]:
    work = copy_module(module, tmp_path / "work")
    secrets = tmp_path / "secrets.tfvars.json"
    secrets.write_text(json.dumps({"bootstrap_secrets": {
        k: v for k, v in late_values().items() if k in SECRET_VALUES}}))
    terraform_init(work, env).check()
    result = terraform_apply(work, env, f"-var-file={secrets}")
    return result.returncode, result.stdout + result.stderr, work


def test_module_with_a_snapshot_image_is_valid(tmp_path: Path) -> None:
    env = prepare_plugin_env(tmp_path / "tf", token="sim-token", projects=["Acme Production"])
    module = _module(tmp_path)
    fmt = terraform(module, env, "fmt", "-check", "-diff")
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
    ok, diagnostics = terraform_validate(module, env)
    assert ok, format_diagnostics(diagnostics)


def test_droplets_start_from_the_newest_snapshot_of_that_name_in_the_region(
        tmp_path: Path) -> None:
    state = tmp_path / "account.json"
    env = prepare_plugin_env(tmp_path / "tf", token="sim-token", state_file=state,
                             projects=["Acme Production"])
    _snapshot(state, "170000001", NAME, "fra1", "2026-12-01T00:00:00Z")
    _snapshot(state, "170000002", NAME, "fra1", "2026-12-02T00:00:00Z")
    _snapshot(state, "170000003", NAME, "nyc3", "2026-12-03T00:00:00Z")  # another region
    code, output, work = _apply(tmp_path, _module(tmp_path), env)
    assert code == 0, output
    resources = state_resources(terraform_show_state(work, env))
    images = {a: r["image"] for a, r in resources.items()
              if a.startswith("digitalocean_droplet.")}
    assert len(images) == 6 and set(images.values()) == {"170000002"}, images
    # Worker keys hash the file's image reference, as provision computes them offline.
    names = sorted(r["name"] for a, r in resources.items() if a.startswith("digitalocean_droplet"))
    assert names == sorted(all_names(load_environment(tmp_path / "production.yaml")))


def test_a_missing_snapshot_stops_the_plan(tmp_path: Path) -> None:
    state = tmp_path / "account.json"
    env = prepare_plugin_env(tmp_path / "tf", token="sim-token", state_file=state,
                             projects=["Acme Production"])
    _snapshot(state, "170000003", NAME, "nyc3", "2026-12-03T00:00:00Z")  # not in fra1
    code, output, _ = _apply(tmp_path, _module(tmp_path), env)
    assert code != 0
    assert f"No DROPLET snapshot found with name {NAME}" in output
