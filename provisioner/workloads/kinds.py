"""The kinds provision applies, and where each lives in the API.

A fixed table instead of discovery: provision renders exactly these kinds, and knowing their
paths up front saves a discovery round trip per run (and per object on a slow link).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Kind:
    """One resource type: its API path pieces and where it goes in the apply order."""

    kind: str
    group: str
    version: str
    plural: str
    namespaced: bool
    tier: int  # applied tier by tier: namespaces, then config, workloads, then the rest

    @property
    def api_version(self) -> str:
        """``apps/v1`` or ``v1``."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_kind(self) -> str:
        """``Deployment.apps``, as ApplySet annotations name kinds."""
        return f"{self.kind}.{self.group}" if self.group else self.kind

    def path(self, namespace: str | None, name: str | None = None) -> str:
        """The REST path of the collection, or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


WORKLOADS = 2  # the tier of Deployments and StatefulSets


KINDS = {k.group_kind: k for k in (
    Kind("Namespace", "", "v1", "namespaces", False, 0),
    Kind("ConfigMap", "", "v1", "configmaps", True, 1),
    Kind("Secret", "", "v1", "secrets", True, 1),
    Kind("Deployment", "apps", "v1", "deployments", True, 2),
    Kind("StatefulSet", "apps", "v1", "statefulsets", True, 2),
    Kind("Service", "", "v1", "services", True, 3),
    Kind("HorizontalPodAutoscaler", "autoscaling", "v2", "horizontalpodautoscalers", True, 3),
    Kind("PodDisruptionBudget", "policy", "v1", "poddisruptionbudgets", True, 3),
)}


def kind_of(obj: dict[str, Any]) -> Kind:
    """The Kind entry of a manifest."""
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    key = f"{obj['kind']}.{group}" if group else obj["kind"]
    try:
        return KINDS[key]
    except KeyError:
        raise ValueError(f"provision does not apply {obj['apiVersion']} {obj['kind']}") from None
