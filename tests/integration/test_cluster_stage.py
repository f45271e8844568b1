"""The cluster stage against a fake API server serving TLS with the cluster's own CA.

The fake listens on 127.0.0.x:6443, the address the kubeconfig names, with a certificate
signed by the CA provision generated and client-certificate authentication against it: the
kubeconfig, TLS verification and readiness code run exactly as against a kubeadm cluster.

Nodes register as kubelets with ``--cloud-provider=external`` do, tainted
``node.cloudprovider.kubernetes.io/uninitialized`` (kubernetes
pkg/kubelet/kubelet_node_status.go); the fake's cloud node controller lifts the taint while
the CCM's pod is Ready (k8s.io/cloud-provider controllers/node/node_controller.go;
tests/fakes/kubeapi/cloudnodes.py). The add-ons are the objects their manifests create
(tests/support/platform.py).
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
from tests.support import platform
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
            "workers": {f"general-{i}": {"name": f"prod-general-{i}-abcde"} for i in (1, 2)},
            # terraform/outputs.tf `network`: the node autoscaler's settings need the VPC.
            "network": {"vpc_id": "5a4a8f0e-7b0c-4c2e-9d1e-0c8f6a2b3c4d"}}


def test_waits_for_api_and_nodes_then_hands_over_a_working_kubeconfig(
        prepared: Prepared, kube: FakeKubeAPI, endpoint: str) -> None:
    kube.ready = False
    for name in ("prod-cp-1", "prod-cp-2", "prod-cp-3"):
        kube.add_node(name, ready=True, control_plane=True, external_cloud_provider=True)
    platform.install(kube)
    messages: list[str] = []

    def later() -> None:
        time.sleep(1.0)
        kube.ready = True
        time.sleep(4.0)
        for name in ("prod-general-1-abcde", "prod-general-2-abcde"):
            kube.add_node(name, ready=True, external_cloud_provider=True)

    threading.Thread(target=later, daemon=True).start()
    cluster = cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", messages.append,
                                     api_timeout=30, nodes_timeout=30)
    assert cluster.endpoint == endpoint and len(cluster.nodes) == 5
    assert any(m.startswith("waiting for the API server") for m in messages)
    assert f"API server at https://{endpoint}:6443 is ready" in messages
    assert any(m.startswith("3/5 nodes Ready; waiting for prod-general-1-abcde (not registered")
               for m in messages)
    assert "5/5 nodes Ready" in messages
    assert messages[-2].startswith("warning: PROVISION_AUTOSCALER_TOKEN is not set")
    assert messages[-3].startswith("add-ons ready: CoreDNS, calico, DigitalOcean cloud "
                                   "controller manager, CSI driver controller, CSI driver "
                                   "node plugin, metrics-server")
    # The production example's general pool autoscales: its objects follow the add-ons.
    assert messages[-1].startswith("node autoscaling: provision-system/provision-autoscaler "
                                   "and provision-system/cluster-autoscaler applied (node "
                                   "groups prod-general 0..6)")
    assert kube.get("apps/v1", "Deployment", "cluster-autoscaler", "provision-system")
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


def _initialised_cluster(kube: FakeKubeAPI) -> None:
    for i in (1, 2, 3):
        kube.add_node(f"prod-cp-{i}", control_plane=True, external_cloud_provider=True)
    for i in (1, 2):
        kube.add_node(f"prod-general-{i}-abcde", external_cloud_provider=True)


def test_a_slow_add_on_is_waited_for(prepared: Prepared, kube: FakeKubeAPI,
                                     endpoint: str) -> None:
    """metrics-server applied seconds after the rest (a slow download on the node)."""
    _initialised_cluster(kube)
    platform.install(kube, skip=("metrics-server",))
    messages: list[str] = []

    def later() -> None:
        kube.wait_for(lambda: any(m.startswith("waiting for the add-ons") for m in messages),
                      timeout=60)
        time.sleep(4.0)
        platform.install_one(kube, "metrics-server")

    threading.Thread(target=later, daemon=True).start()
    started = time.monotonic()
    cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", messages.append,
                           api_timeout=30, nodes_timeout=30, platform_timeout=60)
    assert time.monotonic() - started >= 4.0
    waits = [m for m in messages if m.startswith("waiting for the add-ons")]
    assert any("metrics-server: not created yet" in m for m in waits), waits
    assert [m for m in messages if m.startswith("add-ons ready:")]
    deployment = kube.get("apps/v1", "Deployment", "metrics-server", "kube-system")
    assert deployment is not None and deployment["status"]["availableReplicas"] == 1


def test_crash_looping_ccm_fails_the_gate_with_its_state_and_log(
        prepared: Prepared, kube: FakeKubeAPI, endpoint: str) -> None:
    _initialised_cluster(kube)
    platform.install(kube, images={"digitalocean-cloud-controller-manager":
                                   "digitalocean/digitalocean-cloud-controller-manager:crashloop"})
    kube.set_log("kube-system", "digitalocean-cloud-controller-manager-",
                 "I1207 starting\nF1207 failed to get droplet: 401 Unable to authenticate you\n")
    with pytest.raises(NotReady) as caught:
        cluster_stage.bring_up(prepared, outputs(endpoint), "do-token", lambda m: None,
                               api_timeout=10, nodes_timeout=10, platform_timeout=4)
    text = str(caught.value)
    assert ("DigitalOcean cloud controller manager (Deployment "
            "kube-system/digitalocean-cloud-controller-manager): 0/1 replicas available") in text
    assert "waiting (CrashLoopBackOff)" in text
    restarts = [int(line.rsplit(", ", 1)[1].split()[0]) for line in text.splitlines()
                if "waiting (CrashLoopBackOff)" in line]
    assert restarts and restarts[0] >= 1
    assert "  | F1207 failed to get droplet: 401 Unable to authenticate you" in text
    assert "nodes still tainted node.cloudprovider.kubernetes.io/uninitialized" in text
    assert "prod-general-2-abcde" in text
    # What is up is not blamed.
    assert "calico (DaemonSet" not in text

