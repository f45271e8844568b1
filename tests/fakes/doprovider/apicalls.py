"""The simulated provider's API calls, counted against the account's rate limits as the real
provider's HTTP client makes them.

The real provider (terraform-provider-digitalocean v2.34.1, the release terraform/
provider.lock.hcl pins) talks to the API through godo v1.107.0 (its go.mod). Its provider
schema defaults ``http_retry_max`` to 4 (``DIGITALOCEAN_HTTP_RETRY_MAX``),
``http_retry_wait_min`` to 1 s and ``http_retry_wait_max`` to 30 s
(``digitalocean/provider.go``), and ``digitalocean/config/config.go`` then wraps godo in
go-retryablehttp (``godo.WithRetryAndBackoffs``). go-retryablehttp v0.7.4 (vendored)
retries a 429 (``baseRetryPolicy``) and waits, in ``DefaultBackoff``, the 429's
``Retry-After`` seconds when it has one, else ``wait_min * 2^attempt`` capped at
``wait_max``. After the last retry the error reaches the resource as godo formats it:
``POST https://api.digitalocean.com/v2/droplets: 429 ... API Rate limit exceeded.``

A droplet create is one ``POST /v2/droplets`` and then ``GET /v2/droplets/{id}`` polls
until its status is ``active`` (``digitalocean/droplet/resource_droplet.go``,
``waitForDropletAttribute``: a ``StateChangeConf`` with ``Delay`` 10 s and ``MinTimeout``
3 s; the SDK's ``helper/retry/state.go`` refreshes after the delay, then doubles its wait
from 100 ms, bounded below by ``MinTimeout`` and above by 10 s). So polls go out 10, 13, 19
and 29 s after the POST and every 10 s after that, and the create ends at the first poll
that sees the droplet active: :func:`droplet_polls`.

The calls are counted only when ``DO_SIM_RATE_LIMIT`` asks for it (ratelimit.py), so
everything else about the simulated provider is unchanged by default.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from . import ratelimit
from .cloud import default_state_path

RETRY_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_MAX"
RETRY_MAX = 4  # provider.go: http_retry_max's default
POLL_DELAY = 10.0  # waitForDropletAttribute: Delay
POLL_MIN = 3.0  # MinTimeout
POLL_MAX = 10.0  # state.go: the wait's upper bound


class RateLimited(Exception):
    """The API still answered 429 after the client's last retry."""


def droplet_polls(active_after: float) -> list[float]:
    """Seconds after the POST at which the provider polls a droplet that becomes active
    ``active_after`` seconds after it: the last poll is the one that sees it active."""
    polls = [POLL_DELAY]
    wait = 0.1  # state.go: the first wait after the first refresh
    while polls[-1] < active_after:
        wait = min(max(wait * 2, POLL_MIN), POLL_MAX)
        polls.append(polls[-1] + wait)
    return polls


def limiter() -> ratelimit.RateLimiter | None:
    """The account's limiter when DO_SIM_RATE_LIMIT enforces limits, else None."""
    limits = ratelimit.Limits.from_env()
    if limits is None:
        return None
    return ratelimit.RateLimiter(ratelimit.log_path(Path(default_state_path())), limits)


def call(token: str | None, limits: ratelimit.RateLimiter | None = None) -> int:
    """Make one API request as godo with go-retryablehttp does: on 429, wait Retry-After
    (simulated seconds, slept scaled) and try again, at most ``http_retry_max`` times.
    Returns how many requests it took; raises :class:`RateLimited` when the last was 429."""
    limits = limits if limits is not None else limiter()
    if limits is None or not token:
        return 1
    try:
        retries = int(os.environ.get(RETRY_MAX_ENV, RETRY_MAX))
    except ValueError:
        retries = RETRY_MAX
    for attempt in range(retries + 1):
        verdict = limits.take(token)
        if verdict.allowed:
            return attempt + 1
        if attempt == retries:
            break
        # DefaultBackoff: the 429's Retry-After (whole seconds on the wire, as
        # ratelimit.Verdict.headers sends it), which this API always gives.
        ratelimit.sleep_simulated(max(1.0, math.ceil(verdict.retry_after)))
    raise RateLimited(ratelimit.MESSAGE)
