"""One freeze calendar: `up` and `destroy` against a simulated DigitalOcean are held back by
the production example's deploy windows (Mon-Thu 09:00-16:00 Europe/Berlin) and its year-end
freeze (2026-12-21..2027-01-04) when they would change the infrastructure.

The clock is pinned per step (tests/support/clock.py), so these pass at any hour and day.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.support import clock
from tests.support.rendering import set_workers
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

IN_FREEZE = dt.datetime(2026, 12, 24, 10, 0, tzinfo=dt.UTC)  # a Thursday, 11:00 in Berlin
SATURDAY = clock.OUTSIDE_WINDOWS  # 2026-03-07 04:00 in Berlin
UP = ("--yes", "--until", "infra")


@pytest.fixture
def sim(tmp_path: Path) -> Any:
    with simulation(tmp_path) as running:
        yield running


def _scale(sim: Simulation, count: int, applies_to: list[str] | None = None) -> None:
    def edit(doc: dict[str, Any]) -> None:
        set_workers(doc["worker_pools"][0], count)
        if applies_to is not None:
            doc["deploy_policy"]["applies_to"] = applies_to
    sim.write_config(edit=edit)


def _workers(sim: Simulation) -> int:
    return sum(1 for name in sim.droplet_names() if "-general-" in name)


def _overrides(sim: Simulation) -> list[dict[str, Any]]:
    path = sim.workdir / "window-overrides.json"
    return list(json.loads(path.read_text())) if path.exists() else []


def test_infrastructure_changes_follow_the_windows_and_freezes(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    config = str(sim.config)
    clock.pin(monkeypatch, IN_FREEZE)

    # The first creation: nothing runs yet that a freeze protects.
    first = sim.run("up", config, *UP)
    assert first.code == 0, first.stderr
    assert "first creation of prod" in first.stderr
    assert _workers(sim) == 3
    # A plan without changes is never refused.
    same = sim.run("up", config, *UP)
    assert same.code == 0, same.stderr
    assert "nothing to do" in same.stderr

    # A change inside the freeze: refused after planning, before anything is applied.
    _scale(sim, 4)
    ids = {d["name"]: d["id"] for d in sim.resources("digitalocean_droplet")}
    frozen = sim.run("up", config, *UP)
    assert frozen.code == 3, frozen.stderr
    assert ("error: infrastructure changes to prod are not allowed now: inside the freeze "
            "2026-12-21..2027-01-04 (year-end freeze); next allowed 2027-01-05T09:00+01:00; "
            "nothing was applied. Use --override-window --reason TEXT if it cannot wait."
            ) in frozen.stderr
    assert {d["name"]: d["id"] for d in sim.resources("digitalocean_droplet")} == ids

    # The same change outside the windows, a Saturday.
    clock.pin(monkeypatch, SATURDAY)
    weekend = sim.run("up", config, *UP)
    assert weekend.code == 3, weekend.stderr
    assert ("outside the deploy windows (mon-thu 09:00-16:00 Europe/Berlin); next allowed "
            "2026-03-09T09:00+01:00; nothing was applied") in weekend.stderr
    assert _workers(sim) == 3

    # Overridden with a reason: applied, the override said and recorded.
    clock.pin(monkeypatch, IN_FREEZE)
    monkeypatch.setenv("GITHUB_ACTOR", "oncall")
    forced = sim.run("up", config, *UP, "--override-window", "--reason", "INC-7: capacity")
    assert forced.code == 0, forced.stderr
    assert _workers(sim) == 4
    assert "infrastructure change window overridden by oncall" in forced.stderr
    assert "(window overridden: INC-7: capacity)" in forced.stderr
    record = _overrides(sim)[-1]
    assert record["kind"] == "infrastructure" and record["reason"] == "INC-7: capacity"
    assert record["at"] == "2026-12-24T10:00:00Z" and record["by"].startswith("oncall")
    assert record["changes"]["create"] >= 1

    # A file whose windows do not govern the infrastructure: applied without an override.
    _scale(sim, 3, applies_to=["apps", "upgrades"])
    free = sim.run("up", config, *UP)
    assert free.code == 0, free.stderr
    assert _workers(sim) == 3
    assert "overridden" not in free.stderr
    assert len(_overrides(sim)) == 1

    # Destroying is an infrastructure change too.
    _scale(sim, 3)
    kept = sim.run("destroy", config, "--yes", "--force")
    assert kept.code == 3, kept.stderr
    assert ("infrastructure changes to prod are not allowed now: inside the freeze "
            "2026-12-21..2027-01-04 (year-end freeze); next allowed 2027-01-05T09:00+01:00; "
            "nothing was destroyed") in kept.stderr
    assert _workers(sim) == 3
    gone = sim.run("destroy", config, "--yes", "--force", "--override-window", "--reason",
                   "replaced by prod2")
    assert gone.code == 0, gone.stderr
    assert sim.droplet_names() == []
    assert _overrides(sim)[-1]["reason"] == "replaced by prod2"


def test_up_with_apps_outside_the_window_says_until_cluster_is_refused_too(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    """The early refusal of `up` (before planning, for its apps stage) no longer promises
    that `--until cluster` changes the infrastructure whatever the time."""
    clock.pin(monkeypatch, SATURDAY)
    refused = sim.run("up", str(sim.config), "--yes")
    assert refused.code == 3, refused.stderr
    assert "deploys to prod are not allowed now" in refused.stderr
    assert ("Or run `provision up --until cluster` (it refuses a plan that changes the "
            "infrastructure too).") in refused.stderr
    assert sim.droplet_names() == []
