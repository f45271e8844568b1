"""The node agents travel in user-data as their code without docstrings, and it still fits.

cloud-init writes a ``write_files`` entry with ``encoding: gz+b64`` decoded
(cloudinit/config/cc_write_files.py, ``extract_contents``; tests/support/rendering.written);
DigitalOcean refuses user-data over 64 KiB, the limit provisioner/render/artefacts.py
enforces with the late values at their longest.
"""

from __future__ import annotations

import ast

import pytest
import yaml

from provisioner.config.model import Backups
from provisioner.render import artefacts, cloudinit
from provisioner.render.agents import shipped_text
from tests.support.agents import AGENTS, NAMES, ON_NODE, assert_ships
from tests.support.rendering import example, materialize, rendered, written

# Room kept under the limit for what the next change adds before anyone measures again.
MARGIN = 2 * 1024


def _shipped(role: str) -> dict[str, str]:
    config = yaml.safe_load(materialize(rendered("production")[f"cloud-init/{role}.yaml"]))
    return {f["path"]: written(f) for f in config["write_files"]}


@pytest.mark.parametrize("role", ["controller-init", "controller-join"])
@pytest.mark.parametrize("name", NAMES)
def test_each_agent_ships_as_its_code_minus_docstrings(role: str, name: str) -> None:
    files = _shipped(role)
    shipped = files[ON_NODE[name]]
    assert_ships(shipped, name)
    source = (AGENTS / f"{name}.py").read_text(encoding="utf-8")
    if ast.get_docstring(ast.parse(source)) is not None:
        assert len(shipped) < len(source), name


def test_workers_ship_no_control_plane_agent() -> None:
    files = _shipped("worker-general")
    assert not set(ON_NODE.values()) & set(files)


def test_a_check_that_can_fail() -> None:
    """The comparison catches a changed statement, not only a lost docstring."""
    source = (AGENTS / "csr_approver.py").read_text(encoding="utf-8")
    shipped = shipped_text(source)
    with pytest.raises(AssertionError):
        assert_ships(shipped.replace("return", "return None or", 1), "csr_approver")


def test_production_with_backups_fits_with_margin(capsys: pytest.CaptureFixture[str]) -> None:
    env = example("production")
    assert isinstance(env.backups, Backups), "the example shows the backups section"
    estimates = {item.role: artefacts.estimate(item) for item in cloudinit.all_roles(env)}
    with capsys.disabled():
        print("\n[user-data] estimated bytes with late values: "
              + ", ".join(f"{role} {size}" for role, size in estimates.items())
              + f" (limit {artefacts.USER_DATA_LIMIT})")
    for role, size in estimates.items():
        assert size + MARGIN <= artefacts.USER_DATA_LIMIT, (role, size)
