"""`up` does not call a cluster ready whose cloud controller manager crash-loops.

In the simulated world the kubelets register tainted
`node.cloudprovider.kubernetes.io/uninitialized` (kubelet with --cloud-provider=external:
kubernetes pkg/kubelet/kubelet_node_status.go) and only a Ready CCM pod lifts the taint
(k8s.io/cloud-provider controllers/node/node_controller.go); see tests/fakes/kubeapi/
cloudnodes.py. Here the CCM's image crash-loops (the fake kubelet's `crashloop` image
rule), its log says why, and the gate's timeout is shortened through
`cluster_stage.PLATFORM_TIMEOUT` (read at call time; `up` runs in this process).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from provisioner.pipeline import cluster_stage
from tests.e2e.world import world

pytestmark = pytest.mark.integration

CCM_LOG = ("I1207 09:14:02.118 1 serving.go:386] Generated self-signed cert in-memory\n"
           "F1207 09:14:03.402 1 main.go:52] failed to create cloud provider: "
           "GET https://api.digitalocean.com/v2/account: 401 Unable to authenticate you\n")


def test_up_fails_naming_the_crash_looping_ccm_and_its_log(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cluster_stage, "PLATFORM_TIMEOUT", 6.0)
    with world(tmp_path) as w:
        w.boot.addon_images["digitalocean-cloud-controller-manager"] = (
            "digitalocean/digitalocean-cloud-controller-manager:v0.1.68-crashloop")
        w.boot.addon_logs["digitalocean-cloud-controller-manager"] = CCM_LOG
        config = str(w.sim.config)
        up = w.provision("up", config, "--yes", "--until", "cluster")
        assert w.boot.error is None, w.boot.error
        assert up.code == 1, up.stderr
        assert "Traceback" not in up.stderr
        assert "6/6 nodes Ready" in up.stderr
        assert "is ready:" not in up.stderr, "no success line"
        text = up.stderr
        assert "the cluster's add-ons did not come up in time" in text
        assert ("DigitalOcean cloud controller manager (Deployment "
                "kube-system/digitalocean-cloud-controller-manager): 0/1 replicas available"
                in text)
        assert "waiting (CrashLoopBackOff)" in text
        assert " restarts" in text
        assert "last log lines of digitalocean-cloud-controller-manager:" in text
        for line in CCM_LOG.splitlines():
            assert f"| {line}" in text
        assert "nodes still tainted node.cloudprovider.kubernetes.io/uninitialized" in text
        # What depends on an initialised node is named too, with why it is not running.
        assert "CoreDNS (Deployment kube-system/coredns): 0/2 replicas available" in text
        assert "not scheduled" in text
