"""The status page: everything escaped, served on loopback only, read again after the cache."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from html.parser import HTMLParser
from typing import Any

import pytest

from provisioner import status_web
from provisioner.errors import UsageError
from provisioner.ui.web_page import render_page

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
QUOTE = "\" onmouseover=\"alert(2)"


def _status(name: str = "api", label: str = "blue") -> dict[str, Any]:
    return {
        "environment": "prod",
        "infrastructure": {"endpoint": "203.0.113.10"},
        "cloud": {"droplets": {"control-plane": [
            {"name": "prod-cp-1", "status": "active", "size": "s-2vcpu-4gb", "region": "fra1",
             "public_ip": "203.0.113.1", "private_ip": "10.10.0.2", "age_seconds": 7200}],
            "workers": [{"name": HOSTILE, "status": QUOTE, "size": None, "region": "fra1",
                         "public_ip": None, "private_ip": None, "age_seconds": None}]},
            "floating_ip": "203.0.113.10", "floating_ip_holder": "prod-cp-1"},
        "cluster": {
            "nodes": [{"name": "prod-cp-1", "ready": True, "kubelet": "v1.36.2",
                       "role": "control-plane", "cordoned": False, "etcd": "Ready",
                       "vrrp_state": "MASTER", "droplet_age_seconds": 7200}],
            "apps": [{"name": name, "kind": "Deployment", "desired": 2, "updated": 2,
                      "available": 2, "ready": 2, "images": [f"ghcr.io/acme/{name}:1"],
                      "colour": label}],
            "last_deploy": {"at": "2026-12-07T10:00:00Z", "by": HOSTILE,
                            "images": {HOSTILE: QUOTE}},
            "backups": {"last_snapshot_at": "2026-12-07T09:00:00Z", "age_seconds": 3600,
                        "node": "prod-cp-1", "stale": False, "last_error": HOSTILE,
                        "last_error_at": "2026-12-07T08:00:00Z"}},
    }


class _Tags(HTMLParser):
    """Every start tag and attribute name the browser's parser would see."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    return parser


def test_hostile_names_and_labels_are_text_not_markup() -> None:
    page = render_page(_status(name=HOSTILE, label=QUOTE), "now")
    parsed = _parse(page)
    assert "script" not in parsed.tags and "img" not in parsed.tags
    assert not any(a.startswith("on") for a in parsed.attrs)  # no handler attribute
    text = "".join(parsed.text)
    assert HOSTILE in text and QUOTE in text  # shown, as text
    # The colour label picks a class only among our two names.
    assert 'class="" onmouseover' not in page


def test_page_shows_droplets_nodes_apps_floating_ip_deploy_and_backups() -> None:
    text = "".join(_parse(render_page(_status(), "2026-12-07 10:00:00 UTC")).text)
    for expected in ("prod-cp-1", "s-2vcpu-4gb", "fra1", "203.0.113.1", "10.10.0.2",
                     "v1.36.2", "control-plane", "MASTER", "2/2", "ghcr.io/acme/api:1", "blue",
                     "Floating IP 203.0.113.10 is on prod-cp-1", "2026-12-07T10:00:00Z",
                     "Newest etcd snapshot 1h0m ago"):
        assert expected in text, expected


def test_sources_not_read_say_why() -> None:
    status = {"environment": "prod", "infrastructure": {"endpoint": None},
              "cloud": {"error": "no DIGITALOCEAN_TOKEN: droplets not listed", "kind": "absent"},
              "cluster": {"error": "no kubeconfig yet: run `provision up`", "kind": "absent"}}
    text = "".join(_parse(render_page(status, "now")).text)
    assert "no DIGITALOCEAN_TOKEN" in text and "no kubeconfig yet" in text


def test_cache_reads_again_only_after_max_age() -> None:
    now = [100.0]
    reads: list[int] = []

    def read() -> dict[str, Any]:
        reads.append(1)
        return {"n": len(reads)}

    cache = status_web.StatusCache(read, max_age=5, monotonic=lambda: now[0])
    assert cache.get()[0] == {"n": 1}
    now[0] += 4.9
    assert cache.get()[0] == {"n": 1}
    now[0] += 0.1
    assert cache.get()[0] == {"n": 2}


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.1", "example.com"])
def test_only_loopback_is_served(host: str) -> None:
    with pytest.raises(UsageError, match="loopback only"):
        status_web.bind(host, 0, status_web.StatusCache(dict))


def test_server_answers_page_json_and_refuses_the_rest() -> None:
    import threading

    cache = status_web.StatusCache(lambda: _status(name=HOSTILE), max_age=0)
    server = status_web.bind("127.0.0.1", 0, cache)
    assert server.server_address[0] == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = status_web.url_of(server)
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            page = r.read().decode()
            assert r.headers["Content-Type"] == "text/html; charset=utf-8"
            assert "default-src 'none'" in r.headers["Content-Security-Policy"]
            assert r.headers["Cache-Control"] == "no-store"
        assert "&lt;script&gt;" in page
        with urllib.request.urlopen(url + "status.json", timeout=30) as r:
            assert json.loads(r.read())["cluster"]["apps"][0]["name"] == HOSTILE
        assert cache.reads == 2  # max_age 0: each request read the status again
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(url + "secrets", timeout=30)
        assert missing.value.code == 404
        post = urllib.request.Request(url, data=b"x", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(post, timeout=30)
        assert refused.value.code == 501  # only GET and HEAD exist
    finally:
        server.shutdown()
        server.server_close()


def test_style_hash_in_csp_matches_the_page_style() -> None:
    """A changed style without a changed hash would leave the page unstyled (CSP blocks it)."""
    import base64
    import hashlib
    import re

    page = render_page(_status(), "now")
    style = re.search(r"<style>(.*?)</style>", page, re.S)
    assert style is not None
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    assert f"'sha256-{digest}'" in status_web.CSP
