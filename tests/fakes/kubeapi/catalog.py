"""The resource types the fake serves, as one table discovery, routing and OpenAPI share.

Only what clients read is modelled: plural/singular names, Kind, scope, verbs, short
names (kubectl resolves `deploy`, `svc`... from discovery, not from a built-in list),
categories (`kubectl get all`) and subresources. Anything not in this table is a 404,
as on a cluster without that API.
"""

from __future__ import annotations

from dataclasses import dataclass

ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One REST resource (e.g. apps/v1 deployments)."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()  # "status", "scale", "log", "approval"
    categories: tuple[str, ...] = ()
    # metadata.generation is maintained only where the real registry does (spec-bearing
    # workload and policy types); ConfigMaps, Services... have none.
    has_generation: bool = False
    # Minors of kube-apiserver that serve this group/version (both ends included; None:
    # every minor the fake is run as). See `served`.
    served_from: int | None = None
    served_until: int | None = None

    def served(self, minor: int) -> bool:
        """Whether a kube-apiserver of this minor serves the type (else its path is a 404)."""
        return ((self.served_from is None or minor >= self.served_from)
                and (self.served_until is None or minor <= self.served_until))

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def group_version(self) -> str:
        """`apps/v1`, or `v1` for the core group (an object's apiVersion)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> str:
        """`deployments.apps`, or `pods`: how the real server names a type in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def path(self, namespace: str | None = None, name: str | None = None) -> str:
        """The URL path of the collection or of one object."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{namespace}"
        base += f"/{self.plural}"
        return f"{base}/{name}" if name else base


_rt = ResourceType
_ALL = ("all",)


def _workload(plural: str, kind: str, short: str) -> ResourceType:
    """An apps/v1 controller type with /status and /scale."""
    return ResourceType("apps", "v1", plural, kind, short_names=(short,),
                        subresources=("status", "scale"), categories=_ALL, has_generation=True)

RESOURCES: tuple[ResourceType, ...] = (
    _rt("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",),
        subresources=("status",)),
    _rt("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",)),
    _rt("", "v1", "pods", "Pod", short_names=("po",), subresources=("status", "log", "eviction"),
        categories=_ALL),
    _rt("", "v1", "services", "Service", short_names=("svc",), subresources=("status",),
        categories=_ALL),
    _rt("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _rt("", "v1", "secrets", "Secret"),
    _rt("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",),
        subresources=("token",)),
    _rt("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",),
        subresources=("status",)),
    _rt("", "v1", "events", "Event", short_names=("ev",)),
    _workload("deployments", "Deployment", "deploy"),
    _workload("statefulsets", "StatefulSet", "sts"),
    _workload("replicasets", "ReplicaSet", "rs"),
    _rt("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), subresources=("status",),
        categories=_ALL, has_generation=True),
    _rt("apps", "v1", "controllerrevisions", "ControllerRevision"),
    _rt("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler",
        short_names=("hpa",), subresources=("status",), categories=_ALL, has_generation=True),
    _rt("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",),
        subresources=("status",), has_generation=True),
    _rt("coordination.k8s.io", "v1", "leases", "Lease"),
    _rt("batch", "v1", "jobs", "Job", subresources=("status",), categories=_ALL,
        has_generation=True),
    _rt("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",),
        subresources=("status",), has_generation=True),
    _rt("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _rt("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _rt("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _rt("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding",
        namespaced=False),
    # Kubelet serving certificates (tests/fakes/kubeapi/certificates.py).
    _rt("certificates.k8s.io", "v1", "certificatesigningrequests", "CertificateSigningRequest",
        namespaced=False, short_names=("csr",), subresources=("status", "approval")),
    # API Priority and Fairness, as served across a removal (the upgrade preflight looks for
    # objects written through a version the target minor no longer serves). The Deprecated
    # API Migration Guide (kubernetes/website content/en/docs/reference/using-api/
    # deprecation-guide.md, section v1.32) says flowcontrol.apiserver.k8s.io/v1beta3 is
    # served until 1.32 removes it, and v1 is available since 1.29; both versions share one
    # storage (the store keys objects by group and resource, not version).
    *(_rt("flowcontrol.apiserver.k8s.io", version, plural, kind, namespaced=False,
          subresources=("status",), has_generation=True, served_from=since,
          served_until=until)
      for version, since, until in (("v1", 29, None), ("v1beta3", None, 31))
      for plural, kind in (("flowschemas", "FlowSchema"),
                           ("prioritylevelconfigurations", "PriorityLevelConfiguration"))),
)  # fmt: skip

# Subresources whose body is another kind (GET deployments/x/scale is an autoscaling/v1 Scale).
SUBRESOURCE_KIND = {"scale": ("autoscaling", "v1", "Scale"), "log": ("", "v1", "Pod"),
                    "eviction": ("policy", "v1", "Eviction"),
                    "token": ("authentication.k8s.io", "v1", "TokenRequest")}
SUBRESOURCE_VERBS = {"status": ("get", "patch", "update"), "scale": ("get", "patch", "update"),
                     "log": ("get",), "approval": ("get", "patch", "update"),
                     "eviction": ("create",), "token": ("create",)}  # fmt: skip


def group_versions(minor: int | None = None) -> list[tuple[str, str]]:
    """(group, version) pairs in first-seen order; the core group is ''. With ``minor``:
    only those a kube-apiserver of that minor serves."""
    seen: dict[tuple[str, str], None] = {}
    for rt in RESOURCES:
        if minor is None or rt.served(minor):
            seen.setdefault((rt.group, rt.version), None)
    return list(seen)


def lookup(group: str, version: str, plural: str) -> ResourceType | None:
    """The type served at /api(s)/<group>/<version>/<plural>, if any."""
    for rt in RESOURCES:
        if (rt.group, rt.version, rt.plural) == (group, version, plural):
            return rt
    return None


def by_kind(api_version: str, kind: str) -> ResourceType | None:
    """The type of objects with this apiVersion and kind (controllers create by kind)."""
    for rt in RESOURCES:
        if rt.group_version == api_version and rt.kind == kind:
            return rt
    return None


def get(api_version: str, kind: str) -> ResourceType:
    """`by_kind`, for kinds the fake itself relies on (a KeyError is a bug in the fake)."""
    rt = by_kind(api_version, kind)
    if rt is None:
        raise KeyError(f"{api_version} {kind}")
    return rt
