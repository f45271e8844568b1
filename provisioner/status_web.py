"""`provision status --web`: the status screen as a local, read-only web page.

A stdlib HTTP server bound to loopback only serves two things: ``/`` (the page,
`provisioner.ui.web_page`) and ``/status.json`` (the same dict `status --output json`
prints). Each request reads the status again unless the last read is younger than
`CACHE_SECONDS`: a reload shows the world as it is, while a browser's reload bursts (or two
tabs) do not fan out into bursts of cloud and API calls (DigitalOcean allows 250 requests a
minute per token). Anything but GET or HEAD of those two paths is refused, and so is a
request whose Host header is not a loopback name with the bound port (421 Misdirected
Request): binding to loopback does not stop DNS rebinding, where a page from elsewhere
makes its own name resolve to 127.0.0.1 and reads the answers as same-origin; only the Host
it then sends (its own name) tells such a request apart.

Click-free: the command (provisioner/cli/status.py) passes a function that reads the status,
and `serve` runs until SIGINT or SIGTERM, then returns (the command exits 0).
"""

from __future__ import annotations

import base64
import hashlib
import json
import signal
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from provisioner import clock
from provisioner.errors import UsageError
from provisioner.ui import web_page

CACHE_SECONDS = 5.0
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def loopback_host(host: str | None, port: int) -> bool:
    """`host` (a Host header) names this loopback server: 127.0.0.1, [::1] or localhost
    with `port` (which a browser leaves out only for port 80, RFC 9110 section 7.2 and
    4.2.1: the default port is omitted)."""
    if not host:
        return False
    allowed = {f"{name}:{port}" for name in ("127.0.0.1", "[::1]", "localhost")}
    if port == 80:
        allowed |= {"127.0.0.1", "[::1]", "localhost"}
    return host.strip().lower() in allowed


def _style_hash() -> str:
    digest = hashlib.sha256(web_page._STYLE.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


# Nothing runs and nothing loads from elsewhere: only the page's own style element.
CSP = (f"default-src 'none'; style-src {_style_hash()}; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


class StatusCache:
    """The last status read and when; read again once older than `max_age` seconds."""

    def __init__(self, read: Callable[[], dict[str, Any]], max_age: float = CACHE_SECONDS,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._max_age = max_age
        self._monotonic = monotonic
        self._lock = threading.Lock()  # one read at a time; others wait for its result
        self._value: tuple[float, dict[str, Any], str] | None = None
        self.reads = 0

    def get(self) -> tuple[dict[str, Any], str]:
        """The status and when it was read (UTC, to the second)."""
        with self._lock:
            now = self._monotonic()
            if self._value is None or now - self._value[0] >= self._max_age:
                status = self._read()
                self.reads += 1
                read_at = clock.now().strftime("%Y-%m-%d %H:%M:%S UTC")
                self._value = (now, status, read_at)
            return self._value[1], self._value[2]


def _handler(cache: StatusCache) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "provision-status"
        sys_version = ""

        def do_GET(self) -> None:
            self._answer(head=False)

        def do_HEAD(self) -> None:
            self._answer(head=True)

        def _answer(self, head: bool) -> None:
            address = self.server.server_address  # the port bound (--port 0: the OS's)
            port = int(address[1]) if isinstance(address, tuple) else 0
            if not loopback_host(self.headers.get("Host"), port):
                self._send(421, b"misdirected request: open this page by its loopback "
                                b"address\n", "text/plain; charset=utf-8", head)
                return
            path = self.path.split("?", 1)[0]
            if path not in ("/", "/status.json"):
                self._send(404, b"not found\n", "text/plain; charset=utf-8", head)
                return
            status, read_at = cache.get()
            if path == "/status.json":
                body = json.dumps(status, indent=2, sort_keys=True).encode()
                self._send(200, body, "application/json", head)
            else:
                page = web_page.render_page(status, read_at).encode()
                self._send(200, page, "text/html; charset=utf-8", head)

        def _send(self, code: int, body: bytes, content_type: str, head: bool) -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Content-Security-Policy", CSP)
            self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            if not head:
                self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the terminal is the operator's; request lines would bury the URL

    return Handler


def bind(host: str, port: int, cache: StatusCache) -> ThreadingHTTPServer:
    """A server on `host`:`port` (0: a free port the OS picks); loopback addresses only."""
    if host not in LOOPBACK:
        raise UsageError(f"--host {host}: the status page is served on loopback only "
                         "(127.0.0.1 or ::1); reach it from elsewhere through an SSH tunnel")
    server_class = ThreadingHTTPServer
    if ":" in host:
        import socket

        class V6(ThreadingHTTPServer):
            address_family = socket.AF_INET6

        server_class = V6
    try:
        server = server_class((host, port), _handler(cache))
    except OSError as e:
        raise UsageError(f"--port {port}: cannot listen on {host}:{port} ({e.strerror}); "
                         "choose another port, or 0 for any free one") from e
    server.daemon_threads = True
    return server


def url_of(server: ThreadingHTTPServer) -> str:
    host, port = server.server_address[:2]
    host = str(host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def serve(server: ThreadingHTTPServer, on_ready: Callable[[], None] = lambda: None) -> None:
    """Serve until SIGINT or SIGTERM; then close the socket and return. `on_ready` runs once
    the signals are handled (it announces the URL: a signal sent on seeing it must stop the
    server, not kill the process)."""
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2},
                              daemon=True)
    worker.start()
    try:
        on_ready()
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for s, handler in previous.items():
            signal.signal(s, handler)


def has_browser() -> bool:
    """A browser can be opened: not in CI, and `webbrowser` finds one (a display or a
    console browser). `webbrowser.open` itself returns True for some launchers that fail."""
    import os

    if os.environ.get("CI"):
        return False
    import webbrowser

    try:
        webbrowser.get()
    except webbrowser.Error:
        return False
    return True


def open_browser(url: str) -> bool:
    import webbrowser

    try:
        return webbrowser.open(url, new=2)
    except webbrowser.Error:
        return False
