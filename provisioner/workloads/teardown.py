"""Before Terraform destroys the droplets: release what the cluster created in the cloud.

LoadBalancer Services own DigitalOcean load balancers (made by the cloud controller manager)
and PersistentVolumeClaims own DigitalOcean volumes (made by the CSI driver). Destroying the
droplets first would leave both behind, unbilled by nobody's Terraform. So provision deletes
those Services and claims first and lets the cluster's controllers remove what they made.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from provisioner.config.model import Environment
from provisioner.kube import Kube, KubeError

LB_NAME = "service.beta.kubernetes.io/do-loadbalancer-name"


@dataclass
class CloudOwned:
    """Cloud resources the cluster's objects own, by the names the DigitalOcean API uses."""

    load_balancers: list[str] = field(default_factory=list)
    # Volume names: the DigitalOcean CSI driver names each volume after its PersistentVolume.
    volumes: list[str] = field(default_factory=list)


def _lb_name(service: dict[str, Any]) -> str:
    meta = service["metadata"]
    annotated = (meta.get("annotations") or {}).get(LB_NAME)
    # Without the annotation the CCM names the load balancer "a" + the Service's uid.
    return str(annotated or ("a" + meta.get("uid", "").replace("-", ""))[:32])


def release(env: Environment, api: Any) -> CloudOwned:
    """Delete the namespace's LoadBalancer Services, StatefulSets and claims; say what goes."""
    kube = Kube(api)
    owned = CloudOwned()
    ns = env.namespace
    try:
        services = kube.request("GET", f"/api/v1/namespaces/{ns}/services").get("items") or []
    except KubeError as e:
        if e.status == 404:
            return owned
        raise
    for service in services:
        if (service.get("spec") or {}).get("type") == "LoadBalancer":
            owned.load_balancers.append(_lb_name(service))
            kube.request("DELETE", f"/api/v1/namespaces/{ns}/services/"
                                   f"{service['metadata']['name']}", verb="delete services")
    claims = kube.request("GET", f"/api/v1/namespaces/{ns}/persistentvolumeclaims"
                          ).get("items") or []
    if claims:
        # A StatefulSet would recreate its pods' claims: remove it first.
        for sts in kube.request("GET", f"/apis/apps/v1/namespaces/{ns}/statefulsets"
                                ).get("items") or []:
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
