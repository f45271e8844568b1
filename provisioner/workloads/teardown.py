"""Before Terraform destroys the droplets: release what the cluster created in the cloud.

LoadBalancer Services own DigitalOcean load balancers (made by the cloud controller manager)
and PersistentVolumeClaims own DigitalOcean volumes (made by the CSI driver). Destroying the
droplets first would leave both behind, unbilled by nobody's Terraform. So provision deletes
its own such Services and claims first and lets the cluster's controllers remove what they
made; what it did not apply is never touched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from provisioner import lb_names
from provisioner.config.model import Environment
from provisioner.kube import Kube, KubeError
from provisioner.workloads.objects import PART_OF, applyset_id


@dataclass
class CloudOwned:
    """Cloud resources the cluster's objects own, by the names the DigitalOcean API uses."""

    load_balancers: list[str] = field(default_factory=list)
    # Volume names: the DigitalOcean CSI driver names each volume after its PersistentVolume.
    volumes: list[str] = field(default_factory=list)


def _lb_name(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    annotated = (meta.get("annotations") or {}).get(lb_names.NAME_ANNOTATION)
    # Without the annotation the CCM names the load balancer "a" + the Service's uid.
    return str(annotated or ("a" + meta.get("uid", "").replace("-", ""))[:32])


def _ours(kube: Kube, path: str, set_id: str) -> list[dict[str, Any]]:
    """The objects at ``path`` that provision applied: members of this environment's
    ApplySet (label ``applyset.kubernetes.io/part-of``), never a neighbour's in the same
    namespace, nor anything on a cluster that is not this environment's."""
    selector = [("labelSelector", f"{PART_OF}={set_id}")]
    return list(kube.request("GET", path, selector).get("items") or [])


def _claim_names(statefulset: dict[str, Any]) -> re.Pattern[str]:
    """The names the StatefulSet controller gives its pods' claims,
    ``<template>-<statefulset>-<ordinal>`` (kubernetes/kubernetes pkg/controller/statefulset/
    stateful_set_utils.go, getPersistentVolumeClaimName), whatever the ordinal: claims of
    pods scaled away are kept by default and are as much this environment's."""
    name = re.escape(statefulset["metadata"]["name"])
    templates = [re.escape(t["metadata"]["name"])
                 for t in (statefulset.get("spec") or {}).get("volumeClaimTemplates") or []]
    return re.compile(rf"(?:{'|'.join(templates) or '(?!)'})-{name}-(?:0|[1-9][0-9]*)")


def release(env: Environment, api: Any) -> CloudOwned:
    """Delete provision's LoadBalancer Services, StatefulSets and their claims; say what goes.

    Only what provision applied (its ApplySet's members) and the claims its StatefulSets'
    templates made: a kubeconfig naming another cluster, or another team's objects in the
    same namespace, lose nothing.
    """
    kube = Kube(api)
    owned = CloudOwned()
    ns = env.namespace
    set_id = applyset_id(env)
    try:
        services = _ours(kube, f"/api/v1/namespaces/{ns}/services", set_id)
    except KubeError as e:
        if e.status == 404:
            return owned
        raise
    for service in services:
        if (service.get("spec") or {}).get("type") == "LoadBalancer":
            owned.load_balancers.append(_lb_name(service))
            kube.request("DELETE", f"/api/v1/namespaces/{ns}/services/"
                                   f"{service['metadata']['name']}", verb="delete services")
    statefulsets = _ours(kube, f"/apis/apps/v1/namespaces/{ns}/statefulsets", set_id)
    patterns = [_claim_names(sts) for sts in statefulsets]
    claims = [c for c in kube.request("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
                                      ).get("items") or []
              if any(p.fullmatch(c["metadata"]["name"]) for p in patterns)]
    if claims:
        # A StatefulSet would recreate its pods' claims: remove it first.
        for sts in statefulsets:
            kube.request("DELETE", f"/apis/apps/v1/namespaces/{ns}/statefulsets/"
                                   f"{sts['metadata']['name']}",
                         [("propagationPolicy", "Background")], verb="delete statefulsets")
    for claim in claims:
        volume = (claim.get("spec") or {}).get("volumeName")
        if volume:
            owned.volumes.append(str(volume))
        kube.request("DELETE", f"/api/v1/namespaces/{ns}/persistentvolumeclaims/"
                               f"{claim['metadata']['name']}", verb="delete persistentvolumeclaims")
    return owned
