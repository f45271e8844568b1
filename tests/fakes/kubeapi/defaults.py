"""Defaulting and the few validation rules a deploy tool trips over on a real cluster.

Defaults matter to clients: `kubectl rollout status` refuses a StatefulSet without
`updateStrategy.type: RollingUpdate`, rollouts read `spec.replicas` and
`progressDeadlineSeconds`, and a re-applied manifest must not look changed only because
the server filled something in. Validation is limited to the mistakes that real clusters
reject and a fake accepting them would hide: missing/invalid names, a Deployment selector
not matching its template, changing an immutable selector, and StatefulSet spec fields
that cannot be updated.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from . import selectors
from .catalog import ResourceType
from .errors import ApiError, invalid

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAMED = ("namespaces", "services")  # DNS-1123 labels (63 chars, no dots)
_STS_MUTABLE = ("replicas", "template", "updateStrategy", "persistentVolumeClaimRetentionPolicy",
                "minReadySeconds", "ordinals", "revisionHistoryLimit")  # fmt: skip


def pod_spec(spec: dict[str, Any]) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("securityContext", {})
    for container in [*spec.get("initContainers", []), *spec.get("containers", [])]:
        image = str(container.get("image", ""))
        tag = image.rsplit("/", 1)[-1]
        latest = "@" not in tag and (":" not in tag or tag.endswith(":latest"))
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        container.setdefault("resources", {})
        for port in container.get("ports", []):
            port.setdefault("protocol", "TCP")


def _template(spec: dict[str, Any]) -> None:
    template = spec.setdefault("template", {})
    template.setdefault("metadata", {})
    pod_spec(template.setdefault("spec", {}))


def default(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Fill in what the real API server would (in place)."""
    spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else None
    kind = rt.kind
    if kind == "Namespace":
        obj.setdefault("metadata", {}).setdefault("labels", {})[
            "kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
        obj.setdefault("status", {}).setdefault("phase", "Active")
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        for key, value in (obj.pop("stringData", None) or {}).items():
            obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode()
    elif kind == "Pod" and spec is not None:
        pod_spec(spec)
        status = obj.setdefault("status", {})
        if not status:
            status.update(phase="Pending", qosClass="BestEffort")
    elif kind == "PersistentVolumeClaim" and spec is not None:
        spec.setdefault("volumeMode", "Filesystem")
        obj.setdefault("status", {}).setdefault("phase", "Pending")
    elif kind == "Service" and spec is not None:
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("ipFamilies", ["IPv4"])
        spec.setdefault("ipFamilyPolicy", "SingleStack")
        spec.setdefault("internalTrafficPolicy", "Cluster")
        for port in spec.get("ports", []):
            port.setdefault("protocol", "TCP")
            port.setdefault("targetPort", port.get("port"))
        if spec["type"] in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
    elif kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet") and spec is not None:
        if kind != "DaemonSet":
            spec.setdefault("replicas", 1)
        spec.setdefault("revisionHistoryLimit", 10)
        _template(spec)
        if kind == "Deployment":
            spec.setdefault("progressDeadlineSeconds", 600)
            strategy = spec.setdefault("strategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                rolling = strategy.setdefault("rollingUpdate", {})
                rolling.setdefault("maxUnavailable", "25%")
                rolling.setdefault("maxSurge", "25%")
        elif kind == "StatefulSet":
            spec.setdefault("podManagementPolicy", "OrderedReady")
            strategy = spec.setdefault("updateStrategy", {})
            strategy.setdefault("type", "RollingUpdate")
            if strategy["type"] == "RollingUpdate":
                strategy.setdefault("rollingUpdate", {}).setdefault("partition", 0)
            spec.setdefault("persistentVolumeClaimRetentionPolicy",
                            {"whenDeleted": "Retain", "whenScaled": "Retain"})  # fmt: skip
    elif kind == "HorizontalPodAutoscaler" and spec is not None:
        spec.setdefault("minReplicas", 1)


def validate(rt: ResourceType, obj: Mapping[str, Any], old: Mapping[str, Any] | None) -> None:
    """Raise 422 Invalid like the real server would for these mistakes."""
    name = str(obj.get("metadata", {}).get("name") or "")
    pattern = _LABEL if rt.plural in _LABEL_NAMED else _SUBDOMAIN
    limit = 63 if rt.plural in _LABEL_NAMED else 253
    if rt.kind in ("Node", "Event"):
        pattern = re.compile(r"^[a-zA-Z0-9.:_-]+$")
    if not name:
        raise invalid(rt, name, [("metadata.name", "FieldValueRequired",
                                  "Required value: name or generateName is required")])
    if len(name) > limit or not pattern.match(name):
        raise invalid(rt, name, [("metadata.name", "FieldValueInvalid",
                                  f'Invalid value: "{name}": a lowercase RFC 1123 name must '
                                  "consist of lower case alphanumeric characters, '-' or '.'")])
    spec = obj.get("spec")
    workload = rt.kind in ("Deployment", "ReplicaSet", "StatefulSet", "DaemonSet")
    if workload and isinstance(spec, dict):
        _validate_workload(rt, name, spec, old)
        _unique_containers(rt, name, (spec.get("template") or {}).get("spec"),
                           "spec.template.spec")  # fmt: skip
    elif rt.kind == "Pod" and isinstance(spec, dict):
        _unique_containers(rt, name, spec, "spec")


def _unique_containers(rt: ResourceType, name: str, pod: Any, where: str) -> None:
    seen: set[str] = set()
    for n, container in enumerate((pod or {}).get("containers") or []):
        cname = str((container or {}).get("name", ""))
        if cname in seen:
            raise invalid(rt, name, [(f"{where}.containers[{n}].name", "FieldValueDuplicate",
                                      f'Duplicate value: "{cname}"')])  # fmt: skip
        seen.add(cname)


def _validate_workload(
    rt: ResourceType, name: str, spec: Mapping[str, Any], old: Mapping[str, Any] | None
) -> None:
    selector = spec.get("selector")
    if not selector:
        raise invalid(rt, name, [("spec.selector", "FieldValueRequired", "Required value")])
    labels = (spec.get("template") or {}).get("metadata", {}).get("labels") or {}
    if not selectors.labels_match(selectors.from_object(selector), labels):
        raise invalid(rt, name, [("spec.template.metadata.labels", "FieldValueInvalid",
                                  f"Invalid value: {labels}: `selector` does not match "
                                  "template `labels`")])  # fmt: skip
    for n, container in enumerate((spec.get("template") or {}).get("spec", {}).get("containers")
                                  or [None]):
        field = f"spec.template.spec.containers[{n}]"
        if not container or not container.get("image"):
            raise invalid(rt, name, [(f"{field}.image", "FieldValueRequired", "Required value")])
    if old is None:
        return
    old_spec = old.get("spec") or {}
    if old_spec.get("selector") != selector:
        raise invalid(rt, name, [("spec.selector", "FieldValueInvalid",
                                  f"Invalid value: {selector}: field is immutable")])  # fmt: skip
    if rt.kind == "StatefulSet":
        frozen_old = {k: v for k, v in old_spec.items() if k not in _STS_MUTABLE}
        frozen_new = {k: v for k, v in spec.items() if k not in _STS_MUTABLE}
        if frozen_old != frozen_new:
            raise invalid(rt, name, [(
                "spec", "FieldValueForbidden",
                "Forbidden: updates to statefulset spec for fields other than 'replicas', "
                "'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', "
                "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
            )])  # fmt: skip


def reject_unknown_kind(rt: ResourceType, obj: Mapping[str, Any]) -> None:
    """400 when the body's apiVersion/kind is not the endpoint's type."""
    if obj.get("kind") not in (None, rt.kind) or obj.get("apiVersion") not in (
        None, rt.group_version,
    ):
        raise ApiError(400, "BadRequest",
                       f"the API version in the data ({obj.get('apiVersion')}) does not match "
                       f"the expected API version ({rt.group_version})"
                       if obj.get("apiVersion") != rt.group_version else
                       f"the kind in the data ({obj.get('kind')}) does not match the expected "
                       f"kind ({rt.kind})")  # fmt: skip
