"""Two runs on one work folder: the second is refused, the first applies what it showed.

Issue 13.4 as it happened: one user's `up` showed "+1 droplet" and waited for a yes; a
second `up` on the same work folder, from a file scaled down, wrote its own plan over the
first one's fixed plan file; the first user said yes and provision applied the second
plan, destroying two workers. Real processes, the real Terraform, the simulated account.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_interrupts_and_state import _read_until, on_terminal
from tests.support.rendering import set_workers
from tests.support.sim import Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        yield running


def _workers(sim: Simulation) -> list[str]:
    return [re.sub(r"-[0-9a-f]{5}$", "", n) for n in sim.droplet_names() if "-general-" in n]


def _scale(sim: Simulation, count: int) -> None:
    sim.write_config(edit=lambda d: set_workers(d["worker_pools"][0], count))


def test_a_second_run_is_refused_and_the_plan_shown_is_the_plan_applied(
        sim: Simulation) -> None:
    config = str(sim.config)
    assert sim.run("up", config, "--yes", "--until", "infra").code == 0
    assert _workers(sim) == ["prod-general-1", "prod-general-2", "prod-general-3"]

    _scale(sim, 4)
    first, master = on_terminal(sim, "up", config, "--until", "infra")
    try:
        shown = _read_until(first, "Apply these changes to prod? [y/N]", timeout=120)
        assert "+ droplet prod-general-4" in shown and "- droplet" not in shown, shown

        # Meanwhile someone scales the file down and runs `up --yes` on the same folder.
        _scale(sim, 1)
        second = sim.run_in(sim.root, "up", config, "--yes", "--until", "infra")
        assert second.code == 3, second.stderr
        assert (f"is in use by `provision up` (pid {first.pid}, " in second.stderr
                and " since " in second.stderr), second.stderr
        assert len(second.stderr.strip().splitlines()) == 1, "one line, no traceback"
        assert len(_workers(sim)) == 3, "the refused run changed nothing"
        planned = sim.run("plan", config)
        assert planned.code == 3, "plan renders and writes plans: refused as well"

        os.write(master, b"y\n")
        assert first.wait(timeout=300) == 0, "".join(first._seen)  # type: ignore[attr-defined]
    finally:
        if first.poll() is None:
            first.kill()
        os.close(master)
    # Exactly the plan the first user saw: one more worker, though the file now says 1.
    assert _workers(sim) == [f"prod-general-{i}" for i in range(1, 5)]
    assert list((sim.workdir / "plans").glob("*.tfplan")) == [], "plan files (secrets) kept"

    # The lock went with the first run: the next one plans the scale-down.
    after = sim.run("plan", config, "--exit-code")
    assert after.code == 4, after.stderr
    assert after.stdout.count("- droplet prod-general-") == 3, after.stdout
