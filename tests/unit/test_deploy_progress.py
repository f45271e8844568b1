"""The rollout progress line `deploy` prints on every change stays one short line."""

from __future__ import annotations

from provisioner.pipeline.deploy_stage import SHOWN, progress_line
from provisioner.workloads.rollout import Status, Target


def statuses(count: int, done: int) -> dict[Target, Status]:
    return {Target("Deployment", f"app{i:03d}", f"app{i:03d}"):
            Status(desired=2, updated=2 if i < done else 1, available=2 if i < done else 0,
                   done=i < done) for i in range(count)}  # fmt: skip


def test_a_few_apps_are_each_shown() -> None:
    line = progress_line(statuses(SHOWN, 1))
    assert line == ("app000 2/2 updated 2/2 available, app001 1/2 updated 0/2 available, "
                    "app002 1/2 updated 0/2 available, app003 1/2 updated 0/2 available")


def test_many_apps_are_counted_and_the_first_waiting_ones_named() -> None:
    line = progress_line(statuses(100, 37))
    assert line == ("37/100 rolled out; waiting for app037 1/2 updated 0/2 available, "
                    "app038 1/2 updated 0/2 available, app039 1/2 updated 0/2 available, "
                    "app040 1/2 updated 0/2 available and 59 more")
    assert progress_line(statuses(100, 100)) == "100/100 rolled out"
    assert progress_line(statuses(100, 98)).endswith("app099 1/2 updated 0/2 available")
