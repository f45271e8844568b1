"""`provision dashboard` against the fake API server, run as a real process.

The TokenRequest API is the fake's (tests/fakes/kubeapi/tokens.py, after the Kubernetes
API reference's TokenRequest authentication.k8s.io/v1: POST .../serviceaccounts/<name>/
token, ``spec.expirationSeconds``, ``status.token`` and ``status.expirationTimestamp``).
The clipboard is the one thing stood in for: an ``xclip`` on PATH that writes what it is
given to a file (the subprocess boundary), so the test can tell which token reached it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.render import headlamp
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.rendering import ROOT, example_document

pytestmark = pytest.mark.integration


def _config(tmp_path: Path, addon: bool) -> Path:
    doc = example_document("production")
    if addon:
        doc["addons"] = {"headlamp": True}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _clipboard(tmp_path: Path) -> tuple[Path, Path]:
    """A folder with a stand-in `xclip` that keeps its stdin in `clipboard.txt`."""
    bin_dir, kept = tmp_path / "bin", tmp_path / "clipboard.txt"
    bin_dir.mkdir()
    tool = bin_dir / "xclip"
    tool.write_text(f"#!/bin/sh\ncat > '{kept}'\n")
    tool.chmod(0o755)
    return bin_dir, kept


def _start(tmp_path: Path, config: Path, kubeconfig: Path, path: str,
           *extra: str) -> subprocess.Popen[str]:
    env = {"PATH": path, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path), "CI": "true",
           "LANG": "C.UTF-8"}
    return subprocess.Popen(
        [sys.executable, "-m", "provisioner", "dashboard", str(config), "--kubeconfig",
         str(kubeconfig), "--no-browser", *extra], env=env, cwd=tmp_path, text=True,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _run_until_url(process: subprocess.Popen[str]) -> tuple[str, str, str]:
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    return url, stdout, stderr


def _files_holding(root: Path, secret: str, skip: Path) -> list[Path]:
    found = []
    for file in root.rglob("*"):
        if file.is_file() and file != skip and secret.encode() in file.read_bytes():
            found.append(file)
    return found


@pytest.mark.parametrize("admin", [False, True], ids=["read-only", "admin"])
def test_token_is_short_lived_for_the_right_account_and_only_on_the_clipboard(
        tmp_path: Path, admin: bool) -> None:
    bin_dir, kept = _clipboard(tmp_path)
    with FakeKubeAPI() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        process = _start(tmp_path, _config(tmp_path, addon=True), kubeconfig,
                         f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin",
                         *(["--admin"] if admin else []))
        url, stdout, stderr = _run_until_url(process)
        assert process.returncode == 0, stderr
        assert url.startswith("http://127.0.0.1:"), (url, stderr)

        issued = kube.issued_tokens
        assert len(issued) == 1
        token = issued[0]
        assert token.namespace == headlamp.NAMESPACE
        assert token.service_account == (headlamp.ADMIN_ACCOUNT if admin
                                          else headlamp.VIEW_ACCOUNT)
        assert token.expiration_seconds == 3600
        assert kept.read_text() == token.token  # on the clipboard ...
        assert token.token not in stdout + stderr + url  # ... and nowhere it is printed
        assert _files_holding(tmp_path, token.token, skip=kept) == []
        assert "on the clipboard" in stderr

        # The add-on as applied: the pinned image, the read-only account and its role. The
        # admin account existed while an --admin run lasted (the fake's TokenRequest, like
        # the real one, answers 404 for a missing account) and is gone once it ended: no
        # cluster-admin account stands in the cluster to be borrowed by a pod.
        deployment = kube.get("apps/v1", "Deployment", headlamp.NAME, headlamp.NAMESPACE)
        assert deployment is not None
        image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        assert image == headlamp.IMAGE and "@sha256:" in image
        bindings = {name: kube.get("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", name)
                    for name in (headlamp.VIEW_ACCOUNT, headlamp.ADMIN_ACCOUNT)}
        roles = {name: (b or {}).get("roleRef", {}).get("name") for name, b in bindings.items()}
        assert roles == {headlamp.VIEW_ACCOUNT: "view", headlamp.ADMIN_ACCOUNT: None}
        assert kube.get("v1", "ServiceAccount", headlamp.ADMIN_ACCOUNT,
                        headlamp.NAMESPACE) is None
        assert kube.get("v1", "ServiceAccount", headlamp.VIEW_ACCOUNT,
                        headlamp.NAMESPACE) is not None
        assert ("removed the admin account" in stderr) == admin


def test_without_clipboard_or_terminal_no_token_is_asked_for(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    with FakeKubeAPI() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        process = _start(tmp_path, _config(tmp_path, addon=True), kubeconfig, str(empty))
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert "clipboard" in stderr and "terminal" in stderr
        assert kube.issued_tokens == []


def test_refused_without_the_addon(tmp_path: Path) -> None:
    with FakeKubeAPI() as kube:
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        process = _start(tmp_path, _config(tmp_path, addon=False), kubeconfig, "/usr/bin")
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 2, stderr
        assert "addons.headlamp" in stderr and "headlamp: true" in stderr
        assert kube.issued_tokens == []


def test_fake_token_request_follows_the_api_reference() -> None:
    """Default expiry 3600 s, the API server's audiences, under 10 minutes refused (422),
    an unknown account 404; the token authenticates as its service account."""
    import json
    import urllib.error
    import urllib.request

    with FakeKubeAPI(tokens={"admin-token": "kubernetes-admin"}) as kube:
        def post(account: str, spec: dict[str, object],
                 token: str = "admin-token") -> dict[str, Any]:
            request = urllib.request.Request(
                f"{kube.base_url}/api/v1/namespaces/ns/serviceaccounts/{account}/token",
                method="POST", data=json.dumps({"apiVersion": "authentication.k8s.io/v1",
                                                "kind": "TokenRequest",
                                                "spec": spec}).encode(),
                headers={"Content-Type": "application/json",
                         "Authorization": f"Bearer {token}"})
            with urllib.request.urlopen(request, timeout=30) as r:
                return dict(json.loads(r.read()))

        with pytest.raises(urllib.error.HTTPError) as missing:
            post("reader", {})
        assert missing.value.code == 404
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}})
        kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                     "metadata": {"name": "reader", "namespace": "ns"}})
        answer = post("reader", {})
        assert answer["spec"]["expirationSeconds"] == 3600
        assert answer["spec"]["audiences"]
        assert answer["status"]["token"] and answer["status"]["expirationTimestamp"]
        with pytest.raises(urllib.error.HTTPError) as short:
            post("reader", {"expirationSeconds": 599})
        assert short.value.code == 422
        # The new token is a user of its own: it can ask (the fake has no RBAC).
        again = post("reader", {"expirationSeconds": 600}, token=answer["status"]["token"])
        assert again["spec"]["expirationSeconds"] == 600


def _wait_for_ready_pod(kube: FakeKubeAPI) -> None:
    """Until the fake's deployment controller has a Headlamp pod Ready (it starts pods a
    few controller steps after the Deployment is applied)."""
    import json
    import time
    import urllib.request

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{kube.base_url}/api/v1/namespaces/"
                                    f"{headlamp.NAMESPACE}/pods", timeout=30) as r:
            pods = json.loads(r.read())["items"]
        if any(c.get("type") == "Ready" and c.get("status") == "True"
               for p in pods for c in (p.get("status") or {}).get("conditions") or []):
            return
        time.sleep(0.2)
    raise AssertionError("no Headlamp pod became Ready in the fake")


class _StandIn:
    """What answers on the Headlamp pod's port here: a page that says whose it is."""

    PAGE = b"<!DOCTYPE html><html><head><title>Headlamp stand-in</title></head>" \
           b"<body><h1>Headlamp stand-in</h1><p id='path'>served through the pod</p>" \
           b"</body></html>"

    def __enter__(self) -> tuple[str, int]:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        page = self.PAGE

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(page)))
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        host, port = self.server.server_address[:2]
        return str(host), int(port)

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_url_reaches_the_headlamp_pod_through_the_api_servers_port_forward(
        tmp_path: Path) -> None:
    """Local port -> kubernetes client's portforward -> the fake API server's
    pods/portforward (WebSocket, v4.channel.k8s.io) -> the pod's port 4466; loaded with
    urllib, and in headless Chromium when it is installed (screenshot in the artefacts)."""
    import http.client
    import shutil
    import urllib.request

    bin_dir, _ = _clipboard(tmp_path)
    with FakeKubeAPI() as kube, _StandIn() as pod_port:
        kube.pod_ports[(headlamp.NAMESPACE, headlamp.PORT)] = pod_port
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        process = _start(tmp_path, _config(tmp_path, addon=True), kubeconfig,
                         f"{bin_dir}{os.pathsep}/usr/bin{os.pathsep}/bin")
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:"), url
            _wait_for_ready_pod(kube)
            with urllib.request.urlopen(url, timeout=60) as r:
                assert r.read() == _StandIn.PAGE
            # DNS rebinding: a page on another name that resolves to 127.0.0.1 is refused
            # before anything is forwarded (the one forward so far is urllib's).
            assert len(kube.port_forwards) == 1
            port = int(url.rstrip("/").rsplit(":", 1)[1])
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/", headers={"Host": f"attacker.example:{port}"})
            refused = conn.getresponse()
            assert refused.status == 421 and _StandIn.PAGE not in refused.read()
            conn.close()
            assert len(kube.port_forwards) == 1
            forwards = kube.port_forwards
            assert forwards and all(f.namespace == headlamp.NAMESPACE
                                    and f.ports == (headlamp.PORT,) for f in forwards)
            assert forwards[0].pod.startswith(f"{headlamp.NAME}-")

            if shutil.which("chromium"):
                from tests.integration.test_status_web_browser import (
                    artefacts,
                    chromium,
                )
                from tests.support import png

                dumped = chromium(tmp_path / "profile", "--dump-dom", url)
                assert dumped.returncode == 0, dumped.stderr[-2000:]
                assert "served through the pod" in dumped.stdout
                shot = artefacts() / "dashboard-headlamp.png"
                shot.unlink(missing_ok=True)
                taken = chromium(tmp_path / "profile-shot", "--window-size=800,600",
                                 f"--screenshot={shot}", url)
                assert taken.returncode == 0, taken.stderr[-2000:]
                image = png.read(shot.read_bytes())
                assert (image.width, image.height) == (800, 600)
                assert len(image.colours()) > 2
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=120)
        assert process.returncode == 0, stderr
        assert "a connection to Headlamp failed" not in stderr
