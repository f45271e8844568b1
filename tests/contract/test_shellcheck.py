"""shellcheck passes on every shell script provision ships inside user-data."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from provisioner.render.cloudinit import image_builder
from tests.support.rendering import example, materialize, on_node, rendered, written

pytestmark = pytest.mark.oracle
SHELLCHECK = shutil.which("shellcheck")


def _scripts() -> list[tuple[str, str, str]]:
    found = []
    for name in ("production", "staging"):
        # `provision image build`'s droplet runs the same script in role "image".
        # It carries no bundle: its one file is the script.
        image = yaml.safe_load(image_builder(example(name)).text)
        for file in image["write_files"]:
            found.append((f"{name}:image:{file['path']}", file["path"], written(file)))
        for path, text in sorted(rendered(name).items()):
            if path.startswith("cloud-init/"):
                # Every file the node gets: written by cloud-init or unpacked from the bundle.
                for target, file in on_node(yaml.safe_load(materialize(text))).items():
                    content = file.content
                    if content.split("\n", 1)[0] in ("#!/bin/bash", "#!/bin/sh"):
                        found.append((f"{name}:{path}:{target}", target, content))
    return found


SCRIPTS = _scripts()


def _shellcheck(path: Path) -> subprocess.CompletedProcess[str]:
    assert SHELLCHECK, "shellcheck is not installed (apt-get install shellcheck)"
    return subprocess.run([SHELLCHECK, "--severity=style", "--shell=bash", str(path)],
                          capture_output=True, text=True, timeout=60)


def test_scripts_are_found() -> None:
    names = {target for _, target, _ in SCRIPTS}
    assert names == {"/usr/local/sbin/provision-bootstrap",
                     "/usr/local/sbin/provision-metadata-guard"}


@pytest.mark.parametrize(("label", "target", "content"), SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_script_passes_shellcheck(label: str, target: str, content: str, tmp_path: Path) -> None:
    script = tmp_path / Path(target).name
    script.write_text(content)
    result = _shellcheck(script)
    assert result.returncode == 0, result.stdout


def test_shellcheck_bites(tmp_path: Path) -> None:
    script = tmp_path / "bad.sh"
    script.write_text("#!/bin/bash\nrm -rf $DIR/*\n")
    assert _shellcheck(script).returncode != 0


def test_shipped_shell_scripts_pass_shellcheck() -> None:
    """Scripts in the repository itself (CI entry point, test fakes' wrappers)."""
    root = Path(__file__).resolve().parents[2]
    shipped = [root / ".ci" / "run",
               *sorted((root / "tests" / "fakes").rglob("terraform-provider-*"))]
    assert len(shipped) >= 2
    for script in shipped:
        result = _shellcheck(script)
        assert result.returncode == 0, f"{script}: {result.stdout}"
