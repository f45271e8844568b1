"""core/v1 Events from the simulated controllers (what `kubectl describe` shows).

Repeated events for the same object and reason are folded into one Event whose `count`
rises, as the real event recorder does, so a crash-looping pod does not flood the store.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from . import catalog
from .meta import clone, metadata, name_of, namespace_of, timestamp
from .registry import Registry

EVENT = catalog.get("v1", "Event")


def record(
    registry: Registry, obj: Mapping[str, Any], reason: str, message: str, *,
    warning: bool = False, component: str = "kube-controller-manager",
) -> None:
    """Create or bump the Event about `obj` with this reason."""
    meta = metadata(obj)
    namespace = namespace_of(obj) or "default"
    digest = hashlib.sha256(f"{meta.get('uid')}/{reason}".encode()).hexdigest()[:16]
    name = f"{name_of(obj)}.{digest}"
    now = timestamp()
    existing = registry.store.get(EVENT, namespace, name)
    if existing is not None:
        bumped = clone(existing)
        bumped.update(count=int(existing.get("count", 1)) + 1, lastTimestamp=now,
                      message=message)  # fmt: skip
        registry.commit(EVENT, existing, bumped, component)
        return
    if registry.store.get(catalog.get("v1", "Namespace"), "", namespace) is None:
        return
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"apiVersion": obj.get("apiVersion"), "kind": obj.get("kind"),
                           "name": name_of(obj), "namespace": namespace_of(obj),
                           "uid": meta.get("uid"), "resourceVersion": meta.get("resourceVersion")},
        "reason": reason, "message": message, "type": "Warning" if warning else "Normal",
        "source": {"component": component}, "count": 1,
        "firstTimestamp": now, "lastTimestamp": now, "reportingComponent": component,
    }  # fmt: skip
    registry.commit(EVENT, None, event, component)
