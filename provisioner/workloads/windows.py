"""Deploy windows and freezes: may workloads change now, and if not, when next?

Pure functions over :class:`~provisioner.config.model.DeployPolicy`; the caller passes the
current time in as an aware ``datetime`` (this module never reads the clock).

The model, in instants (everything is compared in UTC internally):

* A window occurrence is the half-open span ``[start, end)`` for each listed weekday: it opens
  at ``start`` wall-clock time on that day in the window's own time zone and closes at ``end``.
  The end is **exclusive**: a ``09:00-16:00`` window allows ``15:59:59.999999`` and refuses
  ``16:00``. A window whose ``end <= start`` runs past midnight: ``fri 22:00-02:00`` is Friday
  22:00 to Saturday 02:00, and ``09:00-09:00`` is a full 24 hours.
* A freeze covers whole days in the policy's time zone, both dates inclusive: from the first
  instant of its first day to the first instant of the day after its last.
* Deploys are allowed at an instant outside every freeze and inside some window occurrence;
  with no windows at all, outside every freeze.

Wall-clock times that do not exist or exist twice (daylight-saving transitions) are mapped to
instants as follows (see :func:`_instant`):

* **Gap** (spring forward, e.g. 02:30 on the last Sunday of March in Europe/Berlin): the time
  becomes the first valid instant after the gap, i.e. the transition itself (03:00 CEST). This
  applies to window starts, window ends and the midnight starting a freeze day alike, so a
  window lying wholly inside the gap (``02:00-03:00`` on that day) is empty and never opens
  that day, and one reaching into the gap (``01:00-02:30``) closes at 03:00 CEST.
* **Fold** (fall back, e.g. 02:30 on the last Sunday of October in Europe/Berlin): the first
  occurrence (``fold=0``, still CEST) is used, for starts and ends alike. A ``02:00-03:00``
  window on that day therefore spans two real hours: 02:00 CEST to 03:00 CET.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import socket
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from provisioner.config.model import WEEKDAYS, DeployPolicy, Freeze, Window

HORIZON_DAYS = 400
"""How far ahead :func:`decide` looks for the next allowed instant and a window's close."""

ANNOTATION_PREFIX = "provision.dev/window-override-"
OVERRIDE_BY = ANNOTATION_PREFIX + "by"
OVERRIDE_REASON = ANNOTATION_PREFIX + "reason"
OVERRIDE_AT = ANNOTATION_PREFIX + "at"
MAX_ANNOTATION_TEXT = 1024
"""Longest ``by``/``reason`` annotation value kept, in characters (longer ones end in ``…``)."""

_UTC = dt.UTC
_DAY = dt.timedelta(days=1)
_MICROSECOND = dt.timedelta(microseconds=1)


@dataclass(frozen=True)
class Decision:
    """Whether a deploy may start at a given instant, and why.

    ``next_allowed`` is set only when ``allowed`` is false: the earliest instant after ``now``
    at which a deploy would be allowed (skipping freezes), in the time zone of the window that
    is then open (the policy's time zone when there are no windows). It is ``None`` when no
    such instant exists within :data:`HORIZON_DAYS`.

    ``window_closes`` is set only when ``allowed`` is true because of a window: the first
    instant at which deploys stop being allowed, i.e. the end of the window (merged with any
    windows overlapping or abutting it) or the start of a freeze, whichever comes first. It is
    exclusive (deploys are refused at exactly that instant), in the time zone of the window
    open now, and ``None`` if it lies beyond the search horizon.
    """

    allowed: bool
    reason: str
    next_allowed: dt.datetime | None = None
    window_closes: dt.datetime | None = None


@dataclass(frozen=True)
class _Span:
    """One occurrence of a window, or one freeze, as UTC instants ``[start, end)``."""

    start: dt.datetime
    end: dt.datetime
    index: int
    day: str = ""

    def contains(self, instant: dt.datetime) -> bool:
        return self.start <= instant < self.end


def decide(policy: DeployPolicy, now: dt.datetime) -> Decision:
    """May a deploy start at ``now`` under ``policy``? ``now`` must be timezone-aware.

    A freeze wins over a window. See :class:`Decision` for the meaning of each field and the
    module docstring for how windows, freezes and daylight-saving transitions are read.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    at = now.astimezone(_UTC)
    horizon = at + HORIZON_DAYS * _DAY
    freezes = _freeze_spans(policy)
    occurrences = _occurrences(policy.windows, at, horizon)
    frozen = next((s for s in freezes if s.contains(at)), None)
    inside = next((o for o in occurrences if o.contains(at)), None)

    if frozen is None and not policy.windows:
        return Decision(True, "no deploy windows: deploys are allowed any time")
    if frozen is None and inside is not None:
        window = policy.windows[inside.index]
        closes = _closes(at, horizon, inside, occurrences, freezes)
        return Decision(True, f"inside window {inside.day} {_hours(window)} {window.timezone}",
                        window_closes=None if closes is None
                        else closes.astimezone(_zone(window.timezone)))

    if frozen is not None:
        reason = f"inside the freeze {_freeze_text(policy.freezes[frozen.index])}"
    else:
        reason = f"outside the deploy windows ({_windows_text(policy.windows)})"
    found = _next_allowed(policy, at, horizon, occurrences, freezes)
    if found is None:
        reason += f"; no deploy is allowed within the next {HORIZON_DAYS} days"
    return Decision(False, reason, next_allowed=found)


def describe(policy: DeployPolicy) -> str:
    """A one-line summary, e.g. ``deploys mon-thu 09:00-16:00 Europe/Berlin; frozen
    2026-12-21..2027-01-04 (year-end freeze)``."""
    text = f"deploys {_windows_text(policy.windows)}" if policy.windows else "deploys any time"
    if policy.freezes:
        text += "; frozen " + ", ".join(_freeze_text(f) for f in policy.freezes)
        if not policy.windows or any(w.timezone != policy.timezone for w in policy.windows):
            text += f" [dates in {policy.timezone}]"
    return text


def override_annotation(who: str, why: str, now: dt.datetime) -> dict[str, str]:
    """Annotations recording that ``who`` deployed outside the policy because of ``why``.

    Control characters are removed from both texts (runs of whitespace controls such as
    newlines and tabs become one space), as are lone surrogates (they cannot be encoded);
    the result is trimmed and capped at :data:`MAX_ANNOTATION_TEXT` characters. The time is
    RFC 3339 in UTC to the second, e.g. ``2026-11-26T21:20:55Z``.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be a timezone-aware datetime")
    return {
        OVERRIDE_BY: _clean(who),
        OVERRIDE_REASON: _clean(why),
        OVERRIDE_AT: now.astimezone(_UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def who_am_i() -> str:
    """Best-effort identity of whoever runs provision: ``user@host``, e.g. ``alice@laptop``.

    The user is ``$GITHUB_ACTOR``, ``$GITLAB_USER_LOGIN`` or ``$USER``, the first one set.
    """
    user = next((v for k in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN", "USER")
                 if (v := os.environ.get(k, "").strip())), "unknown")
    host = socket.gethostname()
    return f"{user}@{host}" if host else user


# --- instants ------------------------------------------------------------------------------

def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)  # ZoneInfo caches instances by key


def _instant(day: dt.date, wall: dt.time, zone: ZoneInfo) -> dt.datetime:
    """The UTC instant of wall-clock ``wall`` on ``day`` in ``zone``.

    An ambiguous time (in a fold) is its first occurrence. A nonexistent time (in a gap) is
    the first valid instant after the gap, that is the transition instant.
    """
    naive = dt.datetime.combine(day, wall.replace(tzinfo=None))
    first = naive.replace(tzinfo=zone)  # fold=0: the first occurrence of an ambiguous time
    utc = first.astimezone(_UTC)
    if utc.astimezone(zone).replace(tzinfo=None) == naive:
        return utc
    # In a gap (PEP 495): fold=0 reads the time with the offset before the transition, which
    # lands after it; fold=1 with the offset after, which lands before it. The transition lies
    # between; tz transitions fall on whole seconds, so bisect over POSIX seconds.
    before = math.floor(naive.replace(tzinfo=zone, fold=1).timestamp())
    after = math.ceil(utc.timestamp())
    target = _offset(after, zone)
    while after - before > 1:
        middle = (before + after) // 2
        if _offset(middle, zone) == target:
            after = middle
        else:
            before = middle
    return dt.datetime.fromtimestamp(after, _UTC)


def _offset(seconds: int, zone: ZoneInfo) -> dt.timedelta | None:
    return dt.datetime.fromtimestamp(seconds, zone).utcoffset()


def _freeze_spans(policy: DeployPolicy) -> list[_Span]:
    zone = _zone(policy.timezone)
    spans = []
    for i, f in enumerate(policy.freezes):
        start = _instant(f.start, dt.time(), zone)
        end = _instant(f.end + _DAY, dt.time(), zone)
        if end > start:
            spans.append(_Span(start, end, i))
    return spans


def _occurrences(windows: Iterable[Window], at: dt.datetime,
                 horizon: dt.datetime) -> list[_Span]:
    """Every non-empty window occurrence not over by ``at``, by start.

    Complete up to ``horizon`` for every window alike (each occurrence starting before it is
    included), so that the union of the windows is exact on ``[at, horizon)``.
    """
    spans = []
    for i, w in enumerate(windows):
        zone = _zone(w.timezone)
        # Start two days back: an overnight occurrence from yesterday may still be open.
        first = at.astimezone(zone).date() - 2 * _DAY
        last = horizon.astimezone(zone).date() + _DAY
        overnight = w.end <= w.start
        for n in range((last - first).days + 1):
            day = first + n * _DAY
            name = WEEKDAYS[day.weekday()]
            if name not in w.days:
                continue
            start = _instant(day, w.start, zone)
            end = _instant(day + _DAY if overnight else day, w.end, zone)
            if end > start and end > at:
                spans.append(_Span(start, end, i, name))
    spans.sort(key=lambda s: (s.start, s.index))
    return spans


def _closes(at: dt.datetime, horizon: dt.datetime, inside: _Span, occurrences: list[_Span],
            freezes: list[_Span]) -> dt.datetime | None:
    """When the allowed run containing ``at`` ends: windows merged, cut by the next freeze.

    ``None`` when the merged windows run on to the horizon (and no freeze cuts them first).
    """
    end = inside.end
    for o in occurrences:  # sorted by start: absorb everything overlapping or abutting
        if o.start > end or end >= horizon:
            break
        end = max(end, o.end)
    freeze = min((s.start for s in freezes if s.start > at), default=None)
    if freeze is not None and freeze < end:
        return freeze
    return None if end >= horizon else end


def _next_allowed(policy: DeployPolicy, at: dt.datetime, horizon: dt.datetime,
                  occurrences: list[_Span], freezes: list[_Span]) -> dt.datetime | None:
    """The earliest allowed instant after ``at``, or ``None`` within the horizon.

    The allowed set is a union of half-open ``[a, b)`` spans minus other such spans, so its
    first point after ``at`` is a window start or a freeze end: try those in order.
    """
    candidates = sorted({o.start for o in occurrences if at < o.start <= horizon}
                        | {s.end for s in freezes if at < s.end <= horizon})
    for candidate in candidates:
        if any(s.contains(candidate) for s in freezes):
            continue
        if not policy.windows:
            return candidate.astimezone(_zone(policy.timezone))
        # The latest-starting occurrence open then: the window that opens at that instant.
        open_now = [o for o in occurrences if o.contains(candidate)]
        if open_now:
            chosen = max(open_now, key=lambda o: (o.start, -o.index))
            return candidate.astimezone(_zone(policy.windows[chosen.index].timezone))
    return None


# --- text ----------------------------------------------------------------------------------

def _clock(t: dt.time) -> str:
    return t.strftime("%H:%M:%S" if t.second or t.microsecond else "%H:%M")


def _hours(w: Window) -> str:
    text = f"{_clock(w.start)}-{_clock(w.end)}"
    return text + " next day" if w.end <= w.start else text


def _days(days: Iterable[str]) -> str:
    """``mon-thu``, ``mon,wed,fri``, ``mon-wed,sat,sun``: runs of three or more as ranges."""
    chosen = set(days)
    indices = [i for i, d in enumerate(WEEKDAYS) if d in chosen]
    if not indices:
        return "no days"
    runs: list[list[int]] = []
    for i in indices:
        if runs and runs[-1][-1] == i - 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    parts = []
    for run in runs:
        if len(run) >= 3:
            parts.append(f"{WEEKDAYS[run[0]]}-{WEEKDAYS[run[-1]]}")
        else:
            parts.extend(WEEKDAYS[i] for i in run)
    return ",".join(parts)


def _windows_text(windows: Iterable[Window]) -> str:
    """``mon-thu 09:00-16:00, fri 09:00-12:00 Europe/Berlin; sat 10:00-11:00 UTC``."""
    groups: dict[str, list[str]] = {}
    for w in windows:
        groups.setdefault(w.timezone, []).append(f"{_days(w.days)} {_hours(w)}")
    return "; ".join(f"{', '.join(parts)} {zone}" for zone, parts in groups.items())


def _freeze_text(f: Freeze) -> str:
    dates = f.start.isoformat() if f.start == f.end else f"{f.start}..{f.end}"
    return f"{dates} ({f.reason})" if f.reason else dates


def _clean(text: str) -> str:
    out: list[str] = []
    for ch in text:
        category = unicodedata.category(ch)
        if category == "Cc" and ch.isspace():
            if out and out[-1] != " ":
                out.append(" ")
        elif category not in ("Cc", "Cs"):
            out.append(ch)
    cleaned = "".join(out).strip()
    if len(cleaned) > MAX_ANNOTATION_TEXT:
        cleaned = cleaned[:MAX_ANNOTATION_TEXT - 1].rstrip() + "…"
    return cleaned
