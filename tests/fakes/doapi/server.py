"""`FakeDigitalOcean`: the fake API v2 over real HTTP on 127.0.0.1, standard library only.

Each request passes, in order: injected latency, authentication (401), the account's rate
limits when enforced (429, tests/fakes/doprovider/ratelimit.py), injected 429 / 5xx, then
routing (404 for anything unknown). Every request is logged as a
`RequestRecord` after it has been answered. Responses carry the headers real clients
look at: `ratelimit-limit` / `-remaining` / `-reset`, `x-request-id`, JSON content type.
"""

from __future__ import annotations

import contextlib
import copy
import hmac
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterable
from fnmatch import fnmatchcase
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.fakes.doprovider import ratelimit
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION

from . import provider, seeding
from .faults import Faults, RequestRecord
from .monitoring import Monitoring
from .openapi import Violation
from .openapi import shared as openapi_description
from .routes import Api, Request, Response, error

DEFAULT_TOKEN = "sim-token"  # what prepare_plugin_env(token=...) tests tend to use
RATE_LIMIT = 5000  # requests per hour, as DigitalOcean grants
# What the edge proxy answers when the API behind it fails (see Faults.garble).
GARBLED_PAGE = ("<!DOCTYPE html>\n<html><head><title>api.digitalocean.com | 502: Bad gateway"
                "</title></head><body><h1>Bad gateway</h1><span>Cloudflare</span></body></html>\n")


class FakeDigitalOcean:
    """A fake DigitalOcean API v2 on the account file the fake Terraform provider uses.

    ::

        with FakeDigitalOcean(env["DO_SIM_STATE"], tokens="sim-token") as fake:
            monkeypatch.setenv("DIGITALOCEAN_END_POINT", fake.endpoint)  # or fake.env()
            manager = digitalocean.Manager(token="sim-token")
            manager.get_all_droplets(tag_name="k8s")

    Set DIGITALOCEAN_END_POINT rather than relying on `Manager(end_point=...)`: objects
    the Manager creates (`get_account()`, `get_droplet()`, a listed droplet's
    `destroy()`...) read the end point from the environment and would go to the real API.

    `state` is the account file (or a `Cloud`); `tokens` the bearer token(s) accepted;
    `faults` the failure injection knobs (also reachable as `fake.faults` at any time).
    With `validate=True` every request and response is checked against DigitalOcean's
    OpenAPI description (openapi.py); what disagrees is kept in `violations`.
    `rate_limit` enforces DigitalOcean's per-token limits (`ratelimit.Limits()`: 250 a
    minute, 5,000 an hour) on the log the simulated provider shares, by `clock` (simulated
    Unix time; default the wall clock times DO_SIM_TIME_SCALE); off by default.
    """

    def __init__(
        self,
        state: Cloud | Path | str,
        tokens: str | Iterable[str] = DEFAULT_TOKEN,
        *,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        validate: bool = False,
        rate_limit: ratelimit.Limits | None = None,
        clock: ratelimit.Clock | None = None,
    ) -> None:
        self.cloud = seeding.as_cloud(state)
        self.tokens = (tokens,) if isinstance(tokens, str) else tuple(tokens)
        if not self.tokens:
            raise ValueError("at least one valid token is needed")
        self.faults = faults or Faults()
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        self._remaining = RATE_LIMIT
        self._openapi = openapi_description() if validate else None
        self._violations: list[Violation] = []
        self.api = Api(self.cloud, self.faults, lambda: self.origin, self.tokens[0])
        self.limiter: ratelimit.RateLimiter | None = None
        self.retry_after = True
        if rate_limit is not None:
            self.limit_rate(rate_limit, clock)

    def limit_rate(self, limits: ratelimit.Limits | None = None,
                   clock: ratelimit.Clock | None = None,
                   retry_after: bool = True) -> ratelimit.RateLimiter:
        """Enforce DigitalOcean's per-token rate limits from now on (the documented ones by
        default); the simulated provider counts against the same log when its process has
        DO_SIM_RATE_LIMIT set. ``retry_after=False``: 429s without ``Retry-After``, as the
        API reference documents them (ratelimit.py)."""
        self.retry_after = retry_after
        self.limiter = ratelimit.RateLimiter(ratelimit.log_path(self.cloud.path),
                                             limits or ratelimit.Limits(), clock)
        return self.limiter

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> str:
        """Listen on a free port (unless one was given); return `endpoint` (…/v2/)."""
        if self._server is not None:
            return self.endpoint
        server = _Server(self._address, _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True,
            name=f"fake-digitalocean:{server.server_address[1]}",
        )  # fmt: skip
        self._thread.start()
        return self.endpoint

    def stop(self) -> None:
        """Stop serving and drop open keep-alive connections; safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeDigitalOcean:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def monitoring(self) -> Monitoring:
        """The load balancer metrics this fake serves; tests inject traffic there
        (``fake.monitoring.traffic(lb_id, since, until, **{"2xx": 40, "5xx": 2})``)."""
        return self.api.monitoring

    @property
    def port(self) -> int:
        """The TCP port being served (only while started)."""
        if self._server is None:
            raise RuntimeError("FakeDigitalOcean is not started")
        return int(self._server.server_address[1])

    @property
    def origin(self) -> str:
        """The scheme, host and port, e.g. http://127.0.0.1:PORT (links in bodies use it)."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def endpoint(self) -> str:
        """http://127.0.0.1:PORT/v2/, for DIGITALOCEAN_END_POINT or Manager(end_point=...)."""
        return f"{self.origin}/v2/"

    def env(self) -> dict[str, str]:
        """Variables pointing python-digitalocean (and the product) at this fake."""
        return {
            "DIGITALOCEAN_END_POINT": self.endpoint,
            "DIGITALOCEAN_ACCESS_TOKEN": self.tokens[0],
            "DIGITALOCEAN_TOKEN": self.tokens[0],
        }

    # ---------------------------------------------------------------- request log

    @property
    def request_log(self) -> list[RequestRecord]:
        """Every answered request so far, oldest first (a copy)."""
        with self._log_lock:
            return list(self._log)

    def requests(self, method: str | None = None, path: str | None = None) -> list[RequestRecord]:
        """Logged requests with this method and a path matching the glob `path`.

        E.g. `fake.requests("POST", "/v2/*_ips/*/actions")`.
        """
        return [
            r
            for r in self.request_log
            if (method is None or r.method == method.upper())
            and (path is None or fnmatchcase(r.path, path))
        ]

    @property
    def violations(self) -> list[Violation]:
        """Disagreements with the OpenAPI description so far (only with `validate=True`)."""
        with self._log_lock:
            return list(self._violations)

    def take_violations(self) -> list[Violation]:
        """The violations so far, forgetting them (for tests that send bad bodies on purpose)."""
        with self._log_lock:
            taken, self._violations = self._violations, []
        return taken

    def clear_log(self) -> None:
        """Forget the requests logged so far."""
        with self._log_lock:
            self._log.clear()

    # ---------------------------------------------------------------------- seeds

    def seed(self, **kwargs: Any) -> list[dict[str, Any]]:
        """`seeding.seed()` on this fake's account (profile, catalogue, SSH keys)."""
        return seeding.seed(self.cloud, **kwargs)

    def provider_create(self, type_name: str, **config: Any) -> dict[str, Any]:
        """Create any resource type exactly as the fake provider's apply would.

        E.g. `fake.provider_create("digitalocean_reserved_ip", region="nyc3")`; returns
        the stored object (provider attribute names). Quicker than a Terraform run.
        """
        return provider.create(self.cloud, self.tokens[0], type_name, config)

    def add_droplet(
        self,
        name: str,
        *,
        region: str = DEFAULT_REGION,
        size: str = "s-1vcpu-1gb",
        image: str = "ubuntu-22-04-x64",
        tags: Iterable[str] = (),
        **config: Any,
    ) -> int:
        """Create a droplet through the provider's code (same ids/addresses); its id."""
        droplet = self.provider_create(
            "digitalocean_droplet",
            name=name, region=region, size=size, image=image, tags=list(tags), **config,
        )  # fmt: skip
        return int(droplet["id"])

    def add_load_balancer(self, name: str, tags: Iterable[str] = (), **kwargs: Any) -> str:
        """Create a load balancer as the cloud controller manager would; returns its id."""
        with self.cloud.transaction() as account:
            return str(seeding.add_load_balancer(account, name, tags, **kwargs)["id"])

    def add_volume(self, name: str, size_gib: int, tags: Iterable[str] = (), **kwargs: Any) -> str:
        """Create a block storage volume as the CSI driver would; returns its id."""
        with self.cloud.transaction() as account:
            return str(seeding.add_volume(account, name, size_gib, tags, **kwargs)["id"])

    # ------------------------------------------------------------------- serving

    def respond(self, method: str, target: str, authorization: str, raw: bytes) -> Response:
        """Answer one request (called on the server's handler threads) and log it."""
        arrived = time.time()
        parts = urlsplit(target)
        path = unquote(parts.path).rstrip("/") or "/"
        query = dict(reversed(parse_qsl(parts.query, keep_blank_values=True)))  # first wins
        try:
            body = json.loads(raw) if raw.strip() else None
        except ValueError:
            body = None
        if self.faults.latency > 0:
            time.sleep(self.faults.latency)
        response = self._answer(Request(method, path, query, body), authorization, raw)
        self._finish(response)
        found = (self._openapi.check(method, path, query, body, response.status, response.body)
                 if self._openapi is not None else [])
        with self._log_lock:
            self._violations.extend(found)
            self._log.append(
                RequestRecord(
                    method,
                    path,
                    query,
                    body,
                    response.status,
                    arrived,
                    time.time() - arrived,
                    copy.deepcopy(response.body),
                    dict(response.headers),
                )
            )
        return response

    def _answer(self, req: Request, authorization: str, raw: bytes) -> Response:
        if not self._authorized(authorization):
            return error(401, "Unable to authenticate you")
        verdict = (self.limiter.take(authorization.partition(" ")[2].strip())
                   if self.limiter is not None else None)
        if verdict is not None and not verdict.allowed:
            refused = error(429, ratelimit.MESSAGE, ratelimit.ERROR_ID)
            refused.headers.update(verdict.headers(self._scale(), self.retry_after))
            return refused
        injected = self.faults.take(later_page=req.query.get("page", "1") not in ("", "1"),
                                    method=req.method)
        if injected is not None:
            response = error(injected.status, injected.message, injected.error_id)
            response.headers.update(injected.headers)
            return response
        if raw.strip() and req.body is None:
            return error(400, "unable to decode the request body as JSON")
        try:
            answer = self.api.handle(req)
        except Exception as exc:  # a bug in the fake: answer like a 500, keep serving
            answer = error(500, f"fake DigitalOcean internal error: {exc!r}", "server_error")
        if verdict is not None:
            answer.headers = {**verdict.headers(self._scale()), **answer.headers}
        return answer

    def _scale(self) -> float:
        """Simulated seconds per real second: headers go out in real seconds."""
        return ratelimit.time_scale() if self.limiter is not None else 1.0

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        # compare_digest: not that timing matters here, but it is the right habit.
        return any(hmac.compare_digest(token.strip(), t) for t in self.tokens)

    def _finish(self, response: Response) -> None:
        """Add the headers every DigitalOcean response has."""
        request_id = str(uuid.uuid4())
        with self._log_lock:
            self._remaining = max(self._remaining - 1, 0)
            remaining = self._remaining
        headers = {
            "ratelimit-limit": str(RATE_LIMIT),
            "ratelimit-remaining": str(remaining),
            "ratelimit-reset": str(int(time.time()) + 3600),
            "x-request-id": request_id,
        }
        response.headers = {**headers, **response.headers}
        if response.body is not None and response.status >= 400:
            response.body.setdefault("request_id", request_id)


class _Server(ThreadingHTTPServer):
    """Threaded server that remembers open connections so stop() can cut them."""

    daemon_threads = True
    fake: FakeDigitalOcean

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down idle keep-alive connections (their handler threads then exit)."""
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.1 with keep-alive (requests.Session reuses connections)."""

    protocol_version = "HTTP/1.1"
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length > 0 else b""
        transport = self.server.fake.faults.take_transport()
        if transport == "drop":
            self.close_connection = True  # no status line: the client sees the peer hang up
            return
        if transport == "garble":
            page = GARBLED_PAGE.encode()
            self.send_response(502, "Bad Gateway")
            self.send_header("Content-Type", "text/html; charset=UTF-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        response = self.server.fake.respond(
            self.command, self.path, self.headers.get("Authorization", ""), raw
        )
        payload = b"" if response.body is None else json.dumps(response.body).encode()
        self.send_response(response.status, HTTPStatus(response.status).phrase)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status != 204:
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the request log is kept as data (`FakeDigitalOcean.request_log`)."""
