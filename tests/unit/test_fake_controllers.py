"""The fake Kubernetes API's controllers: work queues and passes deferred to quiet moments.

The fake's controllers reconcile only what changed (tests/fakes/kubeapi/queues.py); these
tests drive passes by hand (`run_once`) and check that changes reach the reconcilers that
depend on them, that a settled cluster leaves nothing to do, and that what changes with
time alone (a crash loop, a rollout's deadline) is looked at again without a write.
"""

from __future__ import annotations

import copy
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.kubeapi import FakeKubeAPI, catalog
from tests.fakes.kubeapi import queues as q

NAMESPACE = "default"


def deployment(name: str, image: str = "registry.example/app:1", replicas: int = 2,
               **spec: Any) -> dict[str, Any]:  # fmt: skip
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, **spec,
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "app", "image": image}]}}},
    }  # fmt: skip


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    """A fake whose controllers only run when a test calls run_once."""
    fake = FakeKubeAPI(controllers=False)
    yield fake
    assert fake.controllers.errors == []


def status(kube: FakeKubeAPI, name: str) -> dict[str, Any]:
    return (kube.get("apps/v1", "Deployment", name, NAMESPACE) or {}).get("status") or {}


def pods(kube: FakeKubeAPI, app: str) -> list[dict[str, Any]]:
    return [p for p in kube.objects("v1", "Pod", NAMESPACE)
            if p["metadata"].get("labels", {}).get("app") == app]


def settle(kube: FakeKubeAPI, passes: int = 10) -> None:
    kube.controllers.run_once(passes)


def pending(kube: FakeKubeAPI) -> dict[str, list[tuple[str, str]]]:
    """What each reconciler would look at next (emptying the queues)."""
    names = (q.DEPLOYMENTS, q.DEPLOYMENT_STATUS, q.REPLICASETS, q.REPLICASET_STATUS,
             q.STATEFULSETS, q.STATEFULSET_STATUS, q.PODS, q.CLAIMS, q.SERVICES)
    return {name: keys for name in names if (keys := kube.controllers.queues.take(name))}


def test_a_settled_cluster_leaves_no_work_and_writes_nothing(kube: FakeKubeAPI) -> None:
    kube.create(deployment("web"))
    settle(kube)
    assert status(kube, "web").get("availableReplicas") == 2
    version = kube.store.resource_version
    kube.controllers.run_once(3)
    assert kube.store.resource_version == version
    assert pending(kube) == {}


def test_a_deleted_pod_queues_its_replicaset_and_deployment_and_comes_back(
        kube: FakeKubeAPI) -> None:  # fmt: skip
    kube.create(deployment("web"))
    settle(kube)
    victim = pods(kube, "web")[0]["metadata"]["name"]
    kube.registry.delete(catalog.get("v1", "Pod"), NAMESPACE, victim)
    queued = pending(kube)
    replicaset = next(k for k in queued[q.REPLICASETS])
    assert replicaset[1].startswith("web-")
    assert queued[q.REPLICASET_STATUS] == [replicaset]
    assert queued[q.DEPLOYMENTS] == [(NAMESPACE, "web")]
    assert q.PODS not in queued  # a deleted pod has nothing left to run
    # The same change, left on the queues this time, is reconciled: a new pod replaces it.
    kube.controllers.queues.add(q.REPLICASETS, replicaset)
    kube.controllers.queues.add(q.REPLICASET_STATUS, replicaset)
    settle(kube)
    names = [p["metadata"]["name"] for p in pods(kube, "web")]
    assert len(names) == 2 and victim not in names
    assert status(kube, "web").get("availableReplicas") == 2


def test_a_crash_loop_keeps_changing_without_any_write_from_outside(kube: FakeKubeAPI) -> None:
    kube.create(deployment("web", image="registry.example/crashloop:1", replicas=1))
    settle(kube, 6)
    before = pods(kube, "web")[0]["status"]["containerStatuses"][0]["restartCount"]
    settle(kube, 30)
    after = pods(kube, "web")[0]["status"]["containerStatuses"][0]["restartCount"]
    assert after > before >= 1


def test_a_stuck_rollout_passes_its_deadline_without_any_write_from_outside(
        kube: FakeKubeAPI) -> None:  # fmt: skip
    kube.controllers.time_scale = 0.001  # progressDeadlineSeconds 600 -> 0.6 s
    kube.create(deployment("web", image="registry.example/pullfail:1"))
    settle(kube, 6)  # the pods settle (ImagePullBackOff); nothing writes any more
    version = kube.store.resource_version
    settle(kube, 2)
    assert kube.store.resource_version == version
    time.sleep(0.7)
    settle(kube, 2)
    progressing = next(c for c in status(kube, "web")["conditions"]
                       if c["type"] == "Progressing")
    assert progressing["reason"] == "ProgressDeadlineExceeded"


def test_a_node_becoming_ready_schedules_the_pods_waiting_for_one(kube: FakeKubeAPI) -> None:
    kube.add_node("worker-1", ready=False)
    kube.create(deployment("web", replicas=1))
    settle(kube)
    pod = pods(kube, "web")[0]
    assert pod["status"]["phase"] == "Pending" and not pod["spec"].get("nodeName")
    kube.set_node_ready("worker-1", True)
    settle(kube)
    pod = pods(kube, "web")[0]
    assert pod["spec"]["nodeName"] == "worker-1" and pod["status"]["phase"] == "Running"


def _slow_get(url: str, seconds: float) -> threading.Thread:
    def run() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            urllib.request.urlopen(f"{url}/version", timeout=10).read()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_deferred_passes_wait_for_the_requests_to_stop() -> None:
    with FakeKubeAPI(defer_controllers=True, latency_ms=100, step_delay=0.01) as kube:
        time.sleep(0.1)
        assert kube.controllers.passes > 0  # quiet: passes run every step
        busy = _slow_get(kube.base_url, 0.8)  # back-to-back requests for 0.8 s
        time.sleep(0.15)
        during = kube.controllers.passes
        busy.join()
        assert kube.controllers.passes - during <= 1  # at most the one under way
        time.sleep(0.3)
        assert kube.controllers.passes - during >= 5  # quiet again: passes resume
        assert kube.controllers.errors == []


def test_deferral_gives_up_after_its_limit() -> None:
    with FakeKubeAPI(defer_controllers=True, latency_ms=100, step_delay=0.01) as kube:
        kube.controllers.defer_limit = 0.2
        time.sleep(0.05)
        busy = _slow_get(kube.base_url, 1.5)
        time.sleep(0.1)
        during = kube.controllers.passes
        busy.join()
        # About one pass every 0.2 s despite the requests (6 or 7 here), where deferring
        # without a limit would allow at most one.
        assert kube.controllers.passes - during >= 3


def _taints(kube: FakeKubeAPI, node: str) -> list[str]:
    found = kube.get("v1", "Node", node) or {}
    return [t["key"] for t in found.get("spec", {}).get("taints", [])]


def test_daemonsets_cover_tolerated_nodes_and_the_ccm_initialises_them(
        kube: FakeKubeAPI) -> None:
    """A DaemonSet without tolerations waits for the CCM to lift the uninitialized taint.

    kubelet --cloud-provider=external registers tainted (pkg/kubelet/kubelet_node_status.go);
    the cloud node controller lifts it (k8s.io/cloud-provider node_controller.go); the
    DaemonSet controller adds only the default daemon tolerations (daemonset_util.go).
    """
    from tests.support import platform

    kube.add_node("cp-1", control_plane=True, external_cloud_provider=True)
    kube.add_node("w-1", external_cloud_provider=True)
    assert _taints(kube, "w-1") == ["node.cloudprovider.kubernetes.io/uninitialized"]
    platform.install(kube, cni="flannel", images={
        "digitalocean-cloud-controller-manager": "digitalocean/ccm:unready"})
    kube.controllers.run_once(8)

    def pods(ds: str, namespace: str = "kube-system") -> list[str]:
        return sorted(p["spec"]["nodeName"] for p in kube.objects("v1", "Pod", namespace)
                      if p["metadata"]["name"].startswith(f"{ds}-"))

    assert pods("kube-flannel-ds", "kube-flannel") == ["cp-1", "w-1"]  # tolerates NoSchedule
    assert pods("csi-do-node") == [], "no toleration: waits for the CCM"
    status = kube.get("apps/v1", "DaemonSet", "csi-do-node", "kube-system")["status"]
    assert status["desiredNumberScheduled"] == 0
    assert "node.cloudprovider.kubernetes.io/uninitialized" in _taints(kube, "w-1")  # unready

    rt = catalog.get("apps/v1", "Deployment")
    ccm = kube.registry.get(rt, "kube-system", "digitalocean-cloud-controller-manager")
    fixed = copy.deepcopy(ccm)
    fixed["spec"]["template"]["spec"]["containers"][0]["image"] = "digitalocean/ccm:v0.1.68"
    kube.registry.commit(rt, ccm, fixed, "kubectl")
    kube.controllers.run_once(16)
    assert _taints(kube, "w-1") == [] and _taints(kube, "cp-1") == [
        "node-role.kubernetes.io/control-plane"]
    assert pods("csi-do-node") == ["w-1"], "the control-plane taint is not tolerated"
    status = kube.get("apps/v1", "DaemonSet", "csi-do-node", "kube-system")["status"]
    assert (status["desiredNumberScheduled"], status.get("numberAvailable")) == (1, 1)
