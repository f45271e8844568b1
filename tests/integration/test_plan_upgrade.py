"""`provision plan` on a running cluster whose file asks for the next minor: an "Upgrade"
section with the preflight's findings, in text and JSON; `up` still refuses the version.

The cluster is the fake Kubernetes API serving TLS with a certificate signed by the CA
provision made and the admin kubeconfig `up` leaves in the work folder (as in
test_check_online.py); its etcd is the fake's stacked etcd, asked through an etcdctl pod
(tests/fakes/kubeapi/etcd.py). The package index is the simulation's stand-in
(tests/support/k8s_packages.py: 1.37.1 exists). kubeadm upgrades one minor at a time
(kubernetes/kubernetes cmd/kubeadm/app/phases/upgrade/policy.go at commit 8b56eb858826).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provisioner.bootstrap import kubeconfig as kc
from provisioner.errors import EXIT_CHANGES_PENDING
from provisioner.pipeline.prepare import prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.cluster_tls import server_cert
from tests.support.sim import simulation

pytestmark = pytest.mark.integration

CPS = ("prod-cp-1", "prod-cp-2", "prod-cp-3")


def _version(version: str) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        doc["kubernetes"]["version"] = version
        # No cluster-autoscaler release exists for 1.37 yet (render/autoscaler.py pins one
        # per minor and refuses others): the pool runs a fixed count here.
        pool = doc["worker_pools"][0]
        if "autoscale" in pool:
            pool["count"] = pool.pop("autoscale")["min"]
    return edit


def test_plan_shows_the_upgrade_preflight_and_up_refuses_the_version(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        secrets = prepare(sim.config, None).secrets
        cert, key = server_cert(secrets, "127.0.0.1")
        with FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key, ca_pem=secrets.ca_crt_pem,
                         client_ca_pem=secrets.ca_crt_pem, git_version="v1.36.2",
                         step_delay=0.01) as kube:
            document = kc.build("prod", "127.0.0.1", secrets)
            document["clusters"][0]["cluster"]["server"] = kube.base_url
            kc.write(sim.workdir / "kubeconfig", document)
            for i, name in enumerate(CPS):
                kube.add_node(name, control_plane=True, address=f"10.110.0.{i + 2}",
                              kubelet_version="v1.36.2")
                (kube.etcd_init if i == 0 else kube.etcd_join)(name)
            kube.add_node("prod-general-1-abcde", kubelet_version="v1.36.2", ready=False)

            # The running version: no Upgrade section.
            same = sim.run("plan", str(sim.config))
            assert same.code == 0, same.stderr
            assert "Upgrade:" not in same.stdout

            sim.write_config(edit=_version("1.37.1"))
            text = sim.run("plan", str(sim.config))
            assert text.code == 0, text.stderr  # plan informs; `up` is what refuses
            section = text.stdout[text.stdout.index("Upgrade: 1.36.2 -> 1.37.1"):]
            assert "blocking: node prod-general-1-abcde is not Ready" in section
            assert "1 blocking finding(s): fix them before upgrading" in section
            assert "`provision upgrade`" in section

            as_json = sim.run("plan", str(sim.config), "--output", "json", "--exit-code")
            assert as_json.code == EXIT_CHANGES_PENDING, as_json.stderr
            upgrade = json.loads(as_json.stdout)["upgrade"]
            assert upgrade["from"]["api_server"] == "1.36.2" and upgrade["to"] == "1.37.1"
            assert upgrade["blocked"] is True
            assert [(f["severity"], f["check"], f["objects"]) for f in upgrade["findings"]] == [
                ("blocking", "nodes", ["Node/prod-general-1-abcde"])]

            sim.write_config(edit=_version("1.37.0"))
            kube.set_node_ready("prod-general-1-abcde", True)
            clean = json.loads(sim.run("plan", str(sim.config), "--output", "json").stdout)
            assert clean["upgrade"]["findings"] == [] and clean["upgrade"]["blocked"] is False

            # --until cluster: no deploy window in the way (it is checked first).
            refused = sim.run("up", str(sim.config), "--yes", "--until", "cluster")
            assert refused.code == 2
            assert "kubernetes.version: the cluster runs Kubernetes 1.36.2" in refused.stderr
            assert "shows the upgrade's preflight findings" in refused.stderr
            assert "`provision upgrade " in refused.stderr
            assert "changes the running cluster's version in place" in refused.stderr
            assert "Traceback" not in refused.stderr
