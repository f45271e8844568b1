"""Review finding: the cluster-autoscaler's ClusterRole must let it read the DRA objects.

Upstream (kubernetes/autoscaler, tag cluster-autoscaler-1.36.1, commit
35e8a280425c76a4040f57ae0fa232a952c02024; the same at cluster-autoscaler-1.35.2):

* cluster-autoscaler/config/flags/flags.go:236 ``enable-dynamic-resource-allocation``
  defaults to true, "locked to true", and :310 exits when it is set false;
* cluster-autoscaler/simulator/dynamicresources/provider/provider.go:35-37 builds listers
  of resource.k8s.io/v1 ResourceClaims, ResourceSlices and DeviceClasses on the shared
  informer factory;
* cluster-autoscaler/builder/autoscaler.go:319-326 starts that factory and waits for every
  informer's cache to sync before the autoscaler runs. A list the API forbids never syncs,
  so without these rules the pod hangs at "Waiting for caches to sync..." and never scales;
* charts/cluster-autoscaler/templates/clusterrole.yaml (same tag) grants watch, list, get on
  resourceslices, deviceclasses and resourceclaims in resource.k8s.io.
"""

from __future__ import annotations

from typing import Any

import yaml

from provisioner.render import autoscaler
from tests.support.rendering import example, rendered

DRA = {"resourceslices", "deviceclasses", "resourceclaims"}


def _granted(rules: list[dict[str, Any]], group: str, resource: str) -> set[str]:
    verbs: set[str] = set()
    for rule in rules:
        if group in rule.get("apiGroups", []) and resource in rule.get("resources", []) \
                and not rule.get("resourceNames"):
            verbs |= set(rule.get("verbs", []))
    return verbs


def test_cluster_autoscaler_can_list_and_watch_dra_objects() -> None:
    image = autoscaler.cluster_autoscaler_image(example("production"))
    assert image.endswith(":v1.36.1")  # DRA locked on since 1.35
    docs = [d for d in yaml.safe_load_all(rendered("production")["autoscaler/manifests.yaml"])
            if d]
    role = next(d for d in docs if d["kind"] == "ClusterRole"
                and d["metadata"]["name"] == "provision-cluster-autoscaler")
    missing = {r for r in DRA
               if not {"list", "watch"} <= _granted(role["rules"], "resource.k8s.io", r)}
    assert not missing, f"cluster-autoscaler cannot list/watch resource.k8s.io {sorted(missing)}"
