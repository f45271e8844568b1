"""`provision kubeconfig --merge` never silently takes over someone else's entries.

kubectl's own merge rule (k8s.io/client-go/tools/clientcmd/loader.go, "first file to set a
particular map key wins") means a second `prod` context is never added beside the first:
writing ours under the same name replaces the user's. So an existing cluster, user or
context of the same name is replaced only when it was made for this cluster (the cluster's
CA data, a client certificate issued by its CA, a context pointing at those), otherwise the
command refuses and says how to proceed. A symlinked kubeconfig (dotfiles repositories) is
written through to its target, atomically and 0600.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.pipeline.prepare import Prepared, prepare
from tests.support.rendering import ROOT

ENDPOINT = "203.0.113.10"


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    done = prepare(config, None)
    (done.work.root / "infrastructure.json").write_text(json.dumps({"api_endpoint": ENDPOINT}))
    return done


def _theirs() -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Config",
            "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443",
                                                      "certificate-authority-data": "Zm9v"}}],
            "users": [{"name": "prod-admin", "user": {"token": "their-token"}}],
            "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}}],
            "current-context": "prod"}


def _merge(prepared: Prepared, target: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner(env={"KUBECONFIG": str(target)}).invoke(
        cli, ["kubeconfig", str(prepared.config), "--merge", *extra])
    assert "Traceback" not in result.stderr and "internal error" not in result.stderr
    return result.exit_code, result.stderr


def test_an_unrelated_context_of_the_same_name_is_refused(prepared: Prepared,
                                                          tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(_theirs()))
    before = target.read_bytes()
    code, err = _merge(prepared, target)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "cluster 'prod' (server 'https://10.0.0.1:6443')" in lines[0]
    assert "user 'prod-admin'" in lines[0]
    assert "context 'prod' (cluster 'prod', user 'prod-admin')" in lines[0]
    assert "--context-name NAME" in lines[0] and "--force" in lines[0]
    assert target.read_bytes() == before, "nothing was changed"


def test_context_name_merges_beside_the_unrelated_one(prepared: Prepared,
                                                      tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(_theirs()))
    code, err = _merge(prepared, target, "--context-name", "prod-do")
    assert code == 0, err
    merged = yaml.safe_load(target.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["prod", "prod-do"]
    assert [u["name"] for u in merged["users"]] == ["prod-admin", "prod-do-admin"]
    assert merged["users"][0] == _theirs()["users"][0]
    assert merged["contexts"][1]["context"] == {"cluster": "prod-do", "user": "prod-do-admin"}
    assert merged["current-context"] == "prod"


def test_force_replaces_and_our_own_entries_are_updated_without_it(prepared: Prepared,
                                                                   tmp_path: Path) -> None:
    target = tmp_path / "config"
    target.write_text(yaml.safe_dump(_theirs()))
    code, err = _merge(prepared, target, "--force")
    assert code == 0, err
    first = yaml.safe_load(target.read_text())
    assert first["clusters"][0]["cluster"]["server"] == f"https://{ENDPOINT}:6443"
    # A new endpoint after a rebuild: the entries are ours now, so no --force is needed.
    (prepared.work.root / "infrastructure.json").write_text(
        json.dumps({"api_endpoint": "203.0.113.11"}))
    code, err = _merge(prepared, target)
    assert code == 0, err
    again = yaml.safe_load(target.read_text())
    assert [c["name"] for c in again["contexts"]] == ["prod"]
    assert again["clusters"][0]["cluster"]["server"] == "https://203.0.113.11:6443"


def test_a_symlinked_kubeconfig_is_written_through(prepared: Prepared, tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "kubeconfig"
    other = _theirs()
    for section in ("clusters", "users", "contexts"):
        for entry in other[section]:
            entry["name"] = "other" if section != "users" else "other-admin"
    real.write_text(yaml.safe_dump(other))
    os.chmod(real, 0o644)
    link = tmp_path / "kube" / "config"
    link.parent.mkdir()
    link.symlink_to(real)
    code, err = _merge(prepared, link)
    assert code == 0, err
    assert link.is_symlink() and os.readlink(link) == str(real)
    merged = yaml.safe_load(real.read_text())
    assert [c["name"] for c in merged["contexts"]] == ["other", "prod"]
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in dotfiles.iterdir()) == ["kubeconfig"], "no temporary left"
    assert f"-> {real}" in err


@pytest.mark.parametrize(("content", "expected"), [
    (b"\xff\xfe not utf-8", "is not a valid kubeconfig; not touching it"),
    (b"clusters: [1, 2]\n", "clusters is not a list of named entries"),
    (b"users: {a: b}\n", "users is not a list of named entries"),
    (b"- just\n- a list\n", "is not a valid kubeconfig; not touching it"),
    (b"contexts: [{context: {}}]\n", "contexts is not a list of named entries"),
    (b"key: [unclosed\n", "is not a valid kubeconfig; not touching it"),
])
def test_a_garbage_kubeconfig_is_left_alone(prepared: Prepared, tmp_path: Path,
                                            content: bytes, expected: str) -> None:
    target = tmp_path / "config"
    target.write_bytes(content)
    code, err = _merge(prepared, target)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and expected in err
    assert target.read_bytes() == content


@pytest.mark.parametrize("content", [b"{not json", b"\xff\xfe", b"[1, 2]", b"{}",
                                     b'{"api_endpoint": 5}'])
def test_a_garbage_infrastructure_record_is_a_usage_error(prepared: Prepared,
                                                          content: bytes) -> None:
    (prepared.work.root / "infrastructure.json").write_bytes(content)
    result = CliRunner().invoke(cli, ["kubeconfig", str(prepared.config)])
    assert result.exit_code == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "infrastructure.json" in lines[0], lines
    assert "internal error" not in result.stderr


def test_a_damaged_work_folder_kubeconfig_is_made_again(prepared: Prepared) -> None:
    (prepared.work.root / "kubeconfig").write_bytes(b"\xff\xfe\x00 damaged")
    result = CliRunner().invoke(cli, ["kubeconfig", str(prepared.config)])
    assert result.exit_code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["clusters"][0]["cluster"]["server"] == (
        f"https://{ENDPOINT}:6443")
