"""Rendering is deterministic, secret-free, and the work folder keeps secrets private."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import hcl2
import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.render.markers import LATE_VALUES, SECRET_VALUES, segments
from tests.support.rendering import ROOT, on_node, rendered


def test_same_config_gives_byte_identical_output(tmp_path: Path) -> None:
    runner = CliRunner()
    for out in ("a", "b"):
        result = runner.invoke(cli, ["render", str(ROOT / "examples/production.yaml"),
                                     "--out", str(tmp_path / out)])
        assert result.exit_code == 0, result.stderr
    first = {p.relative_to(tmp_path / "a"): p.read_bytes()
             for p in sorted((tmp_path / "a").rglob("*")) if p.is_file()}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes()
              for p in sorted((tmp_path / "b").rglob("*")) if p.is_file()}
    assert first == second
    assert len(first) >= 15


def test_rendered_layout_is_self_contained() -> None:
    files = rendered("production")
    tf = {p for p in files if p.startswith("terraform/")}
    assert tf == {f"terraform/{n}" for n in (
        "versions.tf", "variables.tf", "network.tf", "api-endpoint.tf", "controllers.tf",
        "workers.tf", "project.tf", "outputs.tf", "image.tf", "terraform.tfvars.json",
        "backend.tf.json")}
    modules = [p for p in tf if p.endswith(".tf") and "module \"" in files[p]]
    assert modules == [], "the root module must not call modules from elsewhere"
    providers = hcl2.loads(files["terraform/versions.tf"])["terraform"][0]["required_providers"]
    names = [k for block in providers for k in block if not k.startswith("__")]
    assert names == ["digitalocean"]
    assert providers[0]["digitalocean"]["source"].strip('"') == "digitalocean/digitalocean"


def test_user_data_in_tfvars_is_the_rendered_cloud_init() -> None:
    files = rendered("production")
    user_data = json.loads(files["terraform/terraform.tfvars.json"])["user_data"]
    for role, parts in user_data.items():
        assert parts == segments(files[f"cloud-init/{role}.yaml"])
        refs = {p["ref"] for p in parts if "ref" in p}
        assert refs <= set(LATE_VALUES)
        assert "api_endpoint" in refs
    assert {p["ref"] for p in user_data["controller-init"] if "ref" in p} >= {
        "ca_crt_b64", "ca_key_b64", "bootstrap_token", "certificate_key"}
    assert not {p["ref"] for p in user_data["worker-general"] if "ref" in p} & {
        "ca_key_b64", "certificate_key", "failover_token"}, (
        "workers must never receive the CA key, the certificate key or an API token")
    assert "failover_token" in {p["ref"] for p in user_data["controller-join"] if "ref" in p}


def test_workdir_secrets_are_private_and_never_rendered(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples/production.yaml").read_text())
    result = CliRunner().invoke(cli, ["plan", str(config), "--offline"])
    assert result.exit_code == 0, result.stderr
    work = tmp_path / ".provision" / "prod"
    secrets_dir = work / "secrets"
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700
    secret_files = sorted(secrets_dir.iterdir())
    assert [p.name for p in secret_files] == [  # the example's backups: the recipient key
        "backup-recipient.key", "bootstrap.json", "ca.crt", "ca.key", "etcd-ca.crt",
        "etcd-ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"]
    for path in secret_files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    tokens = json.loads((secrets_dir / "bootstrap.json").read_text())
    key_body = (secrets_dir / "ca.key").read_text().splitlines()[1]
    backup_key_body = (secrets_dir / "backup-recipient.key").read_text().splitlines()[1]
    for path in work.rglob("*"):
        if path.is_file() and secrets_dir not in path.parents:
            text = path.read_text()
            assert tokens["bootstrap_token"] not in text, path
            assert tokens["certificate_key"] not in text, path
            assert key_body not in text, path
            assert backup_key_body not in text, path
            assert not stat.S_IMODE(path.stat().st_mode) & 0o002, path
    assert (work / ".gitignore").read_text().strip().endswith("*")
    assert tokens["bootstrap_token"] not in result.stdout + result.stderr


def test_second_plan_reuses_secrets(tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples/production.yaml").read_text())
    runner = CliRunner()
    runner.invoke(cli, ["plan", str(config), "--offline"])
    key = (tmp_path / ".provision/prod/secrets/ca.key").read_bytes()
    runner.invoke(cli, ["plan", str(config), "--offline"])
    assert (tmp_path / ".provision/prod/secrets/ca.key").read_bytes() == key


def test_removed_app_and_pool_files_are_pruned(tmp_path: Path) -> None:
    config = tmp_path / "env.yaml"
    data = yaml.safe_load((ROOT / "examples/production.yaml").read_text())
    config.write_text(yaml.safe_dump(data))
    runner = CliRunner()
    out = tmp_path / "out"
    (out / "manifests").mkdir(parents=True)
    (out / "manifests" / "mine.yaml").write_text("kept: true\n")  # not provision's file
    assert runner.invoke(cli, ["render", str(config), "--out", str(out)]).exit_code == 0
    assert (out / "manifests/app-elasticsearch.yaml").exists()
    data["apps"] = data["apps"][:1]
    data["worker_pools"].append({"name": "batch", "count": 1, "size": "c-4"})
    config.write_text(yaml.safe_dump(data))
    assert runner.invoke(cli, ["render", str(config), "--out", str(out)]).exit_code == 0
    assert not (out / "manifests/app-elasticsearch.yaml").exists()
    assert (out / "cloud-init/worker-batch.yaml").exists()
    assert (out / "manifests/mine.yaml").read_text() == "kept: true\n"


def test_control_plane_ships_the_failover_agent() -> None:
    import yaml

    from tests.support.agents import assert_ships

    for role in ("controller-init", "controller-join"):
        # As the node gets them: written by cloud-init or unpacked from the bundle.
        files = on_node(yaml.safe_load(rendered("production")[f"cloud-init/{role}.yaml"]))
        agent = files["/usr/local/lib/provision/failover.py"]
        assert_ships(agent.content, "failover")
        assert agent.mode == 0o755
        settings = files["/etc/provision/failover.json"]
        assert settings.mode == 0o600
        assert json.loads(settings.content)["token"] == "@@provision:failover_token@@"
    staging = yaml.safe_load(rendered("staging")["cloud-init/controller-init.yaml"])
    assert "/etc/provision/failover.json" in {f["path"] for f in staging["write_files"]}
    worker = yaml.safe_load(rendered("production")["cloud-init/worker-general.yaml"])
    assert "/etc/provision/failover.json" not in {f["path"] for f in worker["write_files"]}


def test_late_values_cover_every_secret() -> None:
    from tests.support.rendering import late_values

    assert set(late_values()) == set(LATE_VALUES)
    assert set(SECRET_VALUES) == set(LATE_VALUES) - {"api_endpoint", "vpc_id"}


def test_a_file_with_late_values_is_never_compressed() -> None:
    """Terraform splices the late values into the user-data as written: inside a gz+b64
    file a marker would stay a marker on the node."""
    import pytest

    from provisioner.errors import RenderError
    from provisioner.render.cloudinit import _packed_text
    from provisioner.render.markers import marker

    with pytest.raises(RenderError):
        _packed_text(f"token: {marker('bootstrap_token')}\n")
    import base64
    import gzip

    assert gzip.decompress(base64.b64decode(_packed_text("#!/bin/bash\n"))) == b"#!/bin/bash\n"
