"""Failure injection knobs and the request log of the fake DigitalOcean API.

`Faults` is shared between the test thread and the server's handler threads: the test
changes it at any time (`fake.faults.throttle(2)`), every request consumes from it. The
catalogue overlays (`unavailable_regions`, `sizes_not_offered`, `droplet_limit`) change
only what the API *reports*; the fake Terraform provider does not read them, so they are
meant for preflight checks, not for making `terraform apply` fail (use DO_SIM_FAIL).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Injected:
    """An error response the next request gets instead of its real answer."""

    status: int
    error_id: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Faults:
    """What the fake should get wrong, and how slowly.

    * unavailable_regions: region slugs reported with `available: false` (and no sizes);
    * sizes_not_offered: region slug -> size slugs missing from that region's `sizes`
      and the region missing from those sizes' `regions`;
    * droplet_limit: overrides the account's `droplet_limit` in GET /v2/account, which
      POST /v2/droplets enforces (routes.py create_droplets; Terraform's creates through
      the fake provider do not meet it);
    * latency: seconds slept before answering each request (all endpoints);
    * throttled / retry_after: the next `throttled` authenticated requests get 429 with
      `Retry-After: retry_after`;
    * later_pages_throttled: the next `later_pages_throttled` requests for a list's second or
      later page get 429 the same way. The limit counts every request of a token ("5,000
      requests per hour, 250 requests per minute", docs.digitalocean.com/reference/api,
      Rate Limit), so a client following `links.pages.next` can meet it half-way through
      a list;
    * failing / fail_status: then the next `failing` ones get `fail_status` (5xx); with
      `fail_method` set, only requests of that method count (e.g. a create's POST after
      the reads that precede it).
    * dropped: the next `dropped` requests (authenticated or not) are read and their
      connection closed without an answer, as a reset between client and API does;
    * garbled: then the next `garbled` get a 502 HTML page instead of JSON, as the
      Cloudflare edge in front of api.digitalocean.com sends when the API behind it fails
      (a Cloudflare error page for host api.digitalocean.com is quoted in
      github.com/autotune/pritunl-k8s-tf-do pull #19; clients then fail to parse it, e.g.
      "invalid character '<' looking for beginning of value",
      digitalocean/terraform-provider-digitalocean issue #117).
    """

    unavailable_regions: set[str] = field(default_factory=set)
    sizes_not_offered: dict[str, set[str]] = field(default_factory=dict)
    droplet_limit: int | None = None
    latency: float = 0.0
    throttled: int = 0
    retry_after: int = 1
    later_pages_throttled: int = 0
    failing: int = 0
    fail_status: int = 500
    fail_method: str | None = None
    dropped: int = 0
    garbled: int = 0
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def throttle(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next `count` requests with 429 Too Many Requests."""
        with self._lock:
            self.throttled = count
            self.retry_after = retry_after

    def throttle_later_pages(self, count: int = 1, retry_after: int = 1) -> None:
        """Answer the next `count` requests for page 2 or later of a list with 429."""
        with self._lock:
            self.later_pages_throttled = count
            self.retry_after = retry_after

    def fail(self, count: int = 1, status: int = 500, method: str | None = None) -> None:
        """Answer the next `count` requests (of `method`, if given) with `status` (5xx)."""
        if not 500 <= status <= 599:
            raise ValueError(f"fail() injects server errors (5xx), not {status}")
        with self._lock:
            self.failing = count
            self.fail_status = status
            self.fail_method = method

    def drop(self, count: int = 1) -> None:
        """Close the next `count` connections after reading the request, answering nothing."""
        with self._lock:
            self.dropped = count

    def garble(self, count: int = 1) -> None:
        """Answer the next `count` requests with an HTML 502 page instead of the API's JSON."""
        with self._lock:
            self.garbled = count

    def take_transport(self) -> str | None:
        """Consume one transport fault ("drop" or "garble") for the current request, if any.

        These happen in front of the API (before authentication), like the network or the
        edge proxy they stand for.
        """
        with self._lock:
            if self.dropped > 0:
                self.dropped -= 1
                return "drop"
            if self.garbled > 0:
                self.garbled -= 1
                return "garble"
        return None

    def offers(self, region: str, size: str) -> bool:
        """Whether the overlays leave `size` offered in `region`."""
        return region not in self.unavailable_regions and size not in self.sizes_not_offered.get(
            region, set()
        )

    def take(self, later_page: bool = False, method: str = "") -> Injected | None:
        """Consume one injected failure for the current request, if any is pending.

        Throttling comes first, like a real rate limiter in front of a failing backend.
        """
        with self._lock:
            throttled = self.throttled > 0 or (later_page and self.later_pages_throttled > 0)
            if throttled:
                if self.throttled > 0:
                    self.throttled -= 1
                else:
                    self.later_pages_throttled -= 1
                return Injected(
                    429,
                    "too_many_requests",
                    "API Rate limit exceeded.",
                    {"Retry-After": str(self.retry_after), "ratelimit-remaining": "0"},
                )
            if self.failing > 0 and self.fail_method in (None, method):
                self.failing -= 1
                return Injected(self.fail_status, *_server_error(self.fail_status))
        return None


def _server_error(status: int) -> tuple[str, str]:
    if status == 503:
        return "service_unavailable", "The service is temporarily unavailable."
    return "server_error", "Unexpected server-side error"


@dataclass(frozen=True)
class RequestRecord:
    """One request the fake answered, for assertions on what a client did and when.

    `path` is normalised: no query, no trailing slash, percent-decoded, e.g.
    "/v2/floating_ips/45.55.0.10/actions". `query` keeps the first value of each
    parameter. `body` is the decoded JSON body (None when empty or not JSON).
    `at` is `time.time()` when the request arrived; `duration` includes injected latency.
    `response` is the JSON body sent back (None for 204), `response_headers` its headers
    (e.g. `Retry-After` of an injected 429).
    """

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int
    at: float
    duration: float
    response: Any = None
    response_headers: dict[str, str] = field(default_factory=dict)
