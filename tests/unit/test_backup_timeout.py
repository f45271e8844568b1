"""`provision backup --timeout`: a number of seconds from 1 to 86400, never nan.

click.FloatRange checks its bounds with ``<`` and ``>`` (click/types.py ``_NumberRangeBase
.convert``), and every comparison with nan is false (IEEE 754), so nan passed it and the wait
never ended. The refusal comes before the file is read or the cluster asked.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.support.rendering import ROOT

CONFIG = str(ROOT / "examples" / "production.yaml")


@pytest.mark.parametrize("value", ["nan", "NaN", "-nan", "inf", "0", "86401"])
def test_a_timeout_that_is_not_a_finite_wait_exits_2(value: str) -> None:
    result = CliRunner().invoke(cli, ["backup", CONFIG, f"--timeout={value}"])
    assert result.exit_code == 2, result.output
    assert "Invalid value for '--timeout'" in result.output
    assert "Traceback" not in result.output
