"""Relative and absolute paths from any working folder, as operators type them in a shell.

Every command runs as a real process with its own working folder (the README's Quick start
is `cd envs && provision plan prod.yaml`), against the real Terraform and the simulated
account. Terraform runs with the module folder as its working folder, so a path provision
hands it must not be relative to the user's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sim import Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path / "envs") as running:
        yield running


def test_every_command_works_from_the_config_folder_and_from_elsewhere(
        sim: Simulation, tmp_path: Path) -> None:
    home = sim.config.parent
    elsewhere = tmp_path / "elsewhere" / "deep"
    elsewhere.mkdir(parents=True)
    config = os.path.relpath(sim.config, elsewhere)  # ../../envs/prod.yaml

    # The README's Quick start: in the config's folder, a bare file name.
    assert sim.run_in(home, "validate", "prod.yaml").code == 0
    offline = sim.run_in(home, "plan", "prod.yaml", "--offline")
    assert offline.code == 0, offline.stderr
    planned = sim.run_in(home, "plan", "prod.yaml")
    assert planned.code == 0, planned.stderr
    assert "Plan: 1" in planned.stdout
    saved = sim.run_in(home, "plan", "prod.yaml", "--out", "reviewed.tfplan")
    assert saved.code == 0, saved.stderr
    assert (home / "reviewed.tfplan").is_file()

    # From an unrelated folder: the config and the saved plan by relative paths.
    plan_path = os.path.relpath(home / "reviewed.tfplan", elsewhere)
    applied = sim.run_in(elsewhere, "up", config, "--plan", plan_path, "--yes",
                         "--until", "infra")
    assert applied.code == 0, applied.stderr
    assert len(sim.droplet_names()) == 6
    converged = sim.run_in(elsewhere, "plan", config, "--exit-code")
    assert converged.code == 0, converged.stderr + converged.stdout
    again = sim.run_in(home, "up", "prod.yaml", "--yes", "--until", "infra")
    assert again.code == 0 and "nothing to do" in again.stderr, again.stderr
    status = sim.run_in(elsewhere, "status", config, "--output", "json")
    assert status.code == 0, status.stderr
    assert "prod-cp-1" in status.stdout

    # A relative --workdir is relative to where the command runs, like every other path.
    other = sim.run_in(elsewhere, "plan", config, "--workdir", "w", "--output", "json")
    assert other.code == 0, other.stderr
    assert (elsewhere / "w" / "terraform" / "versions.tf").is_file()

    gone = sim.run_in(elsewhere, "destroy", config, "--yes", "--force")
    assert gone.code == 0, gone.stderr
    assert sim.droplet_names() == []
    # Everything went to the work folder beside the config, whatever the working folder.
    assert not (elsewhere / ".provision").exists()
    assert (sim.workdir / "state" / "terraform.tfstate").is_file()
