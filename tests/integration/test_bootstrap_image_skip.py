"""The bootstrap script skips the installs a pre-baked image already has, and only those.

The rendered script (a worker's, and the first control plane's, which also needs keepalived)
is sourced without its ``main`` call, as tests/integration/test_addon_fetch.py does, and
``install_packages`` runs with ``PROVISION_ROOT`` at a temporary folder holding (or not)
``etc/provision/image.json`` as `provision image build`'s ``bake_image`` writes it. The
commands it would run are stand-ins on PATH that record their arguments (the subprocess
boundary): ``apt-get``, ``apt-cache`` (answering ``madison`` as apt-cache does:
``package | version | source``), ``apt-mark`` and ``curl`` (writing its ``-o`` file).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioner.render import packages
from tests.support.rendering import materialize, rendered, written

pytestmark = pytest.mark.integration

BOOTSTRAP = "/usr/local/sbin/provision-bootstrap"
VERSION = "1.36.2"  # examples/production.yaml

STUB = """#!/bin/bash
printf '%s\\n' "$(basename "$0") $*" >>"$STUB_LOG"
case "$(basename "$0") $1" in
  "apt-cache madison") echo " $2 | $STUB_VERSION-1.1 | https://example.invalid Packages";
                       echo " $2 | $STUB_CONTAINERD-1 | https://example.invalid Packages" ;;
  "curl "*) while (($#)); do if [[ $1 == -o ]]; then : >"$2"; fi; shift; done ;;
esac
"""


def library(tmp_path: Path, role: str) -> Path:
    config = yaml.safe_load(materialize(rendered("production")[f"cloud-init/{role}.yaml"]))
    (text,) = [written(f) for f in config["write_files"] if f["path"] == BOOTSTRAP]
    assert text.rstrip().endswith('\nmain "$@"')
    path = tmp_path / f"{role}.sh"
    path.write_text(text.rstrip().removesuffix('main "$@"'))
    return path


def install(tmp_path: Path, role: str, manifest: dict[str, object] | None
            ) -> tuple[int, list[str], str]:
    """Run install_packages; (exit status, commands run, the script's log)."""
    root = tmp_path / "root"
    (root / "etc/apt/sources.list.d").mkdir(parents=True)
    if manifest is not None:
        (root / "etc/provision").mkdir(parents=True)
        (root / "etc/provision/image.json").write_text(json.dumps(manifest))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name in ("apt-get", "apt-cache", "apt-mark", "curl"):
        (stubs / name).write_text(STUB)
        (stubs / name).chmod(0o755)
    log = tmp_path / "commands.log"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "PROVISION_ROOT": str(root),
           "STUB_LOG": str(log), "STUB_VERSION": VERSION,
           "STUB_CONTAINERD": packages.CONTAINERD}
    done = subprocess.run(["bash", "-c", 'source "$1" && install_packages', "bash",
                           str(library(tmp_path, role))],
                          env=env, capture_output=True, text=True, timeout=120)
    commands = log.read_text().splitlines() if log.exists() else []
    return done.returncode, commands, done.stderr


def baked(kubernetes: str = VERSION, containerd: str = packages.CONTAINERD) -> dict[str, object]:
    return {"kubernetes": kubernetes, "containerd": containerd,
            "components": ["containerd", "kubelet", "kubeadm", "kubectl"]}


def test_an_image_baked_for_this_release_installs_nothing(tmp_path: Path) -> None:
    code, commands, log = install(tmp_path, "worker-general", baked())
    assert code == 0, log
    assert commands == []
    assert f"Kubernetes {VERSION}: no package installs" in log


def test_the_first_control_plane_still_installs_keepalived(tmp_path: Path) -> None:
    code, commands, log = install(tmp_path, "controller-init", baked())
    assert code == 0, log
    assert [c for c in commands if c.startswith("apt-get")] == [
        "apt-get -o DPkg::Lock::Timeout=600 -q update",
        "apt-get -o DPkg::Lock::Timeout=600 -q install -y keepalived"]


@pytest.mark.parametrize("manifest", [
    None, baked(kubernetes="1.36.1"), baked(containerd="2.0.0"), {"kubernetes": VERSION}])
def test_any_other_image_installs_the_pinned_packages(tmp_path: Path,
                                                      manifest: dict[str, object] | None) -> None:
    code, commands, log = install(tmp_path, "worker-general", manifest)
    assert code == 0, log
    assert (f"apt-get -o DPkg::Lock::Timeout=600 -q install -y "
            f"containerd.io={packages.CONTAINERD}-1 kubelet={VERSION}-1.1 "
            f"kubeadm={VERSION}-1.1 kubectl={VERSION}-1.1") in commands
    assert "apt-mark hold kubelet kubeadm kubectl containerd.io" in commands
    if manifest is not None:
        assert "the image was baked for another release" in log
    sources = tmp_path / "root/etc/apt/sources.list.d/kubernetes.list"
    assert "/core:/stable:/v1.36/deb/" in sources.read_text()
