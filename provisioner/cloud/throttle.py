"""DigitalOcean's API rate limits as provision's own calls meet them: how long to wait.

The API limits each token to 5,000 requests an hour and 250 a minute; each request counts
for one hour after it is made, and a request over either limit is answered 429
``too_many_requests`` with ``RateLimit-Remaining`` (what is left of the hour) and
``RateLimit-Reset`` (Unix time when the oldest counted request expires): the API
reference's "Rate Limit" section (digitalocean/openapi ``specification/description.yml``).
DigitalOcean's own Ruby client waits the 429's ``Retry-After`` on the minute (burst)
limit and gives up on the hourly one (digitalocean/droplet_kit README, "Automatically Retry
Rate Limited Requests"); provision does the same, with a bound.

python-digitalocean (1.17) keeps none of a failed answer's headers: its ``DataReadError``
carries only the message. Its ``BaseAPI`` sends GET, PUT and DELETE through a
``requests.Session`` of its own (``baseapi.py``, ``self._session``), so :func:`watch`
adds a response hook (requests' documented ``Session.hooks``) that remembers the last
429's headers for :func:`last_refusal`.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, TypeVar

PER_MINUTE = 250
PER_HOUR = 5000
# The longest provision waits for the API in one read: a minute's window and a margin.
MAX_WAIT = 90.0

T = TypeVar("T")
_last = threading.local()


@dataclass(frozen=True)
class Refusal:
    """What a 429 said about when to come back."""

    retry_after: float | None  # seconds (Retry-After)
    remaining: int | None  # requests left this hour (RateLimit-Remaining)
    reset: float | None  # Unix time the oldest counted request expires (RateLimit-Reset)


def header_number(headers: Any, name: str) -> float | None:
    """A numeric response header (Retry-After, RateLimit-*), or None when absent or not one."""
    try:
        value = float(headers.get(name))
    except (TypeError, ValueError):
        return None
    return value if value == value and abs(value) != float("inf") else None


def _remember(response: Any, *args: Any, **kwargs: Any) -> Any:
    if getattr(response, "status_code", None) == 429:
        headers = response.headers
        remaining = header_number(headers, "RateLimit-Remaining")
        _last.refusal = Refusal(header_number(headers, "Retry-After"),
                                None if remaining is None else int(remaining),
                                header_number(headers, "RateLimit-Reset"))
    return response


def watch(client: T) -> T:
    """Have a python-digitalocean object (Manager, Droplet...) report its 429s here."""
    session = getattr(client, "_session", None)
    hooks = getattr(session, "hooks", None)
    if isinstance(hooks, dict) and _remember not in hooks.setdefault("response", []):
        hooks["response"].append(_remember)
    return client


def last_refusal() -> Refusal | None:
    """The headers of this thread's last 429, once (None if none was seen since)."""
    refusal: Refusal | None = getattr(_last, "refusal", None)
    _last.refusal = None
    return refusal


class LimitReached(Exception):
    """Waiting would take longer than provision waits; the message says which limit."""


def wait_for(refusal: Refusal | None, waited: float, attempt: int, what: str,
             now: float | None = None) -> float:
    """Seconds to wait before asking again after a 429 (``waited`` so far in this read):
    the answer's ``Retry-After``; without one, until ``RateLimit-Reset`` when the hour is
    used up, else a doubling backoff as godo's. :class:`LimitReached` when that would take
    provision past ``MAX_WAIT``: its message names the hourly limit when nothing is left of
    the hour, the per-minute one otherwise."""
    now = time.time() if now is None else now
    hour_used_up = refusal is not None and refusal.remaining == 0
    if refusal is not None and refusal.retry_after is not None:
        delay = max(refusal.retry_after, 1.0)
    elif hour_used_up and refusal is not None and refusal.reset is not None:
        delay = max(refusal.reset - now, 1.0)
    else:
        delay = min(2.0 ** (attempt - 1), 30.0)
    if waited + delay <= MAX_WAIT:
        return delay
    if hour_used_up and refusal is not None and refusal.reset is not None:
        at = time.strftime("%H:%M:%S UTC", time.gmtime(refusal.reset))
        raise LimitReached(
            f"reading {what} from DigitalOcean: the API token has used up its "
            f"{PER_HOUR:,} requests an hour (each request counts for an hour); the "
            f"oldest expires at {at} (RateLimit-Reset): run again then, or stop what "
            "else uses this token")
    raise LimitReached(
        f"reading {what} from DigitalOcean: the API kept answering 429 (its limit is "
        f"{PER_MINUTE} requests a minute and {PER_HOUR:,} an hour per token) for "
        f"{waited:.0f} s; run again in a minute, or stop what else uses this token")
