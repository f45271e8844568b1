"""The upgrade preflight against the fake Kubernetes API (tests/fakes/kubeapi).

Facts the checks rest on, each cited where the code uses it (provisioner/upgrade/):
kubeadm upgrades one minor at a time (kubernetes/kubernetes
cmd/kubeadm/app/phases/upgrade/policy.go at commit 8b56eb858826,
MaximumAllowedMinorVersionUpgradeSkew = 1); kubelets must not be newer than kube-apiserver
and may be up to three minors older (kubernetes/website
content/en/releases/version-skew-policy.md, branch release-1.35); kube-apiserver serves
flowcontrol.apiserver.k8s.io/v1beta3 through 1.31 and 1.32 removes it (kubernetes/website
content/en/docs/reference/using-api/deprecation-guide.md, section v1.32; the fake serves it
only when run as 1.31 or older: tests/fakes/kubeapi/catalog.py); a managedFields entry
records the group/version its manager wrote with (ManagedFieldsEntry.APIVersion,
kubernetes/kubernetes staging/src/k8s.io/apimachinery/pkg/apis/meta/v1/types.go at commit
521b605f4b6a), and an Update entry is keyed by manager AND apiVersion (only Apply entries drop
the apiVersion from the key: BuildManagerIdentifier,
staging/src/k8s.io/apimachinery/pkg/util/managedfields/internal/managedfields.go at commit
44c841510184), so a manager's old Update entry through v1beta3 stays after it applies
through v1; kube-apiserver's /metrics carries the STABLE gauge
apiserver_requested_deprecated_apis{group,version,resource,subresource,removed_release}
(staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go, deprecatedRequestGauge),
which the Deprecated API Migration Guide (kubernetes/website
content/en/docs/reference/using-api/deprecation-guide.md at commit 02afb71016ac, "Locate use
of deprecated APIs") points to; the fake serves /metrics only when a test sets its series
(tests/fakes/kubeapi/rest.py). etcd health is asked with etcdctl in a pod on a control-plane
node, as tests/integration/test_etcd_members.py sets it up; PodDisruptionBudget status comes
from the fake's disruption controller (tests/fakes/kubeapi/disruption.py, as in
test_drain.py).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from provisioner.cloud.releases import HOST_ENV
from provisioner.config import load_environment
from provisioner.config.model import Environment
from provisioner.kube import Kube, client_for
from provisioner.upgrade import preflight
from provisioner.upgrade.removed_apis import REMOVALS, removed_between
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.k8s_packages import RELEASES, package_repositories
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration

NOW = dt.datetime(2026, 12, 7, 12, 0, tzinfo=dt.UTC)
CPS = ("prod-cp-1", "prod-cp-2", "prod-cp-3")
WORKERS = ("prod-general-1-abcde", "prod-general-2-fghij")


def environment(tmp_path: Path, version: str) -> tuple[Environment, Path]:
    """The production example asking for ``version`` (any minor: the model is built from a
    supported one, then given the version, so 1.31 -> 1.32 can be exercised)."""
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    env = load_environment(config)
    kubernetes = dataclasses.replace(env.kubernetes, version=version)
    return dataclasses.replace(env, kubernetes=kubernetes), config


@contextmanager
def cluster(tmp_path: Path, version: str, kubelets: dict[str, str] | None = None
            ) -> Iterator[tuple[FakeKubeAPI, Any]]:
    """Three control-plane nodes with stacked etcd and two workers, at ``version``."""
    kubelets = kubelets or {}
    with FakeKubeAPI(git_version=f"v{version}", step_delay=0.01) as kube:
        for i, name in enumerate(CPS):
            kube.add_node(name, control_plane=True, address=f"10.110.0.{i + 2}",
                          kubelet_version=f"v{kubelets.get(name, version)}")
            (kube.etcd_init if i == 0 else kube.etcd_join)(name)
        for i, name in enumerate(WORKERS):
            kube.add_node(name, address=f"10.110.0.{i + 10}",
                          kubelet_version=f"v{kubelets.get(name, version)}")
        yield kube, client_for(kube.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture(autouse=True)
def packages(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The package index the nodes install from, with 1.32.0 added for the 1.31 cluster."""
    with package_repositories({**RELEASES, "1.32": ("1.32.0",)}) as repos:
        monkeypatch.setenv(HOST_ENV, repos.url)
        yield


def run(tmp_path: Path, api: Any, target: str) -> preflight.Preflight:
    env, config = environment(tmp_path, target)
    return preflight.check(env, api, NOW, config)


def by_check(result: preflight.Preflight) -> dict[str, list[preflight.Finding]]:
    found: dict[str, list[preflight.Finding]] = {}
    for finding in result.findings:
        found.setdefault(finding.check, []).append(finding)
    return found


def test_a_healthy_cluster_one_minor_below_has_no_findings(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (_, api):
        result = run(tmp_path, api, "1.37.1")
    assert result.findings == ()
    assert (result.api_server, result.lowest_kubelet, result.current, result.target) == (
        "1.36.2", "1.36.2", "1.36.2", "1.37.1")
    assert set(result.kubelets) == {*CPS, *WORKERS}
    assert result.as_json()["blocked"] is False


def test_a_skip_of_two_minors_is_refused(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.35.8") as (_, api):
        result = run(tmp_path, api, "1.37.1")
    (finding,) = by_check(result)["versions"]
    assert finding.severity == preflight.BLOCKING
    assert "2 minors above the API server's 1.35.8" in finding.message
    assert "one minor at a time" in finding.message and "1.36" in finding.message
    assert result.blocking == [finding]


def test_one_minor_is_allowed_and_a_downgrade_is_refused(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (_, api):
        assert "versions" not in by_check(run(tmp_path, api, "1.37.0"))
        assert "versions" not in by_check(run(tmp_path, api, "1.36.3"))  # a patch release
        (finding,) = by_check(run(tmp_path, api, "1.36.1"))["versions"]
    assert finding.severity == preflight.BLOCKING and "does not downgrade" in finding.message


def test_kubelets_outside_the_skew_are_named(tmp_path: Path) -> None:
    """One kubelet newer than the API server; one four minors below the target."""
    kubelets = {WORKERS[0]: "1.37.0", WORKERS[1]: "1.33.9"}
    with cluster(tmp_path, "1.36.2", kubelets) as (_, api):
        result = run(tmp_path, api, "1.37.1")
    skew = {f.objects: f for f in by_check(result)["skew"]}
    assert set(skew) == {(f"Node/{WORKERS[0]}",), (f"Node/{WORKERS[1]}",)}
    assert "newer than the API server's 1.36.2" in skew[(f"Node/{WORKERS[0]}",)].message
    assert "more than 3 minors older than 1.37.1" in skew[(f"Node/{WORKERS[1]}",)].message
    assert all(f.severity == preflight.BLOCKING for f in skew.values())
    assert result.lowest_kubelet == "1.33.9" and result.current == "1.33.9"


def test_a_kubelet_three_minors_older_is_within_the_skew(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2", {WORKERS[1]: "1.34.9"}) as (_, api):
        assert "skew" not in by_check(run(tmp_path, api, "1.37.1"))


def test_a_node_that_is_not_ready_blocks(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (kube, api):
        kube.set_node_ready(WORKERS[1], False, reason="KubeletNotReady")
        result = run(tmp_path, api, "1.37.1")
    (finding,) = by_check(result)["nodes"]
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == (f"Node/{WORKERS[1]}",)


def test_an_unhealthy_etcd_member_blocks(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (kube, api):
        kube.etcd.set_healthy("prod-cp-3", False)
        result = run(tmp_path, api, "1.37.1")
    (finding,) = by_check(result)["etcd"]
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == ("etcd/prod-cp-3",) and "does not answer" in finding.message


def test_a_missing_release_blocks(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (_, api):
        result = run(tmp_path, api, "1.37.9")
    (finding,) = by_check(result)["release"]
    assert finding.severity == preflight.BLOCKING
    assert "1.37.9 does not exist" in finding.message and "1.37.1" in finding.message


def _flowschema(name: str) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {
        "priorityLevelConfiguration": {"name": "workload-low"}, "matchingPrecedence": 1000,
        "rules": [{"subjects": [{"kind": "Group", "group": {"name": "system:authenticated"}}],
                   "resourceRules": [{"verbs": ["*"], "apiGroups": ["*"],
                                      "resources": ["*"], "namespaces": ["*"]}]}]}}


def test_objects_written_through_a_removed_version_are_listed_by_name(tmp_path: Path) -> None:
    """1.31 serves flowcontrol v1beta3 and v1; 1.32 serves only v1. A FlowSchema a client
    created through v1beta3 is named; one created through v1 is not (1.32 serves it)."""
    group = "/apis/flowcontrol.apiserver.k8s.io"
    with cluster(tmp_path, "1.31.4") as (_, api):
        kube = Kube(api)
        kube.request("POST", f"{group}/v1beta3/flowschemas", body={
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
            **_flowschema("legacy-tenants")})
        kube.request("POST", f"{group}/v1/flowschemas", body={
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            **_flowschema("current-tenants")})
        listed = kube.request("GET", f"{group}/v1beta3/flowschemas")["items"]
        assert {i["metadata"]["name"] for i in listed} == {"legacy-tenants", "current-tenants"}
        result = run(tmp_path, api, "1.32.0")
    (finding,) = by_check(result)["removed-api"]
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == ("FlowSchema/legacy-tenants",)
    assert "flowcontrol.apiserver.k8s.io/v1beta3" in finding.message
    assert "flowcontrol.apiserver.k8s.io/v1," in finding.message  # where to move them
    assert "Deprecated API Migration Guide" in finding.message


FLOW = "/apis/flowcontrol.apiserver.k8s.io"


def _next_second() -> None:
    """managedFields times have second precision: make the next write's time later."""
    time.sleep(1.05 - time.time() % 1)


def _removed(result: preflight.Preflight) -> list[preflight.Finding]:
    return by_check(result).get("removed-api", [])


def test_a_stale_update_entry_under_a_newer_apply_is_a_warning(tmp_path: Path) -> None:
    """tenant-sync created the FlowSchema through v1beta3 (an Update entry through it),
    then applied it through v1 (an Apply entry, newer): the v1beta3 entry stays (its key
    holds the apiVersion), the object is not in use through v1beta3 and nothing blocks;
    the warning names the object and the manager."""
    with cluster(tmp_path, "1.31.4") as (_, api):
        client = Kube(api)
        client.request("POST", f"{FLOW}/v1beta3/flowschemas",
                       query=[("fieldManager", "tenant-sync")], body={
                           "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3",
                           "kind": "FlowSchema", **_flowschema("tenants")})
        _next_second()
        applied = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
                   **_flowschema("tenants")}
        applied["metadata"]["labels"] = {"team": "platform"}
        client.request("PATCH", f"{FLOW}/v1/flowschemas/tenants",
                       query=[("fieldManager", "tenant-sync")], body=json.dumps(applied),
                       content_type="application/apply-patch+yaml")
        live = client.request("GET", f"{FLOW}/v1/flowschemas/tenants")
        entries = {(e["operation"], e["apiVersion"]) for e in live["metadata"]["managedFields"]}
        assert entries == {("Update", "flowcontrol.apiserver.k8s.io/v1beta3"),
                           ("Apply", "flowcontrol.apiserver.k8s.io/v1")}
        result = run(tmp_path, api, "1.32.0")
    (finding,) = _removed(result)
    assert finding.severity == preflight.WARNING
    assert finding.objects == ("FlowSchema/tenants",)
    assert "tenant-sync (Update at" in finding.message and "stale" in finding.message
    assert "went through flowcontrol.apiserver.k8s.io/v1:" in finding.message
    assert result.blocking == []


def test_the_newest_write_through_the_removed_version_blocks(tmp_path: Path) -> None:
    """Created through v1, then changed through v1beta3 by another manager later: the
    newest entry is the v1beta3 one, a client still writes through it."""
    with cluster(tmp_path, "1.31.4") as (_, api):
        client = Kube(api)
        client.request("POST", f"{FLOW}/v1/flowschemas", query=[("fieldManager", "gitops")],
                       body={"apiVersion": "flowcontrol.apiserver.k8s.io/v1",
                             "kind": "FlowSchema", **_flowschema("tenants")})
        _next_second()
        client.request("PATCH", f"{FLOW}/v1beta3/flowschemas/tenants",
                       query=[("fieldManager", "legacy-operator")],
                       body={"spec": {"matchingPrecedence": 900}},
                       content_type="application/merge-patch+json")
        result = run(tmp_path, api, "1.32.0")
    (finding,) = _removed(result)
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == ("FlowSchema/tenants",)


def test_the_last_applied_annotation_naming_the_removed_version_blocks(
        tmp_path: Path) -> None:
    """kubectl's client-side apply wrote v1beta3 into the annotation: the next
    ``kubectl apply`` of that manifest goes through v1beta3 again, whatever the entries."""
    manifest = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3", "kind": "FlowSchema",
                **_flowschema("tenants")}
    body = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            **_flowschema("tenants")}
    body["metadata"]["annotations"] = {preflight.LAST_APPLIED: json.dumps(manifest)}
    with cluster(tmp_path, "1.31.4") as (_, api):
        Kube(api).request("POST", f"{FLOW}/v1/flowschemas",
                          query=[("fieldManager", "kubectl-client-side-apply")], body=body)
        result = run(tmp_path, api, "1.32.0")
    (finding,) = _removed(result)
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == ("FlowSchema/tenants",)


def test_the_api_servers_count_of_deprecated_requests_blocks(tmp_path: Path) -> None:
    """Going to 1.32: a series removed in 1.32 blocks; one removed later and one with no
    removal planned do not. No object of the removed version exists: only the server's
    count shows that a client still calls it."""
    with cluster(tmp_path, "1.31.4") as (kube, api):
        kube.deprecated_api_series = [
            {"group": "flowcontrol.apiserver.k8s.io", "version": "v1beta3",
             "resource": "prioritylevelconfigurations", "subresource": "status",
             "removed_release": "1.32"},
            {"group": "example.io", "version": "v1beta1", "resource": "widgets",
             "removed_release": "1.35"},
            {"group": "example.io", "version": "v1alpha1", "resource": "gadgets",
             "removed_release": ""},
        ]
        result = run(tmp_path, api, "1.32.0")
        asked = kube.requests("GET", "/metrics")
    assert [r.status for r in asked] == [200]
    (finding,) = _removed(result)
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == (
        "prioritylevelconfigurations/status flowcontrol.apiserver.k8s.io/v1beta3",)
    assert "apiserver_requested_deprecated_apis" in finding.message
    assert "Kubernetes 1.32 no longer serves" in finding.message


def _entry(manager: str, operation: str, version: str, at: str | None) -> dict[str, Any]:
    entry = {"manager": manager, "operation": operation,
             "apiVersion": f"flowcontrol.apiserver.k8s.io/{version}", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:spec": {}}}
    return {**entry, "time": at} if at else entry


@pytest.mark.parametrize(("entries", "in_use", "stale"), [
    # the same second: the removed version may be the last write, so it counts as in use
    ([_entry("a", "Update", "v1beta3", "2026-12-07T10:00:00Z"),
      _entry("b", "Apply", "v1", "2026-12-07T10:00:00Z")], True, ()),
    # an entry without a time is the oldest
    ([_entry("a", "Update", "v1beta3", None),
      _entry("b", "Apply", "v1", "2026-12-07T10:00:00Z")], False, ("a",)),
    ([_entry("a", "Update", "v1beta3", "2026-12-07T09:00:00Z"),
      _entry("b", "Update", "v1beta3", "2026-12-07T09:30:00Z"),
      _entry("c", "Update", "v1", "2026-12-07T10:00:00Z")], False, ("a", "b")),
    ([_entry("c", "Update", "v1", "2026-12-07T10:00:00Z")], False, ()),
])
def test_which_managed_fields_entries_make_an_object_in_use(
        entries: list[dict[str, Any]], in_use: bool, stale: tuple[str, ...]) -> None:
    """The judgement on entries as the apiserver writes them (times RFC 3339, seconds)."""
    (removal,) = removed_between(31, 32)
    evidence = preflight._evidence({"metadata": {"name": "x", "managedFields": entries}},
                                   removal)
    assert evidence.in_use is in_use
    assert tuple(e["manager"] for e in evidence.stale) == stale


@pytest.mark.parametrize("status", [404, 403])
def test_metrics_that_cannot_be_read_give_no_finding(tmp_path: Path, status: int) -> None:
    """404: the fake without series (a server whose /metrics is not reachable); 403: the
    kubeconfig's user lacks ``get`` on the nonResourceURL /metrics. Neither is a finding."""
    with cluster(tmp_path, "1.31.4") as (kube, api):
        if status == 403:
            kube.deprecated_api_series = [
                {"group": "flowcontrol.apiserver.k8s.io", "version": "v1beta3",
                 "resource": "flowschemas", "removed_release": "1.32"}]
            kube.deny("get", "/metrics")
        result = run(tmp_path, api, "1.32.0")
        asked = kube.requests("GET", "/metrics")
    assert [r.status for r in asked] == [status]
    assert _removed(result) == [] and result.blocking == []


def test_a_version_the_server_does_not_serve_is_not_in_use(tmp_path: Path) -> None:
    """A 1.37 server answers 404 for flowcontrol v1beta3: nothing there to find."""
    with cluster(tmp_path, "1.37.1") as (kube, api):
        assert preflight._removed_apis(Kube(api), removed_between(31, 32)) == []
        asked = kube.requests("GET", "/apis/flowcontrol.apiserver.k8s.io/v1beta3")
    assert [r.status for r in asked] == [404]


def test_the_removed_api_table_is_ordered_and_complete_for_the_guides_sections() -> None:
    assert {r.removed_in for r in REMOVALS} == {25, 26, 27, 29, 32}
    assert all(r.served_until == r.removed_in - 1 for r in REMOVALS)
    assert [r.group_version for r in removed_between(31, 32)] == [
        "flowcontrol.apiserver.k8s.io/v1beta3"]
    assert removed_between(36, 37) == []  # nothing announced for the supported minors


def _deployment(name: str, replicas: int) -> dict[str, Any]:
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                         {"name": "app", "image": "registry.example/app:1"}]}}}}


def _budget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}}, **spec}}


def test_a_budget_that_allows_no_disruption_is_a_warning(tmp_path: Path) -> None:
    with cluster(tmp_path, "1.36.2") as (kube, api):
        kube.create(_deployment("api", 2))
        kube.create(_budget("api", minAvailable=2))  # blocks every eviction
        kube.create(_deployment("web", 2))
        kube.create(_budget("web", maxUnavailable=1))  # lets one go at a time

        def allowed(name: str) -> Any:
            found = kube.get("policy/v1", "PodDisruptionBudget", name, "default") or {}
            return (found.get("status") or {}).get("disruptionsAllowed")

        kube.wait_for(lambda: allowed("web") == 1 and allowed("api") == 0 and len(
            [p for p in kube.objects("v1", "Pod", "default")
             if p["metadata"]["labels"].get("app") == "api" and p["spec"].get("nodeName")]
        ) == 2)
        result = run(tmp_path, api, "1.37.1")
    (finding,) = by_check(result)["disruption-budget"]
    assert finding.severity == preflight.WARNING
    assert finding.objects == ("PodDisruptionBudget/default/api",)
    assert "allows no disruption and covers 2 pod(s)" in finding.message
    assert result.blocking == []


@pytest.mark.parametrize(("selector", "labels", "expected"), [
    (None, {"app": "a"}, False),  # no selector: nothing
    ({}, {"app": "a"}, True),  # policy/v1: an empty selector selects every pod
    ({"matchLabels": {"app": "a"}}, {"app": "a", "x": "1"}, True),
    ({"matchLabels": {"app": "a"}}, {"app": "b"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web"]}]},
     {"tier": "web"}, True),
    ({"matchExpressions": [{"key": "tier", "operator": "NotIn", "values": ["web"]}]},
     {"tier": "web"}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, {}, False),
    ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, {}, True),
])
def test_label_selectors_select_as_policy_v1_does(selector: Any, labels: dict[str, str],
                                                   expected: bool) -> None:
    assert preflight.selects(selector, labels) is expected


def test_the_preflights_own_reads_never_block_a_later_preflight(tmp_path: Path) -> None:
    """kube-apiserver counts every request through a deprecated version, reads included
    (metrics.go MonitorRequest sets deprecatedRequestGauge, which the fake now does), and
    keeps the series until it restarts. Listing the objects through v1beta3 would make the
    next preflight (the upgrade's, after `plan`'s) block on the check's own reads: objects
    are listed through the replacement (v1 serves them, managedFields read the same), and
    the count is read before anything is listed."""
    with cluster(tmp_path, "1.31.4") as (kube, api):
        kube.deprecated_api_series = []
        Kube(api).request("POST", f"{FLOW}/v1/flowschemas", body={
            "apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema",
            **_flowschema("current-tenants")})
        first = run(tmp_path, api, "1.32.0")
        second = run(tmp_path, api, "1.32.0")
        series = list(kube.deprecated_api_series)
    assert _removed(first) == [] and _removed(second) == []
    assert series == [], "no read went through flowcontrol v1beta3"
    # A client's own read through v1beta3 still shows, and blocks.
    with cluster(tmp_path, "1.31.4") as (kube, api):
        kube.deprecated_api_series = []
        Kube(api).request("GET", f"{FLOW}/v1beta3/flowschemas")
        (finding,) = _removed(run(tmp_path, api, "1.32.0"))
    assert finding.severity == preflight.BLOCKING
    assert finding.objects == ("flowschemas flowcontrol.apiserver.k8s.io/v1beta3",)
