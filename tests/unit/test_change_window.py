"""One freeze calendar (pipeline/change_window.py): the windows and freezes of
``deploy_policy:`` govern each kind of change its ``applies_to:`` lists.

`provision upgrade` (provisioner/upgrade/seams.py) calls :func:`check_window` with
``"upgrades"``; `deploy` and `up` with ``"apps"``, `up` and `destroy` with
``"infrastructure"``. The whole commands are driven in tests/integration/test_change_window.py.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.config import load_environment
from provisioner.config.model import CHANGE_KINDS, ChangeKind, Environment
from provisioner.pipeline import change_window
from provisioner.pipeline.change_window import WindowClosed, check_window
from provisioner.workloads import windows
from tests.support.rendering import ROOT

UTC = dt.UTC
IN_FREEZE = dt.datetime(2026, 12, 24, 10, 0, tzinfo=UTC)  # Thursday, year-end freeze
SATURDAY = dt.datetime(2026, 3, 7, 3, 0, tzinfo=UTC)
WEDNESDAY = dt.datetime(2026, 3, 4, 10, 0, tzinfo=UTC)  # 11:00 in Berlin: window open


def production(*kinds: ChangeKind) -> Environment:
    env = load_environment(ROOT / "examples" / "production.yaml")
    if not kinds:
        return env
    return replace(env, deploy_policy=replace(env.deploy_policy, applies_to=kinds))


def test_by_default_the_windows_govern_every_kind_of_change() -> None:
    assert production().deploy_policy.applies_to == ("apps", "infrastructure", "upgrades")
    for kind in CHANGE_KINDS:
        assert change_window.governs(production(), kind)


@pytest.mark.parametrize(("kind", "what"), [
    ("apps", "deploys to prod"),
    ("infrastructure", "infrastructure changes to prod"),
    ("upgrades", "upgrades of prod"),
])
def test_each_kind_is_refused_in_a_freeze_naming_it_and_the_next_allowed_time(
        kind: ChangeKind, what: str) -> None:
    said: list[str] = []
    with pytest.raises(WindowClosed) as refused:
        check_window(production(), kind, IN_FREEZE, None, said.append)
    assert str(refused.value) == (
        f"{what} are not allowed now: inside the freeze 2026-12-21..2027-01-04 (year-end "
        "freeze); next allowed 2027-01-05T09:00+01:00. "
        "Use --override-window --reason TEXT if it cannot wait.")
    assert refused.value.exit_code == 3
    assert said == []


def test_outside_the_windows_the_refusal_names_them_and_adds_the_consequence() -> None:
    with pytest.raises(WindowClosed) as refused:
        check_window(production(), "infrastructure", SATURDAY, None, lambda m: None,
                     "; nothing was applied")
    assert str(refused.value) == (
        "infrastructure changes to prod are not allowed now: outside the deploy windows "
        "(mon-thu 09:00-16:00 Europe/Berlin); next allowed 2026-03-09T09:00+01:00; nothing "
        "was applied. Use --override-window --reason TEXT if it cannot wait.")


def test_an_override_is_said_and_returned_as_its_record(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_ACTOR", "alice")
    said: list[str] = []
    record = check_window(production(), "upgrades", IN_FREEZE, "CVE-2026-0001", said.append)
    assert record[windows.OVERRIDE_REASON] == "CVE-2026-0001"
    assert record[windows.OVERRIDE_BY].startswith("alice")
    assert record[windows.OVERRIDE_AT] == "2026-12-24T10:00:00Z"
    assert len(said) == 1
    assert said[0].startswith("upgrade window overridden by alice")
    assert said[0].endswith(": CVE-2026-0001")


def test_inside_a_window_nothing_is_refused_or_recorded() -> None:
    said: list[str] = []
    for kind in CHANGE_KINDS:
        assert check_window(production(), kind, WEDNESDAY, None, said.append) == {}
        assert check_window(production(), kind, WEDNESDAY, "not needed", said.append) == {}
    assert said == []


def test_a_kind_not_listed_in_applies_to_may_change_any_time() -> None:
    env = production("apps", "upgrades")
    assert not change_window.governs(env, "infrastructure")
    assert check_window(env, "infrastructure", IN_FREEZE, None, lambda m: None) == {}
    with pytest.raises(WindowClosed):
        check_window(env, "upgrades", IN_FREEZE, None, lambda m: None)
    nothing = replace(env, deploy_policy=replace(env.deploy_policy, applies_to=()))
    for kind in CHANGE_KINDS:
        assert check_window(nothing, kind, IN_FREEZE, None, lambda m: None) == {}


def test_remember_appends_newest_last_and_keeps_a_bounded_list(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch
                                                               ) -> None:
    monkeypatch.setattr(change_window, "KEPT_OVERRIDES", 3)
    (tmp_path / change_window.OVERRIDES_FILE).write_text("{not json")  # damaged: restarted
    for n in range(5):
        record = windows.override_annotation("bob@ci", f"reason {n}", IN_FREEZE)
        path = change_window.remember(tmp_path, "infrastructure", record,
                                      {"changes": {"create": n}})
    kept = json.loads(path.read_text())
    assert [k["reason"] for k in kept] == ["reason 2", "reason 3", "reason 4"]
    assert kept[-1] == {"kind": "infrastructure", "at": "2026-12-24T10:00:00Z",
                        "by": "bob@ci", "reason": "reason 4", "changes": {"create": 4}}


def _validate(tmp_path: Path, applies_to: str) -> tuple[int, str]:
    text = (ROOT / "examples" / "production.yaml").read_text()
    text = text.replace("deploy_policy:\n", f"deploy_policy:\n  applies_to: {applies_to}\n", 1)
    path = tmp_path / "prod.yaml"
    path.write_text(text)
    result = CliRunner().invoke(cli, ["validate", str(path)])
    return result.exit_code, result.stderr


@pytest.mark.parametrize(("written", "read"), [
    ("[apps]", ("apps",)),
    ("[upgrades, infrastructure]", ("upgrades", "infrastructure")),
    ("[]", ()),
])
def test_applies_to_is_read_in_the_order_written(tmp_path: Path, written: str,
                                                 read: tuple[ChangeKind, ...]) -> None:
    code, err = _validate(tmp_path, written)
    assert code == 0, err
    assert load_environment(tmp_path / "prod.yaml").deploy_policy.applies_to == read


def test_applies_to_must_be_a_list_of_known_kinds(tmp_path: Path) -> None:
    code, err = _validate(tmp_path, "apps")
    assert code == 2
    assert "deploy_policy.applies_to: expected a list, got text" in err
    code, err = _validate(tmp_path, "[deploys]")
    assert code == 2
    assert ("deploy_policy.applies_to[0]: 'deploys' is not a kind of change (one of: apps, "
            "infrastructure, upgrades)") in err
    assert "Traceback" not in err
