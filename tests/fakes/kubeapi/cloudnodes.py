"""The cloud controller manager's node controller: it lifts the "uninitialized" taint.

A kubelet started with ``--cloud-provider=external`` registers its Node with the taint
``node.cloudprovider.kubernetes.io/uninitialized=true:NoSchedule`` (kubernetes
pkg/kubelet/kubelet_node_status.go, ``initialNode``: "if kl.externalCloudProvider"
appends ``cloudproviderapi.TaintExternalCloudProvider``, defined in
k8s.io/cloud-provider/api/well_known_taints.go). The cloud node controller that runs
inside the cloud controller manager (k8s.io/cloud-provider
controllers/node/node_controller.go, ``syncNode``: ``getCloudTaint`` then
``RemoveTaintOffNode`` once the node's addresses and provider ID are set) removes it; until
then no pod that does not tolerate it is scheduled on the node.

Here that controller works while a Ready pod of the cloud controller manager exists:
`selector` names its namespace and labels (the DigitalOcean CCM's Deployment labels its
pods ``app: digitalocean-cloud-controller-manager``). A CCM that crash-loops never lifts the
taint, as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from . import catalog
from .meta import clone, labels_of
from .registry import Registry

NODE = catalog.get("v1", "Node")
POD = catalog.get("v1", "Pod")
UNINITIALIZED = "node.cloudprovider.kubernetes.io/uninitialized"
MANAGER = "cloud-controller-manager"


def uninitialized_taint() -> dict[str, str]:
    """The taint the kubelet registers with (TaintExternalCloudProvider)."""
    return {"key": UNINITIALIZED, "value": "true", "effect": "NoSchedule"}


@dataclass
class CloudNodes:
    registry: Registry
    # (namespace, labels) of the cloud controller manager's pods; None: no CCM runs.
    selector: tuple[str, Mapping[str, str]] | None = None

    def running(self) -> bool:
        if self.selector is None:
            return False
        namespace, labels = self.selector
        for pod in self.registry.store.objects(POD, namespace)[0]:
            if labels.items() <= labels_of(pod).items() and any(
                    c.get("type") == "Ready" and c.get("status") == "True"
                    for c in pod.get("status", {}).get("conditions", [])):
                return True
        return False

    def step(self, keys: Iterable[Any]) -> None:
        """One pass, when anything was queued: lift the taint if the CCM is up."""
        if not list(keys):
            return
        tainted = [n for n in self.registry.store.objects(NODE)[0]
                   if any(t.get("key") == UNINITIALIZED for t in n["spec"].get("taints", []))]
        if not tainted or not self.running():
            return
        for node in tainted:
            new = clone(node)
            new["spec"]["taints"] = [t for t in node["spec"]["taints"]
                                     if t.get("key") != UNINITIALIZED]
            if not new["spec"]["taints"]:
                new["spec"].pop("taints")
            self.registry.commit(NODE, node, new, MANAGER)
