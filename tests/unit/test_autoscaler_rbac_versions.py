"""The cluster-autoscaler's ClusterRole, per pinned release, against upstream's Helm chart.

Upstream: kubernetes/autoscaler, charts/cluster-autoscaler/templates/clusterrole.yaml at
tags cluster-autoscaler-1.33.6 (commit be4b5a18814a53539d0fe6299c92839152cae54c) and
cluster-autoscaler-1.34.5 (cb2123ed13148c38fbdb1ede42d8e99761ee2909), and
cluster-autoscaler/charts/cluster-autoscaler/templates/clusterrole.yaml (the chart moved) at
cluster-autoscaler-1.35.2 (2d42588803c71fe9b35dcd9e3669ac6bb550ca22) and
cluster-autoscaler-1.36.1 (35e8a280425c76a4040f57ae0fa232a952c02024). CHART below is each
template's rules for a provider other than coreweave, kwok, huaweicloud and clusterapi,
with ``rbac.pspEnabled`` off and no ``rbac.additionalRules`` (written out as data, one
(group, resource, verbs) per resource).

What the chart grants and provision does not (render/autoscaler_rbac.py says why, from the
autoscaler's code at the same tags): Node create/delete (1.35's chart keeps them for kwok
and huaweicloud only; no code outside cloudprovider/ creates or deletes a Node), configmaps
cluster-wide (the autoscaler reads them in its --namespace only, granted there by a Role),
and at 1.36 podtemplates and provisioningrequests (ProvisioningRequest support only, off
unless --enable-provisioning-requests, builder/clients.go and config/flags/flags.go).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import yaml

from provisioner.render import autoscaler, autoscaler_objects
from tests.support.rendering import example

READ = ("watch", "list", "get")

# The rules every pinned chart has (identical at 1.33.6 and 1.34.5 but nodes' verbs).
_COMMON: list[tuple[str, str, tuple[str, ...]]] = [
    ("", "events", ("create", "patch")),
    ("", "endpoints", ("create", "patch")),
    ("", "pods/eviction", ("create",)),
    ("", "pods/status", ("update",)),
    *[("", r, READ) for r in ("namespaces", "pods", "services", "replicationcontrollers",
                              "persistentvolumeclaims", "persistentvolumes")],
    ("batch", "jobs", READ),
    ("batch", "cronjobs", READ),
    ("batch", "jobs", ("get", "list", "patch", "watch")),
    ("extensions", "jobs", ("get", "list", "patch", "watch")),
    ("extensions", "replicasets", READ),
    ("extensions", "daemonsets", READ),
    ("policy", "poddisruptionbudgets", ("watch", "list")),
    *[("apps", r, READ) for r in ("daemonsets", "replicasets", "statefulsets")],
    *[("storage.k8s.io", r, READ) for r in ("storageclasses", "csinodes", "csidrivers",
                                            "csistoragecapacities", "volumeattachments")],
    ("", "configmaps", ("list", "watch", "get")),
    ("coordination.k8s.io", "leases", ("create",)),
]
_DRA = [("resource.k8s.io", r, READ) for r in ("resourceslices", "deviceclasses",
                                                "resourceclaims")]
CHART: dict[str, list[tuple[str, str, tuple[str, ...]]]] = {
    "1.33.6": [*_COMMON,
               ("", "nodes", ("watch", "list", "create", "delete", "get", "update"))],
    "1.34.5": [*_COMMON,
               ("", "nodes", ("watch", "list", "create", "delete", "get", "update"))],
    "1.35.2": [*_COMMON, *_DRA, ("", "nodes", ("watch", "list", "get", "update"))],
    "1.36.1": [*_COMMON, *_DRA, ("", "nodes", ("watch", "list", "get", "update")),
               ("", "podtemplates", ("get", "list", "watch")),
               *[("autoscaling.x-k8s.io", r, ("get", "list", "watch", "update", "patch"))
                 for r in ("provisioningrequests", "provisioningrequests/status")]],
}
# Named-object rules of every pinned chart (resourceNames: cluster-autoscaler).
CHART_NAMED = {("", "endpoints", "get"), ("", "endpoints", "update"),
               ("coordination.k8s.io", "leases", "get"),
               ("coordination.k8s.io", "leases", "update")}
# Left out on purpose (module docstring): (group, resource, verb).
NOT_GRANTED = {("", "nodes", "create"), ("", "nodes", "delete"),
               ("", "configmaps", "list"), ("", "configmaps", "watch"),
               ("", "configmaps", "get"),
               *[("", "podtemplates", v) for v in ("get", "list", "watch")],
               *[("autoscaling.x-k8s.io", r, v)
                 for r in ("provisioningrequests", "provisioningrequests/status")
                 for v in ("get", "list", "watch", "update", "patch")]}


def _triples(rules: list[dict[str, Any]], named: bool) -> set[tuple[str, str, str]]:
    return {(g, r, v) for rule in rules if bool(rule.get("resourceNames")) == named
            for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}


def _role(minor: int) -> dict[str, Any]:
    env = example("production")
    env = dataclasses.replace(env, kubernetes=dataclasses.replace(
        env.kubernetes, version=f"1.{minor}.2"))
    docs = yaml.safe_load_all(autoscaler_objects.manifest(env) or "")
    return next(d for d in docs if d and d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "provision-cluster-autoscaler")


@pytest.mark.parametrize("minor", sorted(autoscaler.CLUSTER_AUTOSCALER_RELEASES))
def test_cluster_role_is_the_charts_at_the_pinned_release(minor: int) -> None:
    release = autoscaler.CLUSTER_AUTOSCALER_RELEASES[minor]
    assert release in CHART, f"no chart rules recorded for cluster-autoscaler {release}"
    chart = {(g, r, v) for g, r, verbs in CHART[release] for v in verbs}
    role = _role(minor)
    granted = _triples(role["rules"], named=False)
    missing = chart - NOT_GRANTED - granted
    assert not missing, f"{release}: the chart grants {sorted(missing)}, provision does not"
    extra = granted - chart
    assert not extra, f"{release}: provision grants {sorted(extra)}, the chart does not"
    assert _triples(role["rules"], named=True) == CHART_NAMED


def test_the_cluster_autoscaler_has_a_liveness_probe_on_its_health_check() -> None:
    """main.go at cluster-autoscaler-1.36.1 (and 1.33.6-1.35.2) serves /health-check on
    --address, default ":8085" (config/flags/flags.go); the chart probes it there."""
    docs = yaml.safe_load_all(autoscaler_objects.manifest(example("production")) or "")
    deployment = next(d for d in docs if d and d["kind"] == "Deployment"
                      and d["metadata"]["name"] == "cluster-autoscaler")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health-check", "port": 8085}
    assert not any(a.startswith("--address") for a in container["command"])
