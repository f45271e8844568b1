"""The acceptance run's non-network logic, against the simulated cloud (always runs).

What test_real_account.py relies on: stages are timed and printed, a failing stage (or
Ctrl-C) still runs every teardown step and the leftover check, the first failure is what
is raised, and the leftover check finds what a run left (new since the baseline, owned by
the environment, or carrying its tags) and nothing else.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.config.load import load_environment
from tests.cloud.acceptance import (
    CONTROL_PLANES,
    WORKERS,
    Stopwatch,
    account_ids,
    environment_document,
    environment_tags,
    leftovers,
    run_stages,
    wait_until,
)
from tests.fakes.doapi import FakeDigitalOcean
from tests.support.do_account import TOKEN
from tests.support.sim import simulation


def _watch(lines: list[str]) -> Stopwatch:
    ticks = itertools.count(0.0, 1.5)  # every clock read is 1.5 s after the one before
    return Stopwatch(clock=lambda: next(ticks), say=lines.append)


def test_stages_are_timed_and_printed_with_a_total() -> None:
    lines: list[str] = []
    calls: list[str] = []
    run_stages([("up", lambda: calls.append("up")), ("status", lambda: calls.append("st"))],
               [("destroy", lambda: calls.append("destroy"))], lambda: [], _watch(lines))
    assert calls == ["up", "st", "destroy"]
    assert lines[:4] == ["stage up: ok after 1.5s", "stage status: ok after 1.5s",
                         "stage destroy: ok after 1.5s", "stage leftover check: ok after 1.5s"]
    assert lines[4].splitlines()[-1].split() == ["total", "6.0s"]


@pytest.mark.parametrize("interrupt", [RuntimeError("up failed"), KeyboardInterrupt()])
def test_a_failed_stage_still_destroys_checks_and_raises_the_first_failure(
    interrupt: BaseException,
) -> None:
    lines: list[str] = []
    calls: list[str] = []

    def fail() -> None:
        raise interrupt

    def destroy() -> None:
        calls.append("destroy")
        raise RuntimeError("destroy failed too")

    def check() -> list[str]:
        calls.append("check")
        return ["droplet acc-cp-1 (1)"]

    with pytest.raises(type(interrupt)) as raised:
        run_stages([("up", fail), ("status", lambda: calls.append("status"))],
                   [("destroy", destroy), ("sweep", lambda: calls.append("sweep"))],
                   check, _watch(lines))
    assert raised.value is interrupt
    assert calls == ["destroy", "sweep", "check"]  # status skipped; teardown all ran
    assert "stage up: FAILED after 1.5s" in lines and "stage destroy: FAILED after 1.5s" in lines
    assert lines[-1] == "STILL IN THE ACCOUNT (billed until deleted):\n  droplet acc-cp-1 (1)"


def test_leftovers_alone_fail_the_run() -> None:
    with pytest.raises(AssertionError, match="1 resources of the run are still in the account"):
        run_stages([], [], lambda: ["volume pvc-1 (v1)"], _watch([]))


def test_wait_until_reports_the_time_and_gives_up_at_the_deadline() -> None:
    ticks = itertools.count(0.0, 1.0)
    answers: list[bool | Exception] = [False, ConnectionError("not yet"), True]

    def probe() -> bool:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert wait_until(probe, 10, clock=lambda: next(ticks), sleep=lambda s: None) == 3.0
    with pytest.raises(TimeoutError):
        wait_until(lambda: False, 5, clock=lambda: next(ticks), sleep=lambda s: None)


def test_the_leftover_check_finds_new_owned_and_tagged_resources_only(
    fake: FakeDigitalOcean, tmp_path: Path
) -> None:
    config = tmp_path / "acc.yaml"
    config.write_text(yaml.safe_dump(environment_document("acc-x1", "fra1", ["12345"],
                                                          ["203.0.113.9/32"])))
    env = load_environment(config)
    fake.add_droplet("someone-elses", tags=["team"])
    baseline = account_ids(TOKEN)
    assert leftovers(TOKEN, env, baseline) == []

    cp = fake.add_droplet("acc-x1-cp-1", tags=environment_tags(env)[:2])
    stray = fake.add_droplet("untagged-but-new")
    volume = fake.add_volume("pvc-1", 1, tags=[environment_tags(env)[0]])
    found = leftovers(TOKEN, env, baseline)
    assert f"new since the run began: droplet:{cp}" in found
    assert f"new since the run began: droplet:{stray}" in found
    assert f"new since the run began: volume:{volume}" in found
    assert f"droplet acc-x1-cp-1 ({cp})" in found
    assert "tag provision:acc-x1: 2 resources" in found
    assert not any("someone-elses" in line for line in found)


def test_the_environment_file_is_valid_and_destroy_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run's own file goes through the real `provision up --until infra` and `destroy`
    on the simulated cloud; the leftover check then finds nothing, though a stage failed."""
    with simulation(tmp_path) as sim:
        for name, value in sim.api.env().items():  # the leftover check, in-process
            monkeypatch.setenv(name, value)
        # Exactly the file the real run writes (test_real_account.py): not merged into the
        # production example, whose deploy windows would hold back `destroy` at some hours.
        sim.write_config(edit=lambda doc: _replace(doc, environment_document(
            "acc-y2", "fra1", sim.fingerprints, ["203.0.113.9/32"])))
        env = load_environment(sim.config)
        assert (env.control_plane.count, sum(p.count for p in env.worker_pools)) == (
            CONTROL_PLANES, WORKERS)
        baseline = account_ids(TOKEN)
        lines: list[str] = []

        def up() -> None:
            assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
            assert len(sim.droplet_names()) == CONTROL_PLANES + WORKERS

        def broken_deploy() -> None:
            raise RuntimeError("deploy failed")

        def destroy() -> None:
            result = sim.run("destroy", str(sim.config), "--yes", "--force")
            assert result.code == 0, result.stderr

        with pytest.raises(RuntimeError, match="deploy failed"):
            run_stages([("up", up), ("deploy", broken_deploy)], [("destroy", destroy)],
                       lambda: leftovers(TOKEN, env, baseline), _watch(lines))
        assert sim.droplet_names() == []
        assert "stage leftover check: ok after 1.5s" in lines
        assert not any(line.startswith("STILL IN THE ACCOUNT") for line in lines)


def _replace(doc: dict[str, Any], new: dict[str, Any]) -> None:
    doc.clear()
    doc.update(new)
