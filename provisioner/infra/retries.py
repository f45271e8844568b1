"""How the DigitalOcean provider retries a request the API refuses with 429.

terraform-provider-digitalocean v2.34.1 (``digitalocean/provider.go`` lines 76-93) reads
``DIGITALOCEAN_HTTP_RETRY_MAX`` (default 4), ``DIGITALOCEAN_HTTP_RETRY_WAIT_MIN`` (1 s)
and ``DIGITALOCEAN_HTTP_RETRY_WAIT_MAX`` (30 s) and hands them to go-retryablehttp v0.7.4,
whose ``DefaultBackoff`` waits the 429's ``Retry-After`` when it has one, else
``wait_min * 2^attempt`` capped at ``wait_max``. The API reference documents only the
``ratelimit-*`` headers on a 429, not ``Retry-After``; without it the defaults wait
1 + 2 + 4 + 8 = 15 s in all, far less than the 60 s a burst past 250 requests a minute
needs to clear, so a large apply or refresh would fail on a 429.

provision therefore passes 8 retries waiting at most 60 s each: doubling from 1 s, the
waits add up to 63 s by the 6th retry (a minute's window has turned over whatever the API
sent), and the last two give threads that lose the race for the freed slots another full
minute each (183 s in all). Waiting longer than the minute window never helps, and the
bound keeps a used-up hourly limit a failure in about three minutes, not a hang. Any of
the three the user has set in the environment is left as set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

RETRY_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_MAX"
WAIT_MIN_ENV = "DIGITALOCEAN_HTTP_RETRY_WAIT_MIN"
WAIT_MAX_ENV = "DIGITALOCEAN_HTTP_RETRY_WAIT_MAX"
SETTINGS = {RETRY_MAX_ENV: "8", WAIT_MIN_ENV: "1", WAIT_MAX_ENV: "60"}


def provider_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The retry settings to add to Terraform's environment: provision's, except those the
    user's environment already sets."""
    have = os.environ if environ is None else environ
    return {name: value for name, value in SETTINGS.items() if not have.get(name, "").strip()}
