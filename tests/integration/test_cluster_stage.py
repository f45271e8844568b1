"""The cluster stage against a fake API server serving TLS with the cluster's own CA.

The fake listens on 127.0.0.x:6443, the address the kubeconfig names, with a certificate
signed by the CA provision generated and client-certificate authentication against it: the
kubeconfig, TLS verification and readiness code run exactly as against a kubeadm cluster.
"""

from __future__ import annotations

import random
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.bootstrap.readiness import NotReady
from provisioner.pipeline import cluster_stage
from provisioner.pipeline.prepare import Prepared, prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.cluster_tls import server_cert
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def prepared(tmp_path: Path) -> Prepared:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    return prepare(config, None)


@pytest.fixture
def endpoint() -> str:
    return f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"


@pytest.fixture
def kube(prepared: Prepared, endpoint: str) -> Iterator[FakeKubeAPI]:
    cert, key = server_cert(prepared.secrets, endpoint)
    with FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key, ca_pem=prepared.secrets.ca_crt_pem,
                     client_ca_pem=prepared.secrets.ca_crt_pem, host=endpoint,
                     port=6443) as server:
        yield server


def outputs(endpoint: str) -> dict[str, Any]:
    return {"api_endpoint": endpoint,
            "controllers": [{"name": f"prod-cp-{i}"} for i in (1, 2, 3)],
            "workers": {f"general-{i}": {"name": f"prod-general-{i}-abcde"} for i in (1, 2)}}


def test_waits_for_api_and_nodes_then_hands_over_a_working_kubeconfig(
        prepared: Prepared, kube: FakeKubeAPI, endpoint: str) -> None:
    kube.ready = False
    for name in ("prod-cp-1", "prod-cp-2", "prod-cp-3"):
        kube.add_node(name, ready=True)
    messages: list[str] = []

    def later() -> None:
        time.sleep(1.0)
        kube.ready = True
        time.sleep(4.0)
        for name in ("prod-general-1-abcde", "prod-general-2-abcde"):
            kube.add_node(name, ready=True)

    threading.Thread(target=later, daemon=True).start()
    cluster = cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", messages.append,
                                     api_timeout=30, nodes_timeout=30)
    assert cluster.endpoint == endpoint and len(cluster.nodes) == 5
    assert any(m.startswith("waiting for the API server") for m in messages)
    assert f"API server at https://{endpoint}:6443 is ready" in messages
    assert any(m.startswith("3/5 nodes Ready; waiting for prod-general-1-abcde (not registered")
               for m in messages)
    assert messages[-1] == "5/5 nodes Ready"
    path = cluster.kubeconfig
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = yaml.safe_load(path.read_text())
    assert config["clusters"][0]["cluster"]["server"] == f"https://{endpoint}:6443"
    secret = kube.get("v1", "Secret", "digitalocean", "kube-system")
    assert secret is not None, "the token Secret is in kube-system"
    assert kube.requests("PATCH", "/api/v1/namespaces/kube-system/secrets/digitalocean")


def test_timeout_names_the_missing_nodes_and_their_status(
        prepared: Prepared, kube: FakeKubeAPI, endpoint: str) -> None:
    kube.add_node("prod-cp-1", ready=True)
    kube.add_node("prod-cp-2", ready=False, reason="KubeletNotReady",
                  message="container runtime network not ready: cni plugin not initialized")
    with pytest.raises(NotReady) as caught:
        cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", lambda m: None,
                               api_timeout=5, nodes_timeout=2)
    text = str(caught.value)
    assert "4 of 5 nodes are not Ready" in text
    assert ("prod-cp-2 (NotReady: KubeletNotReady: container runtime network not ready: cni "
            "plugin not initialized)") in text
    assert "prod-general-2-abcde (not registered" in text
    assert "prod-cp-1" not in text.split("\n", 1)[1]


def test_api_that_never_answers_ready_times_out_with_advice(
        prepared: Prepared, kube: FakeKubeAPI, endpoint: str) -> None:
    kube.ready = False
    with pytest.raises(NotReady) as caught:
        cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", lambda m: None,
                               api_timeout=2, nodes_timeout=2)
    assert f"https://{endpoint}:6443 did not become ready" in str(caught.value)
    assert "journalctl" in str(caught.value)


def test_kubeconfig_command_prints_and_merges(prepared: Prepared, tmp_path: Path,
                                              endpoint: str) -> None:
    import json

    from click.testing import CliRunner

    from provisioner.cli.main import cli

    (prepared.work.root / "infrastructure.json").write_text(json.dumps(outputs(endpoint)))
    printed = CliRunner().invoke(cli, ["kubeconfig", str(prepared.config)])
    assert printed.exit_code == 0, printed.stderr
    assert yaml.safe_load(printed.stdout)["current-context"] == "prod"
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "Config",
                                      "clusters": [{"name": "other", "cluster": {}}],
                                      "users": [], "contexts": [],
                                      "current-context": "other"}))
    merged = CliRunner(env={"KUBECONFIG": str(target)}).invoke(
        cli, ["kubeconfig", str(prepared.config), "--merge"])
    assert merged.exit_code == 0, merged.stderr
    result = yaml.safe_load(target.read_text())
    assert [c["name"] for c in result["clusters"]] == ["other", "prod"]
    assert result["current-context"] == "other"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
