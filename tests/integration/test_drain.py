"""Cordon and drain through the Eviction API, against the fake API server over HTTP.

The fake's eviction follows kube-apiserver's EvictionREST.Create (kubernetes
pkg/registry/core/pod/storage/eviction.go, read at commit 01aa0f3f): 429 TooManyRequests
"Cannot evict pod as it would violate the pod's disruption budget." with a
DisruptionBudget cause while disruptionsAllowed is 0 or the budget's status is behind its
generation; else the budget is decremented and the pod deleted. provision's drain
(pipeline/rolling.py) follows kubectl's drain filters (kubernetes
staging/src/k8s.io/kubectl/pkg/drain/filters.go, commit 121817a5): DaemonSet and mirror
pods stay.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.kube import Kube, client_for
from provisioner.pipeline import rolling
from tests.fakes.kubeapi import FakeKubeAPI

NS = "default"


def deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "registry.example/app:1"}]}}}}


def budget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NS},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec}}


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as fake:
        for name in ("w-1", "w-2", "w-3"):
            fake.add_node(name)
        yield fake
        assert fake.controllers.errors == []


def ready(kube: FakeKubeAPI, app: str) -> list[dict[str, Any]]:
    return [p for p in kube.objects("v1", "Pod", NS)
            if p["metadata"]["labels"].get("app") == app and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p.get("status", {}).get("conditions", []))]


def evict(kube: FakeKubeAPI, pod: str) -> tuple[int, dict[str, Any]]:
    body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                       "metadata": {"name": pod, "namespace": NS}}).encode()
    request = urllib.request.Request(f"{kube.base_url}/api/v1/namespaces/{NS}/pods/{pod}/eviction",
                                     body, {"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_eviction_honours_the_budget(kube: FakeKubeAPI) -> None:
    kube.create(deployment("api", 3))
    kube.create(budget("api", maxUnavailable=1))
    kube.wait_for(lambda: len(ready(kube, "api")) == 3)
    kube.wait_for(lambda: (kube.get("policy/v1", "PodDisruptionBudget", "api", NS) or {}).get(
        "status", {}).get("disruptionsAllowed") == 1)
    first, second = sorted(p["metadata"]["name"] for p in ready(kube, "api"))[:2]
    kube.controllers.pause()  # no replacement pod may become Ready in between
    try:
        code, _ = evict(kube, first)
        assert code == 201
        code, refused = evict(kube, second)
        assert code == 429 and refused["reason"] == "TooManyRequests"
        assert refused["message"] == ("Cannot evict pod as it would violate the pod's "
                                      "disruption budget.")
        # The eviction decremented disruptionsAllowed; currentHealthy is the controller's
        # count, which has not run since (as on a real server between the two requests).
        assert refused["details"]["causes"] == [{
            "reason": "DisruptionBudget",
            "message": "The disruption budget api needs 2 healthy pods and has 3 currently"}]
    finally:
        kube.controllers.resume()
    kube.wait_for(lambda: len(ready(kube, "api")) == 3)  # the ReplicaSet replaced it
    kube.wait_for(lambda: evict(kube, second)[0] == 201)
    evicted = [e.subject for e in kube.timeline.snapshot() if e.what == "pod-evicted"]
    assert evicted == [f"{NS}/{first}", f"{NS}/{second}"]


def test_a_new_budget_blocks_until_its_status_is_observed(kube: FakeKubeAPI) -> None:
    kube.create(deployment("web", 2))
    kube.wait_for(lambda: len(ready(kube, "web")) == 2)
    kube.controllers.pause()
    try:
        kube.create(budget("web", minAvailable=1))
        code, refused = evict(kube, ready(kube, "web")[0]["metadata"]["name"])
        assert code == 429
        assert "is still being processed by the server" in refused["details"]["causes"][0][
            "message"]
    finally:
        kube.controllers.resume()


def _kube(kube: FakeKubeAPI, tmp_path: Path) -> Kube:
    return Kube(client_for(kube.write_kubeconfig(tmp_path / "kubeconfig")), timeout=10)


def test_drain_moves_pods_off_a_cordoned_node_and_skips_daemonset_pods(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    kube.create(deployment("api", 3))
    kube.create(budget("api", maxUnavailable=1))
    kube.create({"apiVersion": "apps/v1", "kind": "DaemonSet",
                 "metadata": {"name": "agent", "namespace": NS},
                 "spec": {"selector": {"matchLabels": {"app": "agent"}},
                          "template": {"metadata": {"labels": {"app": "agent"}},
                                       "spec": {"containers": [{"name": "a",
                                                                "image": "agent:1"}]}}}})
    kube.wait_for(lambda: len(ready(kube, "api")) == 3 and len(ready(kube, "agent")) == 3)
    victim = next(p["spec"]["nodeName"] for p in ready(kube, "api"))
    client = _kube(kube, tmp_path)
    said: list[str] = []
    rolling.cordon(client, victim, said.append)
    rolling.drain(client, victim, time.monotonic() + 60, said.append, interval=0.1)
    on_victim = [p for p in kube.objects("v1", "Pod", NS) if p["spec"].get("nodeName") == victim]
    assert [p["metadata"]["labels"]["app"] for p in on_victim] == ["agent"]
    kube.wait_for(lambda: len(ready(kube, "api")) == 3)
    assert all(p["spec"]["nodeName"] != victim for p in ready(kube, "api")), (
        "the scheduler must not place pods on a cordoned node")
    order = [(e.what, e.subject) for e in kube.timeline.snapshot()
             if e.what in ("node-cordoned", "pod-evicted")]
    assert order[0] == ("node-cordoned", victim)
    assert f"drained {victim}" in " ".join(said)


def test_drain_stops_at_the_timeout_naming_pods_and_budget(kube: FakeKubeAPI,
                                                           tmp_path: Path) -> None:
    kube.create(deployment("search", 3))
    kube.create(budget("search", minAvailable=3))
    kube.wait_for(lambda: len(ready(kube, "search")) == 3)
    kube.wait_for(lambda: (kube.get("policy/v1", "PodDisruptionBudget", "search", NS) or {}
                           ).get("status", {}).get("currentHealthy") == 3)
    victim = ready(kube, "search")[0]
    node = victim["spec"]["nodeName"]
    client = _kube(kube, tmp_path)
    rolling.cordon(client, node, lambda line: None)
    with pytest.raises(rolling.DrainTimeout) as stopped:
        rolling.drain(client, node, time.monotonic() + 1.0, lambda line: None, interval=0.1)
    message = str(stopped.value)
    assert f"node {node} could not be drained" in message
    assert f"{NS}/{victim['metadata']['name']}" in message
    assert "The disruption budget search needs 3 healthy pods and has 3 currently" in message
    assert len(ready(kube, "search")) == 3


HOLD = "example.com/hold"


def held_pod(kube: FakeKubeAPI, name: str, node: str) -> dict[str, Any]:
    """A pod a finalizer keeps after its deletion, as a pod in its grace period is kept.

    The API server marks an object with finalizers for deletion (``deletionTimestamp``) and
    keeps it until they are removed (Kubernetes docs, concepts/overview/working-with-objects/
    finalizers); a pod deleted with a grace period is likewise still listed with a
    deletionTimestamp until the kubelet has stopped it (concepts/workloads/pods/
    pod-lifecycle, "Termination of Pods").
    """
    return kube.create({"apiVersion": "v1", "kind": "Pod",
                        "metadata": {"name": name, "namespace": NS, "finalizers": [HOLD]},
                        "spec": {"nodeName": node, "containers": [
                            {"name": "app", "image": "registry.example/app:1"}]}})


def release(client: Kube, name: str) -> None:
    client.request("PATCH", f"/api/v1/namespaces/{NS}/pods/{name}",
                   body={"metadata": {"finalizers": None}},
                   content_type="application/merge-patch+json", verb="patch pods")


def test_the_fake_keeps_a_finalized_pod_until_its_finalizers_are_removed(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    held_pod(kube, "held", "w-1")
    client = _kube(kube, tmp_path)
    code, _ = evict(kube, "held")
    assert code == 201
    kept = kube.get("v1", "Pod", "held", NS)
    assert kept is not None and kept["metadata"].get("deletionTimestamp")
    release(client, "held")
    assert kube.get("v1", "Pod", "held", NS) is None


def test_drain_waits_until_evicted_pods_are_gone(kube: FakeKubeAPI, tmp_path: Path) -> None:
    """kubectl's drain is done only once each evicted pod is gone: waitForDelete
    (staging/src/k8s.io/kubectl/pkg/drain/drain.go, commit 014e1fb5) polls every evicted
    pod until its GET is NotFound or answers a pod of another UID. A node whose pods are
    still terminating is not drained: deleting its droplet then cuts them off."""
    held_pod(kube, "held", "w-2")
    client = _kube(kube, tmp_path)
    said: list[str] = []
    rolling.cordon(client, "w-2", said.append)
    done = threading.Event()
    failed: list[BaseException] = []

    def drain() -> None:
        try:
            rolling.drain(client, "w-2", time.monotonic() + 120, said.append, interval=0.1)
        except BaseException as e:  # reported to the test thread
            failed.append(e)
        finally:
            done.set()

    worker = threading.Thread(target=drain, daemon=True)
    worker.start()
    kube.wait_for(lambda: (kube.get("v1", "Pod", "held", NS) or {}).get(
        "metadata", {}).get("deletionTimestamp"))
    assert not done.wait(2.0), f"the drain returned while held was terminating: {said}"
    assert "drained w-2" not in " ".join(said)
    release(client, "held")
    assert done.wait(60), "the drain did not return once the pod was gone"
    worker.join(10)
    assert failed == []
    assert said[-1] == "drained w-2 (1 pods evicted)"


def test_a_pod_still_terminating_at_the_deadline_is_named(kube: FakeKubeAPI,
                                                         tmp_path: Path) -> None:
    held_pod(kube, "held", "w-3")
    client = _kube(kube, tmp_path)
    with pytest.raises(rolling.DrainTimeout) as stopped:
        rolling.drain(client, "w-3", time.monotonic() + 1.5, lambda line: None, interval=0.1)
    message = str(stopped.value)
    assert "node w-3 could not be drained" in message
    assert f"Still terminating (evicted, not yet gone; a finalizer or a long grace period " \
           f"holds them): {NS}/held" in message
    release(client, "held")


def test_release_uncordons_only_nodes_this_plan_does_not_retire(kube: FakeKubeAPI,
                                                               tmp_path: Path) -> None:
    """`up` of a running cluster releases what an earlier, stopped rollout cordoned and the
    plan now keeps (provision.dev/retiring), and leaves alone the nodes it still retires
    and the nodes someone else cordoned (no annotation)."""
    client = _kube(kube, tmp_path)
    for node in ("w-1", "w-2"):
        rolling.cordon(client, node, lambda line: None)
    client.request("PATCH", "/api/v1/nodes/w-3", body={"spec": {"unschedulable": True}},
                   content_type="application/merge-patch+json", verb="patch nodes")
    said: list[str] = []
    released = rolling.release_kept(client.client, {"w-2"}, said.append)
    assert released == ["w-1"]
    spec = {n: (kube.get("v1", "Node", n) or {}).get("spec", {}) for n in ("w-1", "w-2", "w-3")}
    assert [bool(spec[n].get("unschedulable")) for n in ("w-1", "w-2", "w-3")] == [
        False, True, True]
    w1 = kube.get("v1", "Node", "w-1") or {}
    assert rolling.RETIRING not in (w1["metadata"].get("annotations") or {})
    assert said == ["uncordoned w-1: an earlier rollout cordoned it to replace it, and this "
                    "plan keeps it"]
