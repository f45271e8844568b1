"""The whole pipeline the way a user runs it, with only DigitalOcean and Kubernetes simulated."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.e2e.world import world
from tests.support import clock

pytestmark = pytest.mark.integration


def test_up_deploy_status_rollback_destroy(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    # Outside the production example's windows, so --override-window leaves its record.
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    with world(tmp_path) as w:
        config = str(w.sim.config)
        up = w.provision("up", config, "--yes", "--override-window", "--reason", "e2e run")
        assert up.code == 0, up.stderr
        assert w.boot.error is None
        assert "6/6 nodes Ready" in up.stderr
        kube = w.boot.kube
        assert kube is not None
        # The platform gate: up waited for the CCM to initialise the nodes and the add-ons.
        assert "add-ons ready: CoreDNS, calico, DigitalOcean cloud controller manager" in (
            up.stderr)
        assert up.stderr.index("6/6 nodes Ready") < up.stderr.index("add-ons ready")
        assert not [n["metadata"]["name"] for n in kube.objects("v1", "Node")
                    if n["spec"].get("taints") and any(
                        t["key"] == "node.cloudprovider.kubernetes.io/uninitialized"
                        for t in n["spec"]["taints"])]
        endpoint = json.loads((w.sim.workdir / "infrastructure.json").read_text())[
            "api_endpoint"]
        assert endpoint.startswith("127."), "the floating IP is where the API server listens"
        kubeconfig = yaml.safe_load((w.sim.workdir / "kubeconfig").read_text())
        assert kubeconfig["clusters"][0]["cluster"]["server"] == f"https://{endpoint}:6443"
        assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is not None
        assert kube.get("v1", "Secret", "digitalocean", "kube-system") is not None
        # The production example's general pool autoscales: up applied the node autoscaler
        # with the VPC Terraform made (no marker left) and the link's mTLS pair.
        assert kube.get("apps/v1", "Deployment", "cluster-autoscaler",
                        "provision-system") is not None
        settings = json.loads(kube.get("v1", "ConfigMap", "provision-autoscaler-settings",
                                       "provision-system")["data"]["settings.json"])
        vpc = json.loads((w.sim.workdir / "infrastructure.json").read_text())["network"][
            "vpc_id"]
        assert settings["pools"][0]["vpc_uuid"] == vpc
        assert settings["pools"][0]["values"]["api_endpoint"] == endpoint
        assert kube.get("v1", "Secret", "cluster-autoscaler-grpc-client-cert",
                        "provision-system") is not None

        status = w.provision("status", config, "--output", "json")
        assert status.code == 0, status.stderr
        state = json.loads(status.stdout)
        assert state["cloud"]["floating_ip"] == endpoint
        assert state["cloud"]["floating_ip_holder"] == "prod-cp-1"
        assert len(state["cluster"]["nodes"]) == 6
        assert state["cluster"]["last_deploy"]["override"][
            "provision.dev/window-override-reason"] == "e2e run"
        # As its own process too: there nothing is imported yet, and status reads the cloud
        # and the cluster at the same time.
        process = w.sim.popen("status", config, "--output", "json")
        try:
            out, err = process.communicate(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.communicate()
        assert process.returncode == 0, err
        again = json.loads(out)
        assert again["cloud"] == state["cloud"]
        assert again["cluster"]["nodes"] == state["cluster"]["nodes"]
        assert again["cluster"]["last_deploy"] == state["cluster"]["last_deploy"]
        assert [a["name"] for a in again["cluster"]["apps"]] == [
            a["name"] for a in state["cluster"]["apps"]]

        w.sim.write_config(edit=lambda d: d["apps"][0].update(image="ghcr.io/acme/api:1.5.0"))
        deploy = w.provision("deploy", config, "--override-window", "--reason", "1.5.0")
        assert deploy.code == 0, deploy.stderr
        assert "api: traffic switched from blue to green" in deploy.stderr

        rollback = w.provision("rollback", config, "--app", "api")
        assert rollback.code == 0, rollback.stderr
        service = kube.get("v1", "Service", "api", "prod")
        assert service is not None and service["spec"]["selector"][
            "provision.dev/colour"] == "blue"

        # Destroying is an infrastructure change, held back by the same windows.
        down = w.provision("destroy", config, "--yes", "--force", "--override-window",
                           "--reason", "e2e run")
        assert down.code == 0, down.stderr
        assert "infrastructure change window overridden by" in down.stderr
        assert "node autoscaling stopped" in down.stderr, down.stderr
        assert w.sim.droplet_names() == []
        assert "nothing of the environment is left in the account" in down.stderr
