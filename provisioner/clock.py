"""The wall clock that deploy windows, freezes and deploy records are judged by.

One function, so tests can pin the instant a command believes it is (a test that depends
on the hour it runs is red in office hours and green at night). Certificates and TLS are
not judged by it: they need the machine's real time, which the peer also checks.
"""

from __future__ import annotations

import datetime as dt


def now() -> dt.datetime:
    """The current instant, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)
