"""The instant every test's commands believe it is.

Deploy windows, freezes and override records depend on the wall clock; a suite that reads
the real one is red in office hours or during a freeze and green otherwise. Every test runs
at ``PINNED`` unless it pins another instant itself: Saturday 2026-03-07 03:00 UTC is outside
every window and freeze of the examples. ``PROVISION_TEST_NOW`` (ISO 8601) runs the whole
suite at another instant, to show the tests do not depend on it, e.g. inside the production
example's window: ``PROVISION_TEST_NOW=2026-03-04T10:00:00+00:00 python3 -m pytest``.
"""

from __future__ import annotations

import datetime as dt
import os

import pytest

import provisioner.clock

VARIABLE = "PROVISION_TEST_NOW"
# Saturday 04:00 in Berlin: outside the production example's windows (Mon-Thu 09:00-16:00
# Europe/Berlin) and its year-end freeze.
OUTSIDE_WINDOWS = dt.datetime(2026, 3, 7, 3, 0, tzinfo=dt.UTC)
# Wednesday 11:00 in Berlin: inside them.
INSIDE_PRODUCTION_WINDOW = dt.datetime(2026, 3, 4, 10, 0, tzinfo=dt.UTC)
# Wednesday 09:30 in Berlin: inside them for the next six and a half hours, so a test that
# moves the clock on by hours (tests/e2e/test_day2_joins.py: five) stays inside.
EARLY_IN_PRODUCTION_WINDOW = dt.datetime(2026, 3, 4, 8, 30, tzinfo=dt.UTC)
DEFAULT = OUTSIDE_WINDOWS


def pinned() -> dt.datetime:
    """The instant of this test run."""
    text = os.environ.get(VARIABLE)
    if not text:
        return DEFAULT
    instant = dt.datetime.fromisoformat(text)
    if instant.tzinfo is None:
        raise ValueError(f"{VARIABLE}={text!r} needs a UTC offset, e.g. +00:00")
    return instant.astimezone(dt.UTC)


def pin(monkeypatch: pytest.MonkeyPatch, instant: dt.datetime) -> None:
    """Make provision's clock say ``instant`` for the rest of the test, in this process and
    in the provision processes it starts (``subprocess_env`` reads it back)."""
    monkeypatch.setattr(provisioner.clock, "now", lambda: instant)
    monkeypatch.setenv(VARIABLE, instant.isoformat())


def subprocess_env(env: dict[str, str], instant: dt.datetime | None = None) -> dict[str, str]:
    """``env`` for a provision process started through ``tests.support.pinned_cli``."""
    return {**env, VARIABLE: (instant or pinned()).isoformat()}
