"""The rendered bootstrap's add-on downloads, run for real against a local HTTP server.

The script is taken from the production example's rendered user-data and sourced by bash
without its final ``main "$@"`` call, so its own functions run: ``fetch_verified`` (curl,
then sha256sum against the digest provision rendered) and ``fetch_addons`` with its URLs
pointed at a server on the loopback interface. A good file is kept; a tampered one stops
the script with an exit status other than 0 and a message naming the add-on, the URL and
both digests, and nothing of it is left where the next step would apply it.
"""

from __future__ import annotations

import hashlib
import http.server
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import yaml

from provisioner.render import addons
from provisioner.render.cloudinit import ADDONS_DIR
from tests.support.rendering import materialize, rendered, written

pytestmark = pytest.mark.integration

BOOTSTRAP = "/usr/local/sbin/provision-bootstrap"
RAW = "https://raw.githubusercontent.com"
GOOD = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: pinned}\n"
TAMPERED = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: swapped}\n"


@dataclass
class Server:
    root: Path
    base: str
    requested: list[str] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            requested.append(self.path)

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}", requested)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


def script_library(tmp_path: Path, base: str | None = None) -> Path:
    """The production bootstrap script, its functions only (no `main` call); with `base`,
    the add-ons' host replaced by the local server and ADDONS_DIR by a folder of this test."""
    config = yaml.safe_load(materialize(rendered("production")["cloud-init/controller-init.yaml"]))
    (text,) = [written(f) for f in config["write_files"] if f["path"] == BOOTSTRAP]
    assert text.rstrip().endswith('\nmain "$@"')
    text = text.rstrip().removesuffix('main "$@"')
    if base is not None:
        assert text.count(f"readonly ADDONS_DIR={ADDONS_DIR}\n") == 1
        text = text.replace(f"readonly ADDONS_DIR={ADDONS_DIR}\n",
                            f"readonly ADDONS_DIR={tmp_path / 'addons'}\n")
        text = text.replace(RAW, base)
    path = tmp_path / "bootstrap-functions.sh"
    path.write_text(text)
    return path


def run(library: Path, *command: str) -> subprocess.CompletedProcess[str]:
    assert shutil.which("curl") and shutil.which("sha256sum")
    return subprocess.run(["bash", "-c", 'source "$0"; "$@"', str(library), *command],
                          capture_output=True, text=True, timeout=120)


def test_a_file_with_the_pinned_digest_is_kept(tmp_path: Path, server: Server) -> None:
    (server.root / "calico-vxlan.yaml").write_bytes(GOOD)
    dest = tmp_path / "01-calico.yaml"
    url = f"{server.base}/calico-vxlan.yaml"
    result = run(script_library(tmp_path), "fetch_verified", "calico", url,
                 hashlib.sha256(GOOD).hexdigest(), str(dest))
    assert result.returncode == 0, result.stderr
    assert dest.read_bytes() == GOOD
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("01-")) == [
        "01-calico.yaml"]


def test_a_tampered_file_stops_the_script_naming_the_add_on(tmp_path: Path,
                                                            server: Server) -> None:
    (server.root / "calico-vxlan.yaml").write_bytes(TAMPERED)
    dest = tmp_path / "01-calico.yaml"
    url = f"{server.base}/calico-vxlan.yaml"
    expected, actual = hashlib.sha256(GOOD).hexdigest(), hashlib.sha256(TAMPERED).hexdigest()
    result = run(script_library(tmp_path), "fetch_verified", "calico", url, expected,
                 str(dest))
    assert result.returncode != 0
    assert (f"add-on calico: checksum mismatch for {url}: expected sha256 {expected}, "
            f"got {actual}") in result.stderr
    assert not dest.exists()
    assert not any(p.name.startswith("01-calico") for p in tmp_path.iterdir())


def test_fetch_addons_stops_at_the_first_mismatch_before_fetching_more(
        tmp_path: Path, server: Server) -> None:
    """The rendered fetch_addons, its URLs' host swapped for the local server: the pod
    network's file (first) comes back with other content than pinned; the script exits
    non-zero naming calico and its tagged URL, and asks for nothing after it."""
    (calico,) = addons.pins("calico")
    served = server.root / calico.url.removeprefix(RAW + "/")
    served.parent.mkdir(parents=True)
    served.write_bytes(TAMPERED)
    result = run(script_library(tmp_path, server.base), "fetch_addons")
    url = calico.url.replace(RAW, server.base)
    assert result.returncode != 0
    assert (f"add-on calico: checksum mismatch for {url}: expected sha256 {calico.sha256}, "
            f"got {hashlib.sha256(TAMPERED).hexdigest()}") in result.stderr
    assert server.requested == ["/" + calico.url.removeprefix(RAW + "/")]
    assert list((tmp_path / "addons" / "01-calico").iterdir()) == []


def test_fetch_addons_lays_out_every_file_when_all_match(tmp_path: Path,
                                                                 server: Server) -> None:
    """Every pinned file served with content whose digest is the one rendered: here the
    rendered digests are swapped for the stand-ins' (the script is otherwise as rendered),
    and each file lands where the apply step reads it."""
    library = script_library(tmp_path, server.base)
    text = library.read_text()
    contents = {}
    for pin in addons.PINS:
        if pin.addon == "flannel":
            continue
        body = f"# stand-in for {pin.repo} {pin.version} {pin.path}\n".encode()
        served = server.root / pin.url.removeprefix(RAW + "/")
        served.parent.mkdir(parents=True, exist_ok=True)
        served.write_bytes(body)
        text = text.replace(pin.sha256, hashlib.sha256(body).hexdigest())
        contents[pin.path] = body
    library.write_text(text)
    result = run(library, "fetch_addons")
    assert result.returncode == 0, result.stderr
    root = tmp_path / "addons"
    kept = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    assert "01-calico/upstream.yaml" in kept and "06-metrics-server/base/rbac.yaml" in kept
    assert len(kept) == len(contents)
    assert not any(name.endswith(".download") for name in kept)
