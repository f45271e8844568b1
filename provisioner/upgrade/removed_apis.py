"""API group/versions kube-apiserver stops serving, by the minor that removes them.

Source: the Kubernetes "Deprecated API Migration Guide", kubernetes/website
content/en/docs/reference/using-api/deprecation-guide.md (published at
kubernetes.io/docs/reference/using-api/deprecation-guide/), its "Removed APIs by release"
sections v1.32, v1.29, v1.27, v1.26 and v1.25 as the file reads on the default branch
(read 2026-12-07; stored commit 6a6fc841d44f, an older revision, carries only the v1.25 and
v1.22 sections). Nothing is announced there for 1.33 to 1.37, the minors provision
supports (config/checks.SUPPORTED_MINORS): the rows for 1.25-1.32 are kept so that the
check is exercised (tests run a 1.31 API server that still serves
flowcontrol.apiserver.k8s.io/v1beta3) and so that a later removal is one row.

Each row: the group/version, the resources it served, the last minor that served it, the
minor that removed it, and the version to move to (None: there is none, the objects'
type is gone, e.g. PodSecurityPolicy).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = ("kubernetes/website content/en/docs/reference/using-api/deprecation-guide.md "
          "(Deprecated API Migration Guide)")


@dataclass(frozen=True)
class Removal:
    """One group/version's resources that a minor stops serving."""

    group: str
    version: str
    resources: tuple[tuple[str, str], ...]  # (plural, Kind)
    served_until: int  # the last minor (1.<n>) that serves it
    removed_in: int  # the first minor that does not
    replacement: str | None  # the group/version to migrate to; None: no successor

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def path(self) -> str:
        """The discovery path of the group/version (404 where it is not served)."""
        return f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"


_FLOW = (("flowschemas", "FlowSchema"),
         ("prioritylevelconfigurations", "PriorityLevelConfiguration"))

REMOVALS: tuple[Removal, ...] = (
    # v1.32
    Removal("flowcontrol.apiserver.k8s.io", "v1beta3", _FLOW, 31, 32,
            "flowcontrol.apiserver.k8s.io/v1"),
    # v1.29
    Removal("flowcontrol.apiserver.k8s.io", "v1beta2", _FLOW, 28, 29,
            "flowcontrol.apiserver.k8s.io/v1"),
    # v1.27
    Removal("storage.k8s.io", "v1beta1", (("csistoragecapacities", "CSIStorageCapacity"),),
            26, 27, "storage.k8s.io/v1"),
    # v1.26
    Removal("flowcontrol.apiserver.k8s.io", "v1beta1", _FLOW, 25, 26,
            "flowcontrol.apiserver.k8s.io/v1beta2"),
    Removal("autoscaling", "v2beta2", (("horizontalpodautoscalers", "HorizontalPodAutoscaler"),),
            25, 26, "autoscaling/v2"),
    # v1.25
    Removal("batch", "v1beta1", (("cronjobs", "CronJob"),), 24, 25, "batch/v1"),
    Removal("discovery.k8s.io", "v1beta1", (("endpointslices", "EndpointSlice"),), 24, 25,
            "discovery.k8s.io/v1"),
    Removal("events.k8s.io", "v1beta1", (("events", "Event"),), 24, 25, "events.k8s.io/v1"),
    Removal("autoscaling", "v2beta1", (("horizontalpodautoscalers", "HorizontalPodAutoscaler"),),
            24, 25, "autoscaling/v2"),
    Removal("policy", "v1beta1", (("poddisruptionbudgets", "PodDisruptionBudget"),), 24, 25,
            "policy/v1"),
    Removal("policy", "v1beta1", (("podsecuritypolicies", "PodSecurityPolicy"),), 24, 25, None),
    Removal("node.k8s.io", "v1beta1", (("runtimeclasses", "RuntimeClass"),), 24, 25,
            "node.k8s.io/v1"),
)  # fmt: skip


def minor_of(version: str) -> int:
    """23 for ``1.23.4`` or ``v1.23.4``."""
    return int(version.lstrip("v").split(".")[1])


def removed_between(current_minor: int, target_minor: int) -> list[Removal]:
    """What an upgrade from ``current_minor`` to ``target_minor`` stops serving."""
    return [r for r in REMOVALS if current_minor < r.removed_in <= target_minor]
