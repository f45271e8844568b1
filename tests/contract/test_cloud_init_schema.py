"""cloud-init's own schema validator accepts every rendered cloud-config."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.rendering import materialize, rendered

pytestmark = pytest.mark.oracle
CLOUD_INIT = shutil.which("cloud-init")
CASES = [(name, path) for name in ("production", "staging")
         for path in sorted(rendered(name)) if path.startswith("cloud-init/")]


def _schema(path: Path) -> subprocess.CompletedProcess[str]:
    assert CLOUD_INIT, "cloud-init is not installed (apt-get install cloud-init)"
    return subprocess.run([CLOUD_INIT, "schema", "--config-file", str(path)],
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("example", "path"), CASES)
def test_rendered_cloud_config_passes_cloud_init_schema(example: str, path: str,
                                                        tmp_path: Path) -> None:
    target = tmp_path / "user-data.yaml"
    target.write_text(materialize(rendered(example)[path]))
    result = _schema(target)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid cloud-config" in result.stdout


@pytest.mark.parametrize("path", [p for e, p in CASES if e == "production"])
def test_cloud_config_as_written_to_disk_is_valid_too(path: str, tmp_path: Path) -> None:
    """The file a user opens (markers still in place) is itself a valid cloud-config."""
    target = tmp_path / "as-rendered.yaml"
    target.write_text(rendered("production")[path])
    result = _schema(target)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_role_is_rendered() -> None:
    roles = {p for p in rendered("production") if p.startswith("cloud-init/")}
    assert roles == {"cloud-init/controller-init.yaml", "cloud-init/controller-join.yaml",
                     "cloud-init/worker-general.yaml"}
    assert {p for p in rendered("staging") if p.startswith("cloud-init/")} == {
        "cloud-init/controller-init.yaml", "cloud-init/worker-general.yaml"}


def test_oracle_rejects_a_broken_cloud_config(tmp_path: Path) -> None:
    """The oracle bites: write_files without a path and a bad encoding are refused."""
    text = materialize(rendered("staging")["cloud-init/worker-general.yaml"])
    document = yaml.safe_load(text)
    del document["write_files"][0]["path"]
    document["write_files"][1]["encoding"] = "rot13"
    target = tmp_path / "broken.yaml"
    target.write_text("#cloud-config\n" + yaml.safe_dump(document))
    result = _schema(target)
    assert result.returncode != 0
    assert "path" in result.stdout + result.stderr


@pytest.mark.parametrize("example", ["production", "staging"])
def test_image_build_cloud_config_passes_cloud_init_schema(example: str, tmp_path: Path) -> None:
    """`provision image build`'s user-data, power_state (mode, condition, timeout) included:
    cloud-init's cc_power_state_change schema."""
    from provisioner.render.cloudinit import image_builder
    from tests.support.rendering import example as load_example

    target = tmp_path / "image.yaml"
    target.write_text(image_builder(load_example(example)).text)
    result = _schema(target)
    assert result.returncode == 0, result.stdout + result.stderr
