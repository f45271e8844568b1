"""The simulated provider's API calls, counted against the account's rate limits as the real
provider's HTTP client makes them.

The real provider (terraform-provider-digitalocean v2.34.1, the release terraform/
provider.lock.hcl pins) talks to the API through godo v1.107.0 (its go.mod). Its provider
schema defaults ``http_retry_max`` to 4 (``DIGITALOCEAN_HTTP_RETRY_MAX``, an int),
``http_retry_wait_min`` to 1 s (``DIGITALOCEAN_HTTP_RETRY_WAIT_MIN``, a float) and
``http_retry_wait_max`` to 30 s (``DIGITALOCEAN_HTTP_RETRY_WAIT_MAX``)
(``digitalocean/provider.go`` lines 76-93 at v2.34.1), and ``digitalocean/config/config.go``
(lines 81-90) wraps godo in go-retryablehttp only when ``http_retry_max > 0``
(``godo.WithRetryAndBackoffs``; godo.go lines 321-330 turn the seconds into durations).
go-retryablehttp v0.7.4 (vendored, ``client.go`` lines 520-537) retries a 429 and waits, in
``DefaultBackoff``, the 429's ``Retry-After`` seconds when it has one (not capped), else
``wait_min * 2^attempt`` (attempt from 0) capped at ``wait_max``. After the last retry
the error reaches the resource as godo formats it:
``POST https://api.digitalocean.com/v2/droplets: 429 ... API Rate limit exceeded.``

A droplet create is one ``POST /v2/droplets`` and then ``GET /v2/droplets/{id}`` polls
until its status is ``active`` (``digitalocean/droplet/resource_droplet.go``,
``waitForDropletAttribute``: a ``StateChangeConf`` with ``Delay`` 10 s and ``MinTimeout``
3 s; the SDK's ``helper/retry/state.go`` refreshes after the delay, then doubles its wait
from 100 ms, bounded below by ``MinTimeout`` and above by 10 s). So polls go out 10, 13, 19
and 29 s after the POST and every 10 s after that, and the create ends at the first poll
that sees the droplet active: :func:`droplet_polls`, with its constants kept, cited line
by line, in provisioner/infra/parallelism.py (one reading for both).

The calls are counted only when ``DO_SIM_RATE_LIMIT`` asks for it (ratelimit.py), so
everything else about the simulated provider is unchanged by default.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from provisioner.infra.parallelism import droplet_polls

from . import ratelimit
from .cloud import default_state_path

__all__ = ["RateLimited", "backoff", "call", "droplet_polls", "limiter"]

RETRY_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_MAX"
WAIT_MIN_ENV = "DIGITALOCEAN_HTTP_RETRY_WAIT_MIN"
WAIT_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_WAIT_MAX"
RETRY_MAX = 4  # provider.go: http_retry_max's default
WAIT_MIN = 1.0  # http_retry_wait_min's default
WAIT_MAX = 30.0  # http_retry_wait_max's default


class RateLimited(Exception):
    """The API still answered 429 after the client's last retry."""


def _setting(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


def backoff(attempt: int, retry_after: float | None, wait_min: float | None = None,
            wait_max: float | None = None) -> float:
    """go-retryablehttp's ``DefaultBackoff`` before retry ``attempt`` (from 0), in seconds:
    the 429's Retry-After when it has one, else ``wait_min * 2^attempt`` capped at
    ``wait_max`` (both from the provider's settings unless given)."""
    if retry_after is not None:
        return retry_after
    low = _setting(WAIT_MIN_ENV, WAIT_MIN) if wait_min is None else wait_min
    high = _setting(WAIT_MAX_ENV, WAIT_MAX) if wait_max is None else wait_max
    return min(low * 2.0 ** attempt, high)


def limiter() -> ratelimit.RateLimiter | None:
    """The account's limiter when DO_SIM_RATE_LIMIT enforces limits, else None."""
    limits = ratelimit.Limits.from_env()
    if limits is None:
        return None
    return ratelimit.RateLimiter(ratelimit.log_path(Path(default_state_path())), limits)


def call(token: str | None, limits: ratelimit.RateLimiter | None = None) -> int:
    """Make one API request as godo with go-retryablehttp does: on 429, wait as
    :func:`backoff` says (simulated seconds, slept scaled) and try again, at most
    ``http_retry_max`` times (none when it is 0 or less: godo then has no retrying client).
    Returns how many requests it took; raises :class:`RateLimited` when the last was 429."""
    limits = limits if limits is not None else limiter()
    if limits is None or not token:
        return 1
    try:
        retries = max(int(os.environ.get(RETRY_MAX_ENV, RETRY_MAX)), 0)
    except ValueError:
        retries = RETRY_MAX
    header = ratelimit.sends_retry_after()
    for attempt in range(retries + 1):
        verdict = limits.take(token)
        if verdict.allowed:
            return attempt + 1
        if attempt == retries:
            break
        # Retry-After travels in whole seconds (at least 1), as Verdict.headers sends it;
        # without it (DO_SIM_RETRY_AFTER=off) the provider's own backoff.
        sent = max(1.0, math.ceil(verdict.retry_after)) if header else None
        ratelimit.sleep_simulated(backoff(attempt, sent))
    raise RateLimited(ratelimit.MESSAGE)
