"""The few DigitalOcean API calls the autoscaler service makes, over plain HTTPS (urllib).

Raw HTTP with the standard library rather than python-digitalocean or requests (the pod
has only the standard library, grpcio and protobuf: render/autoscaler_code.py; the server's
certificate is checked against the system CA store, which python's slim images carry):
the service needs the multi-create form of POST /v2/droplets (``names``, up to ten a
request), each answer's status and headers, and a bound on every wait that the caller's
gRPC deadline sets. A 429 is waited out as
provision's other API reads do (:func:`provisioner.cloud.throttle.wait_for`: Retry-After,
else RateLimit-Reset, else a doubling backoff) but never past the deadline. Reads and
deletes are retried after a 5xx or a dropped connection; a create is never re-sent here,
because its answer may be lost after the droplets were made (the caller reconciles by
name, :mod:`provisioner.autoscaler.groups`). The token is only ever put in the
Authorization header, redirects are not followed (so it goes to no other host), and no
message, log line or exception carries it.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from provisioner.cloud import throttle
from provisioner.errors import ProvisionError

PER_PAGE = 200  # the API's largest page
REQUEST_TIMEOUT = 20.0  # one HTTP exchange, when the caller's deadline allows more
READ_ATTEMPTS = 3


class DoError(ProvisionError):
    """The API refused a request (``status`` > 0) or could not be reached (``status`` 0)."""

    def __init__(self, message: str, status: int = 0, error_id: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_id = error_id

    @property
    def answered(self) -> bool:
        """Whether the API answered (so a refused create made nothing)."""
        return self.status > 0


def read_token(path: str) -> str:
    """The API token from its file (a mounted Secret); the path, never the value, on error."""
    try:
        token = Path(path).read_text(encoding="utf-8").strip()
    except OSError as error:
        raise DoError(f"cannot read the DigitalOcean token file {path}: {error.strerror}"
                      ) from None
    if not token:
        raise DoError(f"the DigitalOcean token file {path} is empty")
    return token


@dataclass(frozen=True)
class _Answer:
    status: int
    reason: str
    headers: Any  # email.message.Message: .get() is case-insensitive, as throttle reads it
    content: bytes


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an error: the token is never sent elsewhere


@dataclass
class DoClient:
    """The API at ``base_url`` (no trailing slash) with ``token``."""

    base_url: str
    token: str
    sleep: Callable[[float], None] = time.sleep
    _opener: Any = field(default_factory=lambda: urllib.request.build_opener(_NoRedirect()),
                         repr=False)

    def __repr__(self) -> str:  # the dataclass default would print the token
        return f"DoClient({self.base_url!r})"

    # ------------------------------------------------------------------ calls

    def droplets_by_tag(self, tag: str, deadline: float | None = None) -> list[dict[str, Any]]:
        """Every droplet carrying ``tag`` (GET /v2/droplets?tag_name=, all pages)."""
        return self._list("/v2/droplets", "droplets", {"tag_name": tag}, deadline)

    def sizes(self, deadline: float | None = None) -> list[dict[str, Any]]:
        """The account's droplet sizes (GET /v2/sizes, all pages)."""
        return self._list("/v2/sizes", "sizes", {}, deadline)

    def create_droplets(self, names: list[str], spec: dict[str, Any],
                        deadline: float | None = None) -> list[dict[str, Any]]:
        """POST /v2/droplets with ``names`` (1 to 10) and ``spec``; the droplets made."""
        body = self._send("POST", "/v2/droplets", None, {**spec, "names": names}, deadline,
                          attempts=1)
        droplets: list[dict[str, Any]] = body.get("droplets") or []
        return droplets

    def get_droplet(self, droplet_id: int,
                    deadline: float | None = None) -> dict[str, Any] | None:
        """GET /v2/droplets/ID; None when there is no such droplet (404)."""
        try:
            body = self._send("GET", f"/v2/droplets/{droplet_id}", None, None, deadline)
        except DoError as error:
            if error.status == 404:
                return None
            raise
        droplet: dict[str, Any] | None = body.get("droplet")
        return droplet

    def delete_droplet(self, droplet_id: int, deadline: float | None = None) -> bool:
        """DELETE /v2/droplets/ID; False when it was already gone (404)."""
        try:
            self._send("DELETE", f"/v2/droplets/{droplet_id}", None, None, deadline)
        except DoError as error:
            if error.status == 404:
                return False
            raise
        return True

    # ------------------------------------------------------------------ plumbing

    def _list(self, path: str, key: str, query: dict[str, str],
              deadline: float | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        page = 1
        while True:
            body = self._send("GET", path, {**query, "page": str(page),
                                            "per_page": str(PER_PAGE)}, None, deadline)
            items.extend(body.get(key) or [])
            if not ((body.get("links") or {}).get("pages") or {}).get("next"):
                return items
            page += 1

    def _send(self, method: str, path: str, query: dict[str, str] | None, body: Any,
              deadline: float | None, attempts: int = READ_ATTEMPTS) -> dict[str, Any]:
        what = f"{method} {path}"
        waited = 0.0
        throttled = failures = 0
        while True:
            timeout = REQUEST_TIMEOUT if deadline is None else deadline - time.monotonic()
            if timeout <= 0:
                raise DoError(f"{what}: no time left before the caller's deadline")
            try:
                response = self._exchange(method, path, query, body,
                                          min(timeout, REQUEST_TIMEOUT))
            except (urllib.error.URLError, HTTPException, OSError) as error:
                failures += 1
                if failures >= attempts:
                    raise DoError(f"{what}: cannot reach the API: {type(error).__name__}"
                                  ) from None
                self._pause(0.5 * failures, deadline, what)
                continue
            if response.status == 429:
                throttled += 1
                refusal = throttle.Refusal(
                    throttle.header_number(response.headers, "Retry-After"),
                    _whole(throttle.header_number(response.headers, "RateLimit-Remaining")),
                    throttle.header_number(response.headers, "RateLimit-Reset"))
                try:
                    delay = throttle.wait_for(refusal, waited, throttled, what)
                except throttle.LimitReached as limit:
                    raise DoError(str(limit), 429, "too_many_requests") from None
                self._pause(delay, deadline, what, status=429)
                waited += delay
                continue
            if response.status >= 500 and failures + 1 < attempts:
                failures += 1
                self._pause(0.5 * failures, deadline, what)
                continue
            return _decode(what, response)

    def _exchange(self, method: str, path: str, query: dict[str, str] | None, body: Any,
                  timeout: float) -> _Answer:
        """One HTTP exchange; any answer (an error status too) as an :class:`_Answer`."""
        url = self.base_url + path + ("?" + urllib.parse.urlencode(query) if query else "")
        request = urllib.request.Request(
            url, method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self.token}",
                     "Content-Type": "application/json", "Accept": "application/json"})
        try:
            with self._opener.open(request, timeout=timeout) as response:
                return _Answer(response.status, response.reason, response.headers,
                               response.read())
        except urllib.error.HTTPError as error:
            with error:
                return _Answer(error.code, str(error.reason), error.headers, error.read())

    def _pause(self, seconds: float, deadline: float | None, what: str,
               status: int = 0) -> None:
        if deadline is not None and time.monotonic() + seconds >= deadline:
            reason = "rate limited (429)" if status == 429 else "failing"
            raise DoError(f"{what}: the API is {reason} and the caller's deadline comes "
                          "before the next try", status, "too_many_requests" if status else "")
        self.sleep(seconds)


def _whole(value: float | None) -> int | None:
    return None if value is None else int(value)


def _decode(what: str, response: _Answer) -> dict[str, Any]:
    status = response.status
    try:
        data = json.loads(response.content) if response.content else {}
    except ValueError:
        data = {}
    data = data if isinstance(data, dict) else {}
    if 200 <= status < 300:
        return data
    message = str(data.get("message") or response.reason or "no message")[:300]
    raise DoError(f"{what}: {status} {message}", status, str(data.get("id") or ""))
