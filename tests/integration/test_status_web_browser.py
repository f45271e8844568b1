"""`provision status --web` as an operator runs it, loaded in a real headless Chromium.

The world is the simulated one the other status tests use: droplets made by `up --until
infra` in the simulated account, nodes and the deployed apps in the fake API server. The
command runs as a real process (`python -m tests.support.pinned_cli`), prints its URL, and
Chromium (Debian's `chromium`, `--headless`) loads the page twice: `--dump-dom` for the DOM
the browser built (the escaping is judged by the browser's own parser there), and
`--screenshot` for a PNG kept in the test artefacts folder: `test-artifacts/` at the
repository's root (`PROVISION_TEST_ARTIFACTS` names another), which CI keeps. SIGTERM then
stops the command, which must exit 0.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import png
from tests.support.rendering import ROOT
from tests.support.sim import simulation

pytestmark = pytest.mark.integration
SECRETS = {"PROD_DATABASE_URL": "postgres://db", "PROD_STRIPE_API_KEY": "sk"}
WIDTH, HEIGHT = 1024, 900
HOSTILE = '<img src=x onerror="document.title=\'pwned\'">'
CHROMIUM = shutil.which("chromium")


def artefacts() -> Path:
    folder = Path(os.environ.get("PROVISION_TEST_ARTIFACTS") or ROOT / "test-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium with a throwaway profile; --no-sandbox: CI runs the suite as root,
    where Chromium's sandbox refuses to start."""
    assert CHROMIUM is not None
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--hide-scrollbars",
         *args], capture_output=True, text=True, timeout=180, check=False)


class _Dom(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[str] = []
        self.cells: list[str] = []
        self.title = ""
        self._in_title = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += [a for a, _ in attrs]
        self._in_title = tag == "title"

    def handle_endtag(self, tag: str) -> None:
        self._in_title = False

    def handle_data(self, data: str) -> None:
        if self._in_title:
            self.title += data
        self.cells.append(data)


def _hostile_last_deploy(kube: FakeKubeAPI, namespace: str, parent: str) -> None:
    """The record a deploy leaves, rewritten by someone with write access to the namespace."""
    from provisioner.pipeline.deploy_stage import LAST_DEPLOY

    record = {"at": "2026-12-07T10:00:00Z", "by": HOSTILE, "images": {"api": HOSTILE}}
    body = {"metadata": {"annotations": {LAST_DEPLOY: json.dumps(record)}}}
    request = urllib.request.Request(
        f"{kube.base_url}/api/v1/namespaces/{namespace}/configmaps/{parent}", method="PATCH",
        data=json.dumps(body).encode(), headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(request, timeout=30):
        pass


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (.ci/run "
                                               "installs it)")
def test_status_page_renders_in_headless_chromium(tmp_path: Path) -> None:
    from provisioner.config import load_environment
    from provisioner.workloads.objects import parent_name

    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        sim.write_config({"deploy_policy": {}})
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        sim.claim_floating_ip("prod-cp-1")
        for i in (1, 2, 3):
            kube.add_node(f"prod-general-{i}")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        deployed = CliRunner(env={**sim.env, **SECRETS}).invoke(
            cli, ["deploy", str(sim.config), "--kubeconfig", str(kubeconfig)])
        assert deployed.exit_code == 0, deployed.stderr
        env = load_environment(sim.config)
        _hostile_last_deploy(kube, env.namespace, parent_name(env))

        process = sim.popen("status", str(sim.config), "--kubeconfig", str(kubeconfig),
                            "--web", "--no-browser", extra={"CI": "true"})
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            assert url.startswith("http://127.0.0.1:") and url.endswith("/"), url

            dumped = chromium(tmp_path / "profile-dom", "--virtual-time-budget=5000",
                              "--dump-dom", url)
            assert dumped.returncode == 0, dumped.stderr[-2000:]
            dom = _Dom()
            dom.feed(dumped.stdout)
            text = " ".join(dom.cells)
            for expected in ("prod-cp-1", "prod-cp-2", "prod-cp-3", "prod-general-1",
                             "Floating IP", "api-blue", "elasticsearch",
                             "ghcr.io/acme/api:1.4.2", "3/3 Ready"):
                assert expected in text, expected
            assert "blue" in [cell.strip() for cell in dom.cells]  # api's colour, its own cell
            for droplet in sim.resources("digitalocean_droplet"):
                assert droplet["region"] in text and droplet["size"] in text
                assert droplet["ipv4_address"] in text
            # The hostile record is text in the browser's DOM: no image, no handler, title kept.
            assert HOSTILE in text
            assert "img" not in dom.tags and "onerror" not in dom.attrs
            assert dom.title == "provision status: prod"

            shot = artefacts() / "status-web.png"
            shot.unlink(missing_ok=True)
            taken = chromium(tmp_path / "profile-shot", f"--window-size={WIDTH},{HEIGHT}",
                             f"--screenshot={shot}", url)
            assert taken.returncode == 0, taken.stderr[-2000:]
            image = png.read(shot.read_bytes())
            assert (image.width, image.height) == (WIDTH, HEIGHT)
            # Not blank: text, table borders, header shading and the colour tags.
            assert len(image.colours()) > 20
        finally:
            process.send_signal(signal.SIGTERM)
            _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
        assert "serving the status" in stderr and "stopped" in stderr


def test_sigterm_as_soon_as_the_url_is_out_exits_0(tmp_path: Path) -> None:
    """A script that stops the server on seeing its URL must not kill it mid-start (exit
    143): the signals are handled before the URL is printed."""
    with simulation(tmp_path) as sim:
        sim.write_config({"deploy_policy": {}})
        process = sim.popen("status", str(sim.config), "--web", "--no-browser",
                            extra={"CI": "true", "DIGITALOCEAN_TOKEN": ""})
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), url
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
