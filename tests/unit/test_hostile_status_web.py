"""Hostile review of `status --web` (branch hostile2): breaks that a fix must make pass."""

from __future__ import annotations

import http.client
import threading
from typing import Any

from provisioner import status_web


def _serve() -> tuple[Any, int]:
    cache = status_web.StatusCache(lambda: {"environment": "prod", "cluster": {}}, max_age=0)
    server = status_web.bind("127.0.0.1", 0, cache)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, int(server.server_address[1])


def test_dns_rebinding_host_header_is_refused() -> None:
    """DNS rebinding: a web page on attacker.example, open in the operator's browser, makes
    its name resolve to 127.0.0.1 and then fetches http://attacker.example:PORT/status.json
    as same-origin, reading the whole status (droplets, addresses, last deploy, reasons).
    The only defence a loopback server has is to answer only requests whose Host header
    names loopback (as e.g. Jupyter's `allow_remote_access=False` and webpack-dev-server's
    `allowedHosts` do). Today the server answers 200 whatever the Host says."""
    server, port = _serve()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/status.json", headers={"Host": f"attacker.example:{port}"})
        answer = conn.getresponse()
        answer.read()
        assert answer.status in (400, 403, 421), (
            f"status.json served to Host attacker.example (HTTP {answer.status})")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/status.json", headers={"Host": f"127.0.0.1:{port}"})
        ok = conn.getresponse()
        ok.read()
        assert ok.status == 200
    finally:
        server.shutdown()
        server.server_close()
