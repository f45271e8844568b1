"""Server-side printing: `Accept: application/json;as=Table;g=meta.k8s.io;v=v1`.

`kubectl get` asks for a Table and prints its cells; without one it falls back to bare
NAME/AGE columns. The columns below mirror the real printers for the common kinds (so
`kubectl get deploy` shows READY 3/3, UP-TO-DATE, AVAILABLE); other kinds get NAME and
AGE. Cells are computed here, as the real server does, so AGE is relative to now.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .catalog import ResourceType
from .meta import metadata, name_of

Row = Callable[[Mapping[str, Any]], list[Any]]


def age(obj: Mapping[str, Any]) -> str:
    created = metadata(obj).get("creationTimestamp")
    if not created:
        return "<unknown>"
    then = dt.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
    seconds = max(int((dt.datetime.now(dt.UTC) - then).total_seconds()), 0)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 600:
        return f"{seconds // 60}m{seconds % 60}s" if seconds % 60 else f"{seconds // 60}m"
    if seconds < 3 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def _status(obj: Mapping[str, Any]) -> Mapping[str, Any]:
    return obj.get("status") or {}


def _pod_status(obj: Mapping[str, Any]) -> str:
    for cs in _status(obj).get("containerStatuses", []):
        waiting = cs.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            return str(waiting["reason"])
    return str(_status(obj).get("phase", "Pending"))


def _pod_row(obj: Mapping[str, Any]) -> list[Any]:
    statuses = _status(obj).get("containerStatuses", [])
    total = len(obj.get("spec", {}).get("containers", []))
    ready = sum(1 for cs in statuses if cs.get("ready"))
    restarts = sum(int(cs.get("restartCount", 0)) for cs in statuses)
    return [f"{ready}/{total}", _pod_status(obj), restarts]


def _node_row(obj: Mapping[str, Any]) -> list[Any]:
    ready = next((c["status"] for c in _status(obj).get("conditions", [])
                  if c.get("type") == "Ready"), "Unknown")  # fmt: skip
    state = {"True": "Ready", "False": "NotReady"}.get(ready, "Unknown")
    if obj.get("spec", {}).get("unschedulable"):
        state += ",SchedulingDisabled"
    roles = sorted(k.split("/", 1)[1] for k in metadata(obj).get("labels", {})
                   if k.startswith("node-role.kubernetes.io/"))  # fmt: skip
    version = _status(obj).get("nodeInfo", {}).get("kubeletVersion", "")
    return [state, ",".join(roles) or "<none>", age(obj), version]


def _service_row(obj: Mapping[str, Any]) -> list[Any]:
    spec = obj.get("spec", {})
    ingress = _status(obj).get("loadBalancer", {}).get("ingress", [])
    external = ",".join(i.get("ip") or i.get("hostname", "") for i in ingress)
    if not external:
        external = "<pending>" if spec.get("type") == "LoadBalancer" else "<none>"
    ports = ",".join(
        f"{p['port']}{':' + str(p['nodePort']) if p.get('nodePort') else ''}/{p['protocol']}"
        for p in spec.get("ports", [])
    )
    return [spec.get("type"), spec.get("clusterIP", "<none>"), external, ports or "<none>"]


def _replicas(obj: Mapping[str, Any], key: str) -> int:
    return int(_status(obj).get(key, 0))


_COLUMNS: dict[str, tuple[list[str], Row]] = {
    "Node": (["Status", "Roles", "Age", "Version"], _node_row),
    "Namespace": (["Status"], lambda o: [_status(o).get("phase", "Active")]),
    "Pod": (["Ready", "Status", "Restarts"], _pod_row),
    "Deployment": (["Ready", "Up-to-date", "Available"], lambda o: [
        f"{_replicas(o, 'readyReplicas')}/{o.get('spec', {}).get('replicas', 0)}",
        _replicas(o, "updatedReplicas"), _replicas(o, "availableReplicas")]),
    "ReplicaSet": (["Desired", "Current", "Ready"], lambda o: [
        o.get("spec", {}).get("replicas", 0), _replicas(o, "replicas"),
        _replicas(o, "readyReplicas")]),
    "StatefulSet": (["Ready"], lambda o: [
        f"{_replicas(o, 'readyReplicas')}/{o.get('spec', {}).get('replicas', 0)}"]),
    "Service": (["Type", "Cluster-IP", "External-IP", "Port(s)"], _service_row),
    "PersistentVolumeClaim": (["Status", "Volume", "Capacity", "Access Modes"], lambda o: [
        _status(o).get("phase", "Pending"), o.get("spec", {}).get("volumeName", ""),
        _status(o).get("capacity", {}).get("storage", ""),
        ",".join(_status(o).get("accessModes", []))]),
    "ConfigMap": (["Data"], lambda o: [len(o.get("data", {})) + len(o.get("binaryData", {}))]),
    "Secret": (["Type", "Data"], lambda o: [o.get("type", "Opaque"), len(o.get("data", {}))]),
    "HorizontalPodAutoscaler": (["Reference", "MinPods", "MaxPods", "Replicas"], lambda o: [
        "{kind}/{name}".format(**o.get("spec", {}).get("scaleTargetRef", {"kind": "", "name": ""})),
        o.get("spec", {}).get("minReplicas", 1), o.get("spec", {}).get("maxReplicas"),
        _replicas(o, "currentReplicas")]),
    "PodDisruptionBudget": (["Min Available", "Max Unavailable", "Allowed Disruptions"],
                            lambda o: [o.get("spec", {}).get("minAvailable", "N/A"),
                                       o.get("spec", {}).get("maxUnavailable", "N/A"),
                                       _replicas(o, "disruptionsAllowed")]),
}  # fmt: skip


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def table(rt: ResourceType, items: Sequence[Mapping[str, Any]], resource_version: str,
          include_object: str = "Metadata") -> dict[str, Any]:  # fmt: skip
    """A meta.k8s.io/v1 Table of `items`."""
    if rt.kind == "Event":
        return _table(_EVENT_COLUMNS, [(_event_row(o), o) for o in items], resource_version,
                      include_object)  # fmt: skip
    names, row = _COLUMNS.get(rt.kind, ([], lambda o: []))
    columns = ["Name", *names] if "Age" in names else ["Name", *names, "Age"]
    rows = [([name_of(o), *row(o)] + ([] if "Age" in names else [age(o)]), o) for o in items]
    return _table(columns, rows, resource_version, include_object)


_EVENT_COLUMNS = ["Last Seen", "Type", "Reason", "Object", "Message"]


def _event_row(obj: Mapping[str, Any]) -> list[Any]:
    involved = obj.get("involvedObject", {})
    last = {"metadata": {"creationTimestamp": obj.get("lastTimestamp")}}
    return [age(last), obj.get("type"), obj.get("reason"),
            f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
            obj.get("message")]  # fmt: skip


def _table(names: list[str], rows: list[tuple[list[Any], Mapping[str, Any]]],
           resource_version: str, include_object: str) -> dict[str, Any]:  # fmt: skip
    columns = [{"name": n, "type": "string", "format": "name" if n == "Name" else "",
                "priority": 0, "description": n} for n in names]  # fmt: skip
    table_rows = []
    for cells, obj in rows:
        entry: dict[str, Any] = {"cells": cells}
        if include_object == "Object":
            entry["object"] = dict(obj)
        elif include_object != "None":
            entry["object"] = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                               "metadata": metadata(obj)}  # fmt: skip
        table_rows.append(entry)
    return {"kind": "Table", "apiVersion": "meta.k8s.io/v1",
            "metadata": {"resourceVersion": resource_version},
            "columnDefinitions": columns, "rows": table_rows}  # fmt: skip
