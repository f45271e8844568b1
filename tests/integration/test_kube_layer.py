"""provision's Kubernetes request layer against the fake API server over real HTTP(S).

One retry layer (urllib3's is off), so a dead or untrusted endpoint costs what the caller
asked for; a certificate problem is named and not retried; a watch reports its failures as
KubeError only.
"""

from __future__ import annotations

import base64
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from provisioner.kube import Kube, KubeError, client_for
from provisioner.workloads.apply import PARALLELISM
from tests.fakes.kubeapi.server import FakeKubeAPI

pytestmark = pytest.mark.integration


def test_an_untrusted_certificate_is_named_and_not_retried(tmp_path: Path) -> None:
    with FakeKubeAPI(tls=True) as server, FakeKubeAPI(tls=True) as stranger:
        config = server.kubeconfig()
        config["clusters"][0]["cluster"]["certificate-authority-data"] = base64.b64encode(
            stranger.ca_pem or b"").decode()
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        kube = Kube(client_for(path), timeout=5)
        started = time.monotonic()
        with pytest.raises(KubeError, match=r"(?i)certificate"):
            kube.request("GET", "/api/v1/nodes")
        assert time.monotonic() - started < 3, "a bad certificate is not retried"
        assert len(server.requests()) == 0


def test_a_silent_endpoint_costs_the_attempts_asked_for(tmp_path: Path) -> None:
    # Accepts connections and never answers: every attempt waits out its timeout.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        port = listener.getsockname()[1]
        with FakeKubeAPI() as server:
            config = server.kubeconfig()
        config["clusters"][0]["cluster"]["server"] = f"http://127.0.0.1:{port}"
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        kube = Kube(client_for(path), timeout=0.5, attempts=2)
        started = time.monotonic()
        with pytest.raises(KubeError, match="cannot reach the API server"):
            kube.request("GET", "/api/v1/nodes")
        took = time.monotonic() - started
    # 2 attempts of 0.5 s and one backoff of at most 0.4 s; urllib3's own retries would
    # have made it 8 attempts.
    assert took < 2.5, took


def test_a_watch_that_breaks_off_raises_kube_error(tmp_path: Path) -> None:
    with FakeKubeAPI() as server:
        path = server.write_kubeconfig(tmp_path / "kubeconfig")
        kube = Kube(client_for(path))
        events = kube.watch("/api/v1/namespaces/default/configmaps", seconds=30)
        server.create({"apiVersion": "v1", "kind": "ConfigMap",
                       "metadata": {"name": "first", "namespace": "default"}})
        first = next(events)
        assert first["type"] == "ADDED" and first["object"]["metadata"]["name"] == "first"
        server.stop()  # cuts open connections
        with pytest.raises(KubeError):
            for _ in events:
                pass


def test_connections_outlive_a_burst_of_requests(tmp_path: Path) -> None:
    # The client's default pool keeps 5 connections a CPU core: on a 2-core machine it
    # would close 6 of the 16 when a burst ends and the next burst would open (over TLS:
    # handshake) 6 new ones.
    with FakeKubeAPI(tls=True, latency_ms=20) as server:
        kube = Kube(client_for(server.write_kubeconfig(tmp_path / "kubeconfig")))
        for _ in range(3):
            with ThreadPoolExecutor(PARALLELISM) as pool:
                list(pool.map(lambda _: kube.request("GET", "/api/v1/namespaces/default"),
                              range(4 * PARALLELISM)))
        assert len(server.requests("GET")) == 12 * PARALLELISM
        assert server.connections <= PARALLELISM, server.connections
