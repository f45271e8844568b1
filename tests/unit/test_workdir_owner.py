"""A work folder belongs to one environment (provisioner/workdir.py): its `environment` record
names it, and another environment's file is refused there before anything is written."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.support.rendering import ROOT


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "staging.yaml"
    config.write_text((ROOT / "examples" / "staging.yaml").read_text())
    return config


def test_the_record_is_written_and_another_environment_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    workdir = tmp_path / ".provision" / "staging"
    assert CliRunner().invoke(cli, ["plan", str(config), "--offline"]).exit_code == 0
    assert (workdir / "environment").read_text() == "staging\n"

    other = tmp_path / "other.yaml"
    other.write_text(config.read_text().replace("name: staging", "name: other", 1))
    before = sorted(p.name for p in workdir.iterdir())
    refused = CliRunner().invoke(cli, ["plan", str(other), "--offline", "--workdir",
                                       str(workdir)])
    assert refused.exit_code == 2, refused.output
    assert f"the work folder {workdir} belongs to the environment 'staging', not to " \
           "'other'" in refused.stderr
    assert sorted(p.name for p in workdir.iterdir()) == before


def test_a_fifo_as_the_record_is_refused_not_waited_on(tmp_path: Path) -> None:
    """Reading a FIFO blocks until a writer comes (fifo(7)): the record is opened
    non-blocking and must be a regular file."""
    config = _config(tmp_path)
    workdir = tmp_path / ".provision" / "staging"
    workdir.mkdir(parents=True)
    os.mkfifo(workdir / "environment")
    run = subprocess.run([sys.executable, "-m", "provisioner", "plan", str(config), "--offline"],
                         capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert run.returncode == 2, run.stderr
    assert "environment (the name of the environment this folder belongs to)" in run.stderr
    assert "not a regular file" in run.stderr and "Traceback" not in run.stderr
