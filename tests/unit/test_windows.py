"""Deploy windows and freezes: decide, describe, and the override annotations."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from provisioner.config import load_environment
from provisioner.config.model import WEEKDAYS, DeployPolicy, Freeze, Weekday, Window
from provisioner.workloads import windows
from provisioner.workloads.windows import Decision, decide, describe, override_annotation
from tests.support.rendering import ROOT

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
US = dt.timedelta(microseconds=1)


def production() -> DeployPolicy:
    return load_environment(ROOT / "examples" / "production.yaml").deploy_policy


def berlin(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
           microsecond: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, microsecond, tzinfo=BERLIN)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


def window(days: str, start: str, end: str, tz: str = "UTC") -> Window:
    day_names: tuple[Weekday, ...] = tuple(d for d in WEEKDAYS if d in days.split(","))
    return Window(days=day_names, start=dt.time.fromisoformat(start),
                  end=dt.time.fromisoformat(end), timezone=tz)


def same_instant(a: dt.datetime | None, b: dt.datetime) -> bool:
    """Equal as instants: ``==`` between two times in the same zone ignores the fold."""
    return a is not None and a.astimezone(UTC) == b.astimezone(UTC)


# --- the production example: mon-thu 09:00-16:00 Europe/Berlin, frozen 2026-12-21..2027-01-04

def test_production_policy_reads_as_expected() -> None:
    policy = production()
    assert describe(policy) == ("deploys mon-thu 09:00-16:00 Europe/Berlin; "
                                "frozen 2026-12-21..2027-01-04 (year-end freeze)")


def test_friday_is_refused_until_monday_morning() -> None:
    decision = decide(production(), berlin(2026, 6, 12, 10, 0))  # a Friday
    assert not decision.allowed
    assert decision.reason == "outside the deploy windows (mon-thu 09:00-16:00 Europe/Berlin)"
    assert decision.next_allowed == berlin(2026, 6, 15, 9, 0)
    assert decision.next_allowed is not None and decision.next_allowed.tzinfo == BERLIN
    assert decision.window_closes is None


def test_window_end_is_exclusive() -> None:
    policy = production()
    before = decide(policy, berlin(2026, 6, 11, 15, 59))  # a Thursday
    assert before.allowed
    assert before.reason == "inside window thu 09:00-16:00 Europe/Berlin"
    assert before.window_closes == berlin(2026, 6, 11, 16, 0)
    assert before.next_allowed is None
    assert decide(policy, berlin(2026, 6, 11, 16, 0) - US).allowed
    at_end = decide(policy, berlin(2026, 6, 11, 16, 0))
    assert not at_end.allowed
    assert at_end.next_allowed == berlin(2026, 6, 15, 9, 0)


def test_window_start_is_inclusive() -> None:
    policy = production()
    assert decide(policy, berlin(2026, 6, 15, 9, 0)).allowed
    early = decide(policy, berlin(2026, 6, 15, 9, 0) - US)
    assert not early.allowed and early.next_allowed == berlin(2026, 6, 15, 9, 0)


def test_freeze_refuses_and_next_is_the_first_window_after_it() -> None:
    decision = decide(production(), berlin(2026, 12, 23, 10, 0))  # a Wednesday
    assert not decision.allowed
    assert decision.reason == "inside the freeze 2026-12-21..2027-01-04 (year-end freeze)"
    assert decision.next_allowed == berlin(2027, 1, 5, 9, 0)  # the Tuesday after
    # The freeze's last day is frozen to its end, in the policy's time zone.
    assert not decide(production(), berlin(2027, 1, 4, 23, 59)).allowed
    assert not decide(production(), utc(2026, 12, 20, 23, 0)).allowed  # 00:00 Berlin on the 21st
    assert decide(production(), berlin(2026, 12, 17, 15, 0)).allowed  # the Thursday before


def test_a_window_closing_into_a_freeze_closes_at_the_freeze() -> None:
    decision = decide(production(), berlin(2026, 12, 17, 15, 0))
    assert decision.window_closes == berlin(2026, 12, 17, 16, 0)
    policy = DeployPolicy(windows=(window("sun", "22:00", "02:00"),),
                          freezes=(Freeze(dt.date(2026, 6, 15), dt.date(2026, 6, 15)),))
    cut = decide(policy, utc(2026, 6, 14, 23, 0))  # Sunday night, freeze from Monday 00:00
    assert cut.allowed and cut.window_closes == utc(2026, 6, 15, 0, 0)


def test_utc_now_is_converted_to_the_windows_time_zone() -> None:
    policy = production()
    winter = decide(policy, utc(2026, 1, 5, 8, 30))  # Monday 09:30 CET
    assert winter.allowed
    assert winter.window_closes == utc(2026, 1, 5, 15, 0)
    assert winter.window_closes is not None and winter.window_closes.tzinfo == BERLIN
    early = decide(policy, utc(2026, 1, 5, 7, 59))  # Monday 08:59 CET
    assert not early.allowed and early.next_allowed == utc(2026, 1, 5, 8, 0)
    summer = decide(policy, utc(2026, 6, 15, 7, 30))  # Monday 09:30 CEST
    assert summer.allowed
    assert not decide(policy, utc(2026, 6, 15, 14, 0)).allowed  # 16:00 CEST
    other = decide(policy, dt.datetime(2026, 6, 15, 3, 30, tzinfo=ZoneInfo("America/New_York")))
    assert other.allowed  # 09:30 CEST


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError, match="aware"):
        decide(production(), dt.datetime(2026, 6, 15, 10, 0))


# --- overnight windows ---------------------------------------------------------------------

def test_overnight_window_runs_into_the_next_day() -> None:
    policy = DeployPolicy(windows=(window("fri", "22:00", "02:00", "Europe/Berlin"),))
    friday_night = decide(policy, berlin(2026, 6, 12, 23, 0))
    assert friday_night.allowed
    assert friday_night.reason == "inside window fri 22:00-02:00 next day Europe/Berlin"
    assert friday_night.window_closes == berlin(2026, 6, 13, 2, 0)
    assert decide(policy, berlin(2026, 6, 13, 1, 59)).allowed  # Saturday morning
    closed = decide(policy, berlin(2026, 6, 13, 2, 0))
    assert not closed.allowed and closed.next_allowed == berlin(2026, 6, 19, 22, 0)
    before = decide(policy, berlin(2026, 6, 12, 21, 0))
    assert not before.allowed and before.next_allowed == berlin(2026, 6, 12, 22, 0)
    # Only the night starting on a listed day: Thursday night is closed.
    assert not decide(policy, berlin(2026, 6, 12, 1, 0)).allowed
    assert describe(policy) == "deploys fri 22:00-02:00 next day Europe/Berlin"


def test_equal_start_and_end_is_a_full_day() -> None:
    policy = DeployPolicy(windows=(window("mon", "09:00", "09:00"),))
    assert decide(policy, utc(2026, 6, 16, 8, 59)).allowed  # Tuesday
    assert decide(policy, utc(2026, 6, 16, 8, 59)).window_closes == utc(2026, 6, 16, 9, 0)
    assert not decide(policy, utc(2026, 6, 16, 9, 0)).allowed


def test_overlapping_and_abutting_windows_merge_for_the_close() -> None:
    policy = DeployPolicy(windows=(window("mon", "09:00", "12:00"), window("mon", "12:00", "14:00"),
                                   window("mon", "13:00", "16:00", "UTC")))
    decision = decide(policy, utc(2026, 6, 15, 10, 0))
    assert decision.allowed and decision.window_closes == utc(2026, 6, 15, 16, 0)
    assert decide(policy, utc(2026, 6, 15, 12, 0)).allowed


def test_windows_in_several_time_zones() -> None:
    policy = DeployPolicy(windows=(window("mon", "09:00", "10:00", "America/New_York"),
                                   window("mon", "09:00", "10:00", "Europe/Berlin")),
                          timezone="Europe/Berlin")
    decision = decide(policy, berlin(2026, 6, 15, 12, 0))
    assert not decision.allowed
    assert decision.next_allowed == utc(2026, 6, 15, 13, 0)
    assert decision.next_allowed is not None
    assert decision.next_allowed.tzinfo == ZoneInfo("America/New_York")
    assert describe(policy) == ("deploys mon 09:00-10:00 America/New_York; "
                                "mon 09:00-10:00 Europe/Berlin")


# --- daylight-saving transitions in Europe/Berlin: 2026-03-29 and 2026-10-25 -----------------

def test_spring_forward_window_covering_the_gap_is_an_hour_short() -> None:
    policy = DeployPolicy(windows=(window("sun", "01:00", "04:00", "Europe/Berlin"),))
    opening = decide(policy, utc(2026, 3, 28, 23, 59))  # 00:59 CET
    assert not opening.allowed and opening.next_allowed == utc(2026, 3, 29, 0, 0)  # 01:00 CET
    inside = decide(policy, utc(2026, 3, 29, 0, 30))
    assert inside.allowed
    assert inside.window_closes == utc(2026, 3, 29, 2, 0)  # 04:00 CEST: two real hours
    assert not decide(policy, utc(2026, 3, 29, 2, 0)).allowed


def test_fall_back_window_covering_the_fold_is_an_hour_long() -> None:
    policy = DeployPolicy(windows=(window("sun", "01:00", "04:00", "Europe/Berlin"),))
    assert decide(policy, utc(2026, 10, 24, 23, 0)).allowed  # 01:00 CEST
    assert decide(policy, utc(2026, 10, 25, 0, 30)).allowed  # 02:30 CEST, the first one
    inside = decide(policy, utc(2026, 10, 25, 1, 30))  # 02:30 CET, the second one
    assert inside.allowed
    assert inside.window_closes == utc(2026, 10, 25, 3, 0)  # 04:00 CET: four real hours


def test_window_inside_the_spring_gap_does_not_open_that_day() -> None:
    policy = DeployPolicy(windows=(window("sun", "02:00", "03:00", "Europe/Berlin"),))
    for now in (utc(2026, 3, 28, 23, 59), utc(2026, 3, 29, 0, 59), utc(2026, 3, 29, 1, 0)):
        decision = decide(policy, now)
        assert not decision.allowed
        assert decision.next_allowed == berlin(2026, 4, 5, 2, 0)


def test_window_covering_the_fold_runs_from_first_two_to_three() -> None:
    policy = DeployPolicy(windows=(window("sun", "02:00", "03:00", "Europe/Berlin"),))
    before = decide(policy, utc(2026, 10, 24, 23, 59))  # 01:59 CEST
    assert before.next_allowed is not None
    assert same_instant(before.next_allowed, utc(2026, 10, 25, 0, 0))  # 02:00 CEST
    assert before.next_allowed.utcoffset() == dt.timedelta(hours=2)
    inside = decide(policy, utc(2026, 10, 25, 1, 30))  # 02:30 CET
    assert inside.allowed
    assert inside.window_closes == utc(2026, 10, 25, 2, 0)  # 03:00 CET


def test_window_starting_in_the_gap_starts_when_the_gap_ends() -> None:
    policy = DeployPolicy(windows=(window("sun", "02:30", "05:00", "Europe/Berlin"),))
    decision = decide(policy, utc(2026, 3, 29, 0, 30))  # 01:30 CET
    assert not decision.allowed
    assert same_instant(decision.next_allowed, berlin(2026, 3, 29, 3, 0))  # 03:00 CEST
    assert decide(policy, utc(2026, 3, 29, 1, 0)).allowed
    assert not decide(policy, utc(2026, 3, 29, 1, 0) - US).allowed


def test_window_starting_in_the_fold_starts_at_its_first_occurrence() -> None:
    policy = DeployPolicy(windows=(window("sun", "02:30", "05:00", "Europe/Berlin"),))
    decision = decide(policy, utc(2026, 10, 25, 0, 0))  # 02:00 CEST
    assert not decision.allowed
    assert decision.next_allowed is not None
    assert same_instant(decision.next_allowed, utc(2026, 10, 25, 0, 30))  # 02:30 CEST
    assert decision.next_allowed.fold == 0


def test_window_ending_in_the_gap_ends_when_the_gap_ends() -> None:
    policy = DeployPolicy(windows=(window("sat", "23:00", "02:30", "Europe/Berlin"),))
    decision = decide(policy, utc(2026, 3, 29, 0, 59))  # 01:59 CET, Sunday
    assert decision.allowed
    assert decision.window_closes == utc(2026, 3, 29, 1, 0)  # 03:00 CEST
    assert not decide(policy, utc(2026, 3, 29, 1, 0)).allowed


def test_freeze_days_follow_the_local_day_across_transitions() -> None:
    short = DeployPolicy(freezes=(Freeze(dt.date(2026, 3, 29), dt.date(2026, 3, 29)),),
                         timezone="Europe/Berlin")
    assert decide(short, utc(2026, 3, 28, 22, 59)).allowed  # 23:59 CET on the 28th
    assert not decide(short, utc(2026, 3, 28, 23, 0)).allowed
    last = decide(short, utc(2026, 3, 29, 21, 59))  # 23:59 CEST: a 23-hour day
    assert not last.allowed
    assert last.reason == "inside the freeze 2026-03-29"
    assert last.next_allowed == berlin(2026, 3, 30, 0, 0)
    assert last.next_allowed is not None and last.next_allowed.tzinfo == BERLIN
    long = DeployPolicy(freezes=(Freeze(dt.date(2026, 10, 25), dt.date(2026, 10, 25), "x"),),
                        timezone="Europe/Berlin")
    assert decide(long, utc(2026, 10, 24, 21, 59)).allowed
    assert not decide(long, utc(2026, 10, 24, 22, 0)).allowed
    assert decide(long, utc(2026, 10, 25, 22, 59)).next_allowed == utc(2026, 10, 25, 23, 0)


def test_a_freeze_on_a_day_that_never_happened_freezes_nothing() -> None:
    # Samoa skipped 2011-12-30 entirely, moving west of the date line.
    policy = DeployPolicy(freezes=(Freeze(dt.date(2011, 12, 30), dt.date(2011, 12, 30)),),
                          timezone="Pacific/Apia")
    assert decide(policy, utc(2011, 12, 30, 10, 0)).allowed


# --- no windows, and nothing ever allowed -----------------------------------------------------

def test_no_windows_no_freezes_is_always_allowed() -> None:
    decision = decide(DeployPolicy(), utc(2026, 6, 12, 3, 0))
    assert decision == Decision(True, "no deploy windows: deploys are allowed any time")
    assert describe(DeployPolicy()) == "deploys any time"


def test_no_windows_with_chained_freezes_waits_for_the_last() -> None:
    policy = DeployPolicy(freezes=(Freeze(dt.date(2026, 6, 1), dt.date(2026, 6, 10), "a"),
                                   Freeze(dt.date(2026, 6, 11), dt.date(2026, 6, 12))))
    decision = decide(policy, utc(2026, 6, 5, 12, 0))
    assert not decision.allowed
    assert decision.reason == "inside the freeze 2026-06-01..2026-06-10 (a)"
    assert decision.next_allowed == utc(2026, 6, 13, 0, 0)
    assert describe(policy) == ("deploys any time; frozen 2026-06-01..2026-06-10 (a), "
                                "2026-06-11..2026-06-12 [dates in UTC]")


def test_nothing_allowed_within_the_horizon_gives_no_next() -> None:
    policy = DeployPolicy(windows=(window("mon", "09:00", "10:00"),),
                          freezes=(Freeze(dt.date(2026, 1, 1), dt.date(2028, 1, 1)),))
    decision = decide(policy, utc(2026, 6, 15, 9, 30))
    assert not decision.allowed and decision.next_allowed is None
    assert f"within the next {windows.HORIZON_DAYS} days" in decision.reason


def test_describe_compresses_days() -> None:
    policy = DeployPolicy(windows=(window("mon,tue,wed,fri,sun", "09:00", "16:30:15"),
                                   window("sat,sun", "10:00", "11:00")))
    assert describe(policy) == "deploys mon-wed,fri,sun 09:00-16:30:15, sat,sun 10:00-11:00 UTC"


# --- property tests ---------------------------------------------------------------------------

ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago",
         "Asia/Kolkata", "Europe/Dublin", "America/St_Johns", "Pacific/Chatham")

clock = st.builds(dt.time, st.integers(0, 23), st.sampled_from((0, 1, 15, 30, 45, 59)))
windows_strategy = st.builds(
    Window,
    days=st.lists(st.sampled_from(WEEKDAYS), min_size=1, max_size=7, unique=True).map(tuple),
    start=clock, end=clock, timezone=st.sampled_from(ZONES))


@st.composite
def freezes(draw: st.DrawFn) -> Freeze:
    start = draw(st.dates(dt.date(2026, 1, 1), dt.date(2027, 12, 31)))
    return Freeze(start, start + dt.timedelta(days=draw(st.integers(0, 20))), "r")


policies = st.builds(DeployPolicy, windows=st.lists(windows_strategy, max_size=3).map(tuple),
                     freezes=st.lists(freezes(), max_size=2).map(tuple),
                     timezone=st.sampled_from(ZONES))
instants = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2027, 12, 31),
                        timezones=st.sampled_from(ZONES).map(ZoneInfo))


def between(start: dt.datetime, end: dt.datetime, fraction: float) -> dt.datetime:
    """An instant in ``[start, end)``."""
    start, end = start.astimezone(UTC), end.astimezone(UTC)
    return min(start + (end - start) * fraction, end - US)


@given(policies, instants, st.floats(0, 1))
def test_refusal_names_the_first_allowed_instant(policy: DeployPolicy, now: dt.datetime,
                                                 fraction: float) -> None:
    decision = decide(policy, now)
    if decision.allowed:
        return
    assert decision.window_closes is None
    found = decision.next_allowed
    assert found is not None and found.tzinfo is not None
    assert found.astimezone(UTC) > now.astimezone(UTC)
    assert decide(policy, found).allowed
    assert not decide(policy, found - US).allowed
    assert not decide(policy, between(now, found, fraction)).allowed


@given(policies, instants, st.floats(0, 1))
def test_allowance_holds_until_the_window_closes(policy: DeployPolicy, now: dt.datetime,
                                                 fraction: float) -> None:
    decision = decide(policy, now)
    if not decision.allowed:
        return
    assert decision.next_allowed is None
    assert decide(policy, now.astimezone(UTC)).allowed
    closes = decision.window_closes
    if not policy.windows or closes is None:
        assert closes is None
        return
    assert closes.astimezone(UTC) > now.astimezone(UTC)
    assert not decide(policy, closes).allowed
    assert decide(policy, closes - US).allowed
    assert decide(policy, between(now, closes, fraction)).allowed


@given(policies, instants)
def test_decision_does_not_depend_on_the_zone_now_is_written_in(policy: DeployPolicy,
                                                                now: dt.datetime) -> None:
    here, there = decide(policy, now), decide(policy, now.astimezone(UTC))
    assert (here.allowed, here.reason) == (there.allowed, there.reason)
    for a, b in ((here.next_allowed, there.next_allowed),
                 (here.window_closes, there.window_closes)):
        assert (a is None) == (b is None)
        if a is not None and b is not None:
            assert same_instant(a, b)
            assert (a.tzinfo, a.utcoffset()) == (b.tzinfo, b.utcoffset())


FIXED = ("UTC", "Asia/Kolkata", "Asia/Tokyo")  # no daylight saving since well before 2026
fixed_policies = st.builds(
    DeployPolicy,
    windows=st.lists(st.builds(replace, windows_strategy, timezone=st.sampled_from(FIXED)),
                     max_size=3).map(tuple),
    freezes=st.lists(freezes(), max_size=2).map(tuple), timezone=st.sampled_from(FIXED))


def oracle(policy: DeployPolicy, now: dt.datetime) -> bool:
    """Allowed, by reading wall clocks: exact wherever no clock jumps."""
    today = now.astimezone(ZoneInfo(policy.timezone)).date()
    if any(f.start <= today <= f.end for f in policy.freezes):
        return False
    for w in policy.windows:
        local = now.astimezone(ZoneInfo(w.timezone))
        day, clock = WEEKDAYS[local.weekday()], local.time().replace(tzinfo=None)
        yesterday = WEEKDAYS[(local.weekday() - 1) % 7]
        if w.end > w.start and day in w.days and w.start <= clock < w.end:
            return True
        if w.end <= w.start and ((day in w.days and clock >= w.start)
                                 or (yesterday in w.days and clock < w.end)):
            return True
    return not policy.windows


@given(fixed_policies, instants)
def test_decide_agrees_with_wall_clocks_where_they_do_not_jump(policy: DeployPolicy,
                                                              now: dt.datetime) -> None:
    decision = decide(policy, now)
    assert decision.allowed == oracle(policy, now)
    for instant in (decision.next_allowed, decision.window_closes):
        if instant is not None:
            assert oracle(policy, instant) != decision.allowed
            assert oracle(policy, instant - US) == decision.allowed


def test_windows_open_around_the_clock_have_no_known_close() -> None:
    policy = DeployPolicy(windows=(window("mon,tue,wed,thu,fri", "05:01", "00:00"),
                                   window("mon,tue,wed,thu,fri,sat,sun", "00:00", "00:00",
                                          "America/New_York")))
    decision = decide(policy, utc(2026, 1, 1))
    assert decision.allowed and decision.window_closes is None


@given(instants)
def test_no_windows_and_no_freezes_always_allows(now: dt.datetime) -> None:
    assert decide(DeployPolicy(timezone="Europe/Berlin"), now).allowed


# --- override annotations ---------------------------------------------------------------------

def test_override_annotation_records_who_why_and_when_in_utc() -> None:
    annotations = override_annotation("alice@laptop", "hotfix for INC-42",
                                      berlin(2026, 12, 23, 10, 0, 5, 999))
    assert annotations == {
        "provision.dev/window-override-by": "alice@laptop",
        "provision.dev/window-override-reason": "hotfix for INC-42",
        "provision.dev/window-override-at": "2026-12-23T09:00:05Z",
    }


def test_override_annotation_strips_control_characters_and_caps_length() -> None:
    annotations = override_annotation("bob\x1b[31m", "line one\r\n\tline two\x00\x7f\ud800 ",
                                      utc(2026, 1, 1))
    assert annotations["provision.dev/window-override-by"] == "bob[31m"
    assert annotations["provision.dev/window-override-reason"] == "line one line two"
    long = override_annotation("x", "é" * 5000, utc(2026, 1, 1))
    reason = long["provision.dev/window-override-reason"]
    assert len(reason) == 1024 and reason.endswith("…")
    with pytest.raises(ValueError):
        override_annotation("x", "y", dt.datetime(2026, 1, 1))


@given(st.text(), st.text())
def test_override_annotation_values_are_always_clean(who: str, why: str) -> None:
    for value in override_annotation(who, why, utc(2026, 1, 1)).values():
        assert len(value) <= 1024
        assert value == value.strip()
        value.encode("utf-8")
        assert not any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in value)


def test_who_am_i_prefers_ci_identities(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("socket.gethostname", lambda: "laptop")
    monkeypatch.setenv("USER", "alice")
    monkeypatch.delenv("GITHUB_ACTOR", raising=False)
    monkeypatch.delenv("GITLAB_USER_LOGIN", raising=False)
    assert windows.who_am_i() == "alice@laptop"
    monkeypatch.setenv("GITLAB_USER_LOGIN", "carol")
    assert windows.who_am_i() == "carol@laptop"
    monkeypatch.setenv("GITHUB_ACTOR", "octocat")
    assert windows.who_am_i() == "octocat@laptop"
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER"):
        monkeypatch.delenv(name)
    assert windows.who_am_i() == "unknown@laptop"
