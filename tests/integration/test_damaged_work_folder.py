"""Damaged files in the work folder during the online commands, with real Terraform.

The unit table (tests/unit/test_hostile_inputs.py) covers what can be tried without
Terraform; these need an apply or a destroy to reach the code that reads the files.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        running.write_config(example="staging", edit=lambda d: d.update(apps=[]))
        yield running


def test_a_damaged_infrastructure_record_does_not_stop_the_sweep(sim: Simulation) -> None:
    """The record is read after a successful destroy, only for the floating IP's address."""
    up = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert up.code == 0, up.stderr
    (sim.workdir / "infrastructure.json").write_bytes(b"\xff\xfe{ not json")
    gone = sim.run("destroy", str(sim.config), "--yes")
    assert "internal error" not in gone.stderr and "Traceback" not in gone.stderr
    assert gone.code == 0, gone.stderr
    assert "infrastructure.json is not the JSON provision writes" in gone.stderr
    assert sim.droplet_names() == []


def test_damaged_terraform_state_is_a_reported_failure(sim: Simulation) -> None:
    (sim.workdir / "state").mkdir(parents=True)
    (sim.workdir / "state" / "terraform.tfstate").write_bytes(b"\x00garbage{")
    planned = sim.run("plan", str(sim.config))
    # A damaged work-folder file is the user's to fix (exit 2); whether that state held a
    # cluster cannot be told, so provision neither makes a CA nor lets Terraform start.
    assert planned.code == 2, planned.stderr
    assert "internal error" not in planned.stderr and "Traceback" not in planned.stderr
    assert "terraform.tfstate is damaged" in planned.stderr
    assert "terraform.tfstate.backup" in planned.stderr
    assert not (sim.workdir / "secrets" / "ca.key").exists()
    assert sim.droplet_names() == []


def test_a_damaged_kubeconfig_is_named_not_an_internal_error(sim: Simulation) -> None:
    """`up` reads the work folder's kubeconfig to ask the running cluster (nodes an earlier
    rollout cordoned, join credentials): a damaged one is the operator's to mend, named
    (exit 2), and never quoted (it holds the client key)."""
    assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
    kubeconfig = sim.workdir / "kubeconfig"
    kubeconfig.write_text("client-key-data: c2VjcmV0\n  : [unclosed\n")
    again = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert again.code == 2, again.stderr
    assert f"cannot use the kubeconfig {kubeconfig}" in again.stderr
    assert "internal error" not in again.stderr and "c2VjcmV0" not in again.stderr
