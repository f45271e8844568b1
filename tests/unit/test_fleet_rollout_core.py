"""fleet/rollout.py on its own (the regions are recorded stand-ins; the CLI's real ones are
exercised in tests/integration/test_fleet_rollout.py): what stops a fleet and what does
not, with the clock pinned and moved only by the rollout's naps."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

import provisioner.clock
from provisioner.errors import ProvisionError
from provisioner.fleet.model import Fleet, Member
from provisioner.fleet.reader import load_fleet
from provisioner.fleet.rollout import GateBreached, roll_out
from tests.support.rendering import ROOT

ALL_OPEN = dt.datetime(2026, 3, 4, 14, 10, tzinfo=dt.UTC)  # every example window is open


@dataclass
class Reading:
    requests: int
    errors: int
    window_seconds: int = 300
    source: str = "test"
    detail: str = "lb"


@dataclass
class Recorded:
    """Regions that record what the rollout asked of them; readings by region."""

    readings: dict[str, Any]
    done: list[tuple[str, str]] = field(default_factory=list)

    def deploy(self, member: Member, override_reason: str | None, now: dt.datetime) -> str:
        self.done.append(("deploy", member.name))
        return "ok"

    def rollback(self, member: Member) -> str:
        self.done.append(("rollback", member.name))
        return "back"

    def read_gate(self, member: Member, now: dt.datetime) -> Any:
        self.done.append(("read", member.name))
        found = self.readings[member.name]
        if isinstance(found, Exception):
            raise found
        return found


@pytest.fixture
def fleet(monkeypatch: pytest.MonkeyPatch) -> Fleet:
    now = [ALL_OPEN]
    monkeypatch.setattr(provisioner.clock, "now", lambda: now[0])

    def nap(seconds: float) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    monkeypatch.setattr("provisioner.fleet.rollout.nap", nap)
    return load_fleet(ROOT / "examples" / "fleet" / "fleet.yaml")


def test_too_little_traffic_stops_without_rolling_back(fleet: Fleet) -> None:
    regions = Recorded({"fra1": Reading(120, 0), "ams3": Reading(5000, 0),
                        "nyc3": Reading(5000, 0)})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert isinstance(result.error, ProvisionError) and result.error.exit_code == 1
    assert "fra1: the gate could not judge the release: fewer than gate.min_requests 500" in (
        str(result.error))
    assert ("rollback", "fra1") not in regions.done
    assert {name for verb, name in regions.done} == {"fra1"}, "ams3 and nyc3 untouched"
    assert [o.status for o in result.outcomes] == ["failed", "skipped", "skipped"]


def test_a_gate_that_cannot_be_read_stops_the_fleet(fleet: Fleet) -> None:
    regions = Recorded({"fra1": ProvisionError("monitoring API answered 503")})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert result.error is not None and "503" in str(result.error)
    assert regions.done == [("deploy", "fra1"), ("read", "fra1")]
    # The fleet's exit code is its outcomes' worst: the region whose gate failed carries it.
    assert [(o.status, o.exit_code) for o in result.outcomes] == [
        ("failed", 1), ("skipped", 0), ("skipped", 0)]


def test_a_breach_names_region_ratio_and_threshold(fleet: Fleet) -> None:
    regions = Recorded({"fra1": Reading(1000, 20)})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert isinstance(result.error, GateBreached)
    assert str(result.error).startswith(
        "fra1: the 5xx ratio 0.0200 (20 of 1000 responses in the last 5m) is above "
        "gate.max_5xx_ratio 0.01")
    assert regions.done == [("deploy", "fra1"), ("read", "fra1"), ("rollback", "fra1")]


def test_exactly_at_the_threshold_is_no_breach(fleet: Fleet, tmp_path: Path) -> None:
    regions = Recorded(dict.fromkeys(("fra1", "ams3", "nyc3"), Reading(1000, 10)))
    result = roll_out(fleet, regions, report=lambda line: None)
    assert result.error is None
    assert [o.status for o in result.outcomes] == ["ok", "ok", "ok"]
