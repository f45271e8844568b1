"""`provision status` reads the simulated cloud and the fake cluster."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.sim import simulation

pytestmark = pytest.mark.integration
SECRETS = {"PROD_DATABASE_URL": "postgres://db", "PROD_STRIPE_API_KEY": "sk"}


def test_status_shows_droplets_floating_ip_nodes_apps_and_last_deploy(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        sim.write_config({"deploy_policy": {}})
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        sim.claim_floating_ip("prod-cp-1")  # what the first node does at first boot
        for i in (1, 2, 3):
            kube.add_node(f"prod-general-{i}")
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        env = {**sim.env, **SECRETS}
        deployed = CliRunner(env=env).invoke(cli, ["deploy", str(sim.config), "--kubeconfig",
                                                   str(kubeconfig)])
        assert deployed.exit_code == 0, deployed.stderr

        result = CliRunner(env=env).invoke(cli, ["status", str(sim.config), "--kubeconfig",
                                                 str(kubeconfig), "--output", "json"])
        assert result.exit_code == 0, result.stderr
        status = json.loads(result.stdout)
        cloud = status["cloud"]
        assert [d["name"] for d in cloud["droplets"]["control-plane"]] == [
            "prod-cp-1", "prod-cp-2", "prod-cp-3"]
        assert len(cloud["droplets"]["workers"]) == 3
        assert cloud["floating_ip_holder"] == "prod-cp-1"
        assert all(d["private_ip"] for d in cloud["droplets"]["workers"])
        cluster = status["cluster"]
        assert [n["ready"] for n in cluster["nodes"]] == [True, True, True]
        apps = {a["name"]: a for a in cluster["apps"]}
        # api's replicas belong to its autoscaler (none runs in the fake): compare, not count.
        assert apps["api-blue"]["available"] == apps["api-blue"]["desired"] >= 1
        assert apps["elasticsearch"]["desired"] == 3
        assert apps["elasticsearch"]["kind"] == "StatefulSet"
        # The page (`status --web`) shows these: the serving colour and the images.
        assert apps["api-blue"]["colour"] == "blue" and apps["elasticsearch"]["colour"] is None
        assert apps["api-blue"]["images"] == ["ghcr.io/acme/api:1.4.2"]
        assert {d["region"] for d in cloud["droplets"]["workers"]} == {"fra1"}
        assert cluster["last_deploy"]["images"]["api"] == "ghcr.io/acme/api:1.4.2"
        assert "@" in cluster["last_deploy"]["by"]

        text = CliRunner(env=env).invoke(cli, ["status", str(sim.config), "--kubeconfig",
                                               str(kubeconfig)])
        assert "prod-cp-1" in text.stdout and "<- floating IP" in text.stdout
        assert "nodes: 3/3 Ready" in text.stdout
        assert "last deploy:" in text.stdout


def test_status_without_token_or_cluster_says_what_is_missing(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        env = {k: v for k, v in sim.env.items() if not k.startswith("DIGITALOCEAN_")}
        env["DIGITALOCEAN_TOKEN"] = ""
        result = CliRunner(env=env).invoke(cli, ["status", str(sim.config)])
        assert result.exit_code == 0, result.stderr
        assert "droplets: no DIGITALOCEAN_TOKEN" in result.stdout
        assert "cluster: no kubeconfig yet" in result.stdout


def _patch_node(kube: FakeKubeAPI, name: str, body: dict[str, object]) -> None:
    """A merge patch over HTTP, as `kubectl cordon` or the failover agent sends one."""
    import urllib.request

    request = urllib.request.Request(
        f"{kube.base_url}/api/v1/nodes/{name}", method="PATCH", data=json.dumps(body).encode(),
        headers={"Content-Type": "application/merge-patch+json"})
    with urllib.request.urlopen(request, timeout=10):
        pass


def _etcd_pod(kube: FakeKubeAPI, node: str, image: str, mirror: bool = True) -> None:
    """The mirror pod the kubelet makes for kubeadm's static etcd pod: `etcd-<node>` in
    kube-system, bound to its node (kubernetes cmd/kubeadm/app/phases/etcd/local.go names
    the static pod `etcd`; pkg/kubelet/config/common.go generatePodName appends the node)
    and annotated kubernetes.io/config.mirror (pkg/kubelet/types/pod_update.go,
    ConfigMirrorAnnotationKey). ``mirror=False``: a pod of that name anyone could create."""
    annotations = {"kubernetes.io/config.mirror": "mirror"} if mirror else {}
    kube.create({"apiVersion": "v1", "kind": "Pod",
                 "metadata": {"name": f"etcd-{node}", "namespace": "kube-system",
                              "labels": {"component": "etcd", "tier": "control-plane"},
                              "annotations": annotations},
                 "spec": {"nodeName": node, "containers": [{"name": "etcd", "image": image}]}})


def test_status_shows_each_nodes_kubelet_age_cordon_etcd_and_vrrp(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datetime as dt

    from provisioner.node_facts import parse_instant
    from tests.support.clock import pin

    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        sim.claim_floating_ip("prod-cp-1")
        workers = [n for n in sim.droplet_names() if n.startswith("prod-general-")]
        assert len(workers) == 3
        for i, worker in enumerate(workers, 1):  # a node is named after its droplet
            kube.add_node(f"prod-cp-{i}", control_plane=True)
            kube.add_node(worker, kubelet_version="v1.36.4" if i == 3 else "v1.37.1")
        _patch_node(kube, workers[1], {"spec": {"unschedulable": True}})
        _patch_node(kube, "prod-cp-1", {"metadata": {"annotations": {
            "provision.dev/vrrp-state": "MASTER"}}})
        _patch_node(kube, "prod-cp-2", {"metadata": {"annotations": {
            "provision.dev/vrrp-state": "BACKUP"}}})
        _etcd_pod(kube, "prod-cp-1", "registry.k8s.io/etcd:3.6.4-0")
        _etcd_pod(kube, "prod-cp-2", "registry.k8s.io/etcd:3.6.4-0-unready")  # never Ready
        # A Ready pod named like cp-3's etcd that is no kubelet mirror: not its etcd.
        _etcd_pod(kube, "prod-cp-3", "registry.k8s.io/pause:3.10", mirror=False)
        def pod_ready(name: str) -> bool:
            return any(c["type"] == "Ready" and c["status"] == "True" for c in (
                kube.get("v1", "Pod", name, "kube-system") or {}).get(
                "status", {}).get("conditions", []))

        kube.wait_for(lambda: pod_ready("etcd-prod-cp-1") and pod_ready("etcd-prod-cp-3"),
                      timeout=60)
        kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
        created = {d["name"]: parse_instant(d["created_at"])
                   for d in sim.resources("digitalocean_droplet")}
        first = created["prod-cp-1"]
        assert first is not None
        pin(monkeypatch, first + dt.timedelta(days=3, hours=4, minutes=5))

        result = sim.run("status", str(sim.config), "--kubeconfig", str(kubeconfig),
                         "--output", "json")
        assert result.code == 0, result.stderr
        nodes = {n["name"]: n for n in json.loads(result.stdout)["cluster"]["nodes"]}
        assert nodes["prod-cp-1"] == {
            "name": "prod-cp-1", "ready": True, "kubelet": "v1.37.1", "role": "control-plane",
            "cordoned": False, "etcd": "Ready", "vrrp_state": "MASTER",
            "droplet_age_seconds": 3 * 86400 + 4 * 3600 + 5 * 60}
        assert (nodes["prod-cp-2"]["etcd"], nodes["prod-cp-2"]["vrrp_state"]) == (
            "not Ready", "BACKUP")
        assert (nodes["prod-cp-3"]["etcd"], nodes["prod-cp-3"]["vrrp_state"]) == (
            "missing", None)
        assert [nodes[w]["cordoned"] for w in workers] == [False, True, False]
        assert nodes[workers[2]]["kubelet"] == "v1.36.4"
        assert "etcd" not in nodes[workers[0]]  # workers have no etcd member
        for name, node in nodes.items():
            instant = created[name]
            assert instant is not None
            age = first + dt.timedelta(days=3, hours=4, minutes=5) - instant
            assert node["droplet_age_seconds"] == int(age.total_seconds())

        text = sim.run("status", str(sim.config), "--kubeconfig", str(kubeconfig)).stdout
        row = next(line.split() for line in text.splitlines()
                   if line.strip().startswith("prod-cp-1 ") and "Ready" in line)
        assert row == ["prod-cp-1", "Ready", "v1.37.1", "3d4h", "no", "Ready", "MASTER"]
        row = next(line.split() for line in text.splitlines()
                   if line.strip().startswith(f"{workers[1]} ") and "Ready" in line)
        assert row[4:] == ["yes", "-", "-"]


def test_status_exits_non_zero_when_a_source_cannot_be_read(tmp_path: Path) -> None:
    """A kubeconfig or infrastructure record that is there but unreadable is the user's to
    fix (exit 2); a cluster that does not answer, exit 1. Either way the rest is shown."""
    with simulation(tmp_path) as sim:
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        kubeconfig = sim.workdir / "kubeconfig"
        kubeconfig.write_text("clusters: [this is not, a kubeconfig\n")
        result = sim.run("status", str(sim.config))
        assert result.code == 2, result.stderr
        assert "prod-cp-1" in result.stdout  # the droplets are still listed
        assert f"status incomplete: cannot use kubeconfig {kubeconfig}" in result.stderr
        assert "Traceback" not in result.stderr

        # A kubeconfig for an API server that is not there: the cluster did not answer.
        with FakeKubeAPI() as kube:
            kube.write_kubeconfig(kubeconfig)
        result = sim.run("status", str(sim.config))
        assert result.code == 1, result.stderr
        assert "status incomplete:" in result.stderr and "prod-cp-1" in result.stdout

        kubeconfig.unlink()
        (sim.workdir / "infrastructure.json").write_text("{not json")
        result = sim.run("status", str(sim.config))
        assert result.code == 2, result.stderr
        assert "infrastructure.json: not the JSON provision writes" in result.stderr
