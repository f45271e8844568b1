"""Preflight asks the Kubernetes package index whether the requested patch release exists.

The nodes install kubelet, kubeadm and kubectl from ``pkgs.k8s.io/core:/stable:/v<minor>/
deb/`` and look the release up with ``apt-cache madison kubeadm``
(templates/scripts/bootstrap.sh.j2); a release missing there used to fail only on the first
droplet, after the infrastructure was created. These tests run the check (and the real
`provision plan`) against tests/support/k8s_packages.py, a stand-in serving indexes shaped
like the real ones (see its docstring for what the real index looks like), through the
internal PROVISION_KUBERNETES_PACKAGES_URL.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml

from provisioner.cloud.releases import HOST_ENV, check_release, kubeadm_releases
from provisioner.config import load_environment
from provisioner.errors import EXIT_USAGE, ConfigError
from tests.support.k8s_packages import package_repositories, packages_index
from tests.support.rendering import ROOT
from tests.support.sim import simulation

pytestmark = pytest.mark.integration


def environment_file(tmp_path: Path, version: str) -> tuple[Path, int]:
    """The production example asking for `version`; and the line of its `version:` key."""
    text = (ROOT / "examples" / "production.yaml").read_text()
    text = text.replace('version: "1.36.2"', f'version: "{version}"')
    path = tmp_path / "prod.yaml"
    path.write_text(text)
    (line,) = [n for n, row in enumerate(text.splitlines(), 1)
               if row.strip().startswith("version:") and version in row]
    return path, line


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_index_parser_reads_releases_of_kubeadm_builds_only() -> None:
    index = packages_index("1.36", ["1.36.0", "1.36.2"])
    assert kubeadm_releases(index) == {"1.36.0", "1.36.2"}  # not cri-tools' 1.36.0-1.1 alone
    assert kubeadm_releases(packages_index("1.36", [])) == set()


@pytest.mark.parametrize("gzipped", [False, True])
def test_a_published_release_passes_quietly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            gzipped: bool) -> None:
    config, _ = environment_file(tmp_path, "1.36.2")
    warnings: list[str] = []
    with package_repositories(gzipped=gzipped) as repos:
        monkeypatch.setenv(HOST_ENV, repos.url)
        check_release(load_environment(config), config, warnings.append)
    assert repos.requested == ["/core:/stable:/v1.36/deb/Packages"]
    assert warnings == []


def test_a_missing_patch_release_is_the_files_error_naming_the_newest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, line = environment_file(tmp_path, "1.36.9")
    with package_repositories() as repos:
        monkeypatch.setenv(HOST_ENV, repos.url)
        with pytest.raises(ConfigError) as caught:
            check_release(load_environment(config), config, pytest.fail)
    assert caught.value.exit_code == EXIT_USAGE
    assert str(caught.value) == (
        f"{config}:{line}: kubernetes.version: Kubernetes 1.36.9 does not exist in "
        f"{repos.url}/core:/stable:/v1.36/deb/ (where the nodes install it from); the newest "
        '1.36 patch release is 1.36.3 (write version: "1.36.3")')


def test_a_minor_without_a_repository_is_the_files_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config, line = environment_file(tmp_path, "1.37.0")
    with package_repositories({"1.35": ["1.35.1"], "1.36": ["1.36.2"]}) as repos:
        monkeypatch.setenv(HOST_ENV, repos.url)
        with pytest.raises(ConfigError) as caught:
            check_release(load_environment(config), config, pytest.fail)
    assert str(caught.value).startswith(
        f"{config}:{line}: kubernetes.version: Kubernetes 1.37 has no package repository")
    assert repos.requested == ["/core:/stable:/v1.37/deb/Packages",
                               "/core:/stable:/v1.37/deb/Release.key"]


@pytest.mark.parametrize("trouble", ["unreachable", "server error", "no kubeadm",
                                     "truncated gzip"])
def test_an_index_that_cannot_answer_only_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 trouble: str) -> None:
    config, _ = environment_file(tmp_path, "1.36.9")
    warnings: list[str] = []
    releases = {"1.36": []} if trouble == "no kubeadm" else None
    status = 503 if trouble == "server error" else None
    with package_repositories(releases, status=status,
                              truncated=trouble == "truncated gzip") as repos:
        url = f"http://127.0.0.1:{closed_port()}" if trouble == "unreachable" else repos.url
        monkeypatch.setenv(HOST_ENV, url)
        check_release(load_environment(config), config, warnings.append)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("warning: ")
    assert "Kubernetes 1.36.9 was not checked; the nodes check it when they install" in (
        warnings[0])


def test_plan_stops_before_the_cloud_on_a_release_that_does_not_exist(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        sim.write_config(edit=lambda d: d["kubernetes"].update(version="1.36.9"))
        result = sim.run("plan", str(sim.config))
        assert result.code == 2, result.stderr
        assert "kubernetes.version: Kubernetes 1.36.9 does not exist" in result.stderr
        assert "the newest 1.36 patch release is 1.36.3" in result.stderr
        assert "Traceback" not in result.stderr
        assert sim.droplet_names() == []
        assert not (sim.workdir / "plans" / "plan.tfplan").exists()


def test_plan_goes_on_with_a_warning_when_the_index_is_unreachable(tmp_path: Path) -> None:
    extra = {HOST_ENV: f"http://127.0.0.1:{closed_port()}"}
    with simulation(tmp_path, extra) as sim:
        doc = yaml.safe_load(sim.config.read_text())
        assert doc["kubernetes"]["version"] == "1.36.2"
        result = sim.run("plan", str(sim.config))
        assert result.code == 0, result.stderr
        assert "warning: could not read the Kubernetes package index" in result.stderr
        assert "Infrastructure changes for prod:" in result.stdout + result.stderr
