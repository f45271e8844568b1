"""REST semantics over the store: create, replace, patch, apply, delete, scale.

Both the HTTP layer and the simulated controllers write through `Registry`, so every
write gets the same treatment: status/spec reset per endpoint, defaulting, validation,
generation, managedFields, no-op detection (an unchanged object is not rewritten and
keeps its resourceVersion, as an identical re-apply does on a real cluster), dry run,
and garbage collection of dependents on delete.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from . import apply, catalog, certificates, defaults, errors, patch, schemas, selectors
from .catalog import ResourceType
from .errors import ApiError
from .meta import clone, metadata, name_of, namespace_of, timestamp
from .schemas import FieldCheck
from .store import Store

_GENERATE_CHARS = "bcdfghjklmnpqrstvwxz2456789"  # the apiserver's generateName alphabet
_NAMESPACE = catalog.get("v1", "Namespace")


def parse_body(raw: bytes, content_type: str) -> Any:
    """JSON, or YAML for apply patches (kubectl sends JSON, but YAML is allowed)."""
    if not raw.strip():
        return None
    if "protobuf" in content_type or "cbor" in content_type:
        raise errors.ApiError(415, "UnsupportedMediaType",
                              f"the fake API server reads JSON (and YAML apply patches) only, "
                              f"not {content_type}: kubectl's typed generators such as "
                              "`kubectl create deployment` send protobuf; use -f manifests")
    try:
        return json.loads(raw)
    except ValueError:
        if content_type != patch.APPLY:
            raise errors.bad_request("unable to decode the request body as JSON") from None
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from None


def _spec_part(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What a generation bump looks at: everything but metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status")}


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object as a no-op write compares it: without resourceVersion and the times of
    managedFields. Shares the object's values (for comparing only)."""
    out = dict(obj)
    meta = dict(out.get("metadata") or {})
    meta.pop("resourceVersion", None)
    if meta.get("managedFields"):
        meta["managedFields"] = [{k: v for k, v in entry.items() if k != "time"}
                                 for entry in meta["managedFields"]]
    if "metadata" in out:
        out["metadata"] = meta
    return out


class Registry:
    """The apiserver's handlers minus HTTP; `manager` is the field manager of each write."""

    def __init__(self, store: Store, rng: random.Random | None = None) -> None:
        self.store = store
        self.rng = rng or random.Random(0)
        self._cluster_ips = (str(ip) for ip in ipaddress.ip_network("10.96.0.0/12").hosts())
        next(self._cluster_ips)  # 10.96.0.1 is the `kubernetes` service
        self._node_ports = itertools.count(30000)
        self.on_delete: list[Callable[[ResourceType, dict[str, Any]], None]] = []

    # ------------------------------------------------------------------- reads

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt, name)
        return obj

    def _require_namespace(self, rt: ResourceType, namespace: str) -> None:
        if rt.namespaced and self.store.get(_NAMESPACE, "", namespace) is None:
            raise errors.namespace_not_found(namespace)

    # ------------------------------------------------------------------ writes

    def create(
        self, rt: ResourceType, namespace: str, body: Any, manager: str, *,
        dry_run: bool = False, fields: FieldCheck | None = None,
    ) -> dict[str, Any]:
        obj = self._body(rt, namespace, body)
        (fields or FieldCheck()).check(rt.kind, rt.version, obj)
        meta = obj["metadata"]
        if not meta.get("name") and meta.get("generateName"):
            suffix = "".join(self.rng.choice(_GENERATE_CHARS) for _ in range(5))
            meta["name"] = meta["generateName"] + suffix
        with self.store.lock:
            self._require_namespace(rt, namespace)
            if self.store.get(rt, namespace, name_of(obj)) is not None:
                raise errors.already_exists(rt, name_of(obj))
            return self.commit(rt, None, obj, manager, dry_run=dry_run)

    def replace(
        self, rt: ResourceType, namespace: str, name: str, body: Any, manager: str, *,
        dry_run: bool = False, subresource: str = "", fields: FieldCheck | None = None,
    ) -> dict[str, Any]:
        obj = self._body(rt, namespace, body, name)
        (fields or FieldCheck()).check(rt.kind, rt.version, obj)
        with self.store.lock:
            old = self.get(rt, namespace, name)
            wanted = metadata(obj).get("resourceVersion")
            if wanted and wanted != metadata(old)["resourceVersion"]:
                raise errors.stale(rt, name)
            return self.commit(rt, old, obj, manager, dry_run=dry_run, subresource=subresource)

    def patch(
        self, rt: ResourceType, namespace: str, name: str, content_type: str, body: Any,
        manager: str, *, force: bool = False, dry_run: bool = False, subresource: str = "",
        fields: FieldCheck | None = None, copy: bool = True,
    ) -> dict[str, Any]:
        """Any PATCH flavour; an apply patch creates the object if it does not exist.
        ``copy=False``: answer with the stored object itself (read-only, see `commit`)."""
        if content_type in (patch.APPLY, patch.APPLY_CBOR):
            return self.apply(rt, namespace, name, body, manager, force=force, dry_run=dry_run,
                              subresource=subresource, copy=copy)  # fmt: skip
        with self.store.lock:
            old = self.get(rt, namespace, name)
            new = patch.apply_patch(content_type, old, body)
            if not isinstance(new, dict):
                raise errors.bad_request("the patch did not produce an object")
            (fields or FieldCheck()).check(rt.kind, rt.version, new)
            wanted = metadata(new).get("resourceVersion")
            if wanted and wanted != metadata(old)["resourceVersion"]:
                raise errors.stale(rt, name)
            self._check_identity(rt, new, namespace, name)
            return self.commit(rt, old, new, manager, dry_run=dry_run, subresource=subresource,
                               copy=copy)

    def apply(
        self, rt: ResourceType, namespace: str, name: str, body: Any, manager: str, *,
        force: bool = False, dry_run: bool = False, subresource: str = "", copy: bool = True,
    ) -> dict[str, Any]:
        if not manager:
            raise ApiError(422, "Invalid", 'PatchOptions.meta.k8s.io "" is invalid: fieldManager:'
                           " Required value: is required for apply patch")  # fmt: skip
        config = self._body(rt, namespace, body, name)
        if not config.get("apiVersion") or not config.get("kind"):
            raise errors.bad_request("apiVersion and kind must be set in an apply patch")
        schemas.check_apply(config, namespace, name)
        with self.store.lock:
            old = self.store.peek(rt, namespace, name)  # only read: the merge copies it
            if old is None:
                self._require_namespace(rt, namespace)
            has_status = "status" in rt.subresources and subresource != "status"
            merged = apply.server_side_apply(old, config, manager, force=force,
                                             has_status=has_status)  # fmt: skip
            return self.commit(rt, old, merged, manager, dry_run=dry_run,
                               subresource=subresource, applied=True, copy=copy)  # fmt: skip

    def commit(
        self, rt: ResourceType, old: dict[str, Any] | None, new: dict[str, Any], manager: str, *,
        dry_run: bool = False, subresource: str = "", applied: bool = False,
        copy: bool = True,
    ) -> dict[str, Any]:
        """Finish and store a write whose new state is `new` (old is None for a create).

        The stored object is returned as a copy; ``copy=False`` (the simulated controllers,
        which only read it) returns the stored object itself.
        """
        if rt.namespaced != bool(namespace_of(new)):
            raise errors.bad_request(f"{rt.kind} {name_of(new)!r}: namespace is "
                                     f"{'required' if rt.namespaced else 'not allowed'}")
        has_status = "status" in rt.subresources
        if rt.kind == certificates.KIND and old is not None:
            # Spec fixed at creation; conditions through /approval, the rest via /status.
            new = certificates.prepare_update(old, new, subresource)
        elif subresource == "status" and old is not None:
            # A status write changes status only: the rest comes from the stored object.
            status, fields = new.get("status"), metadata(new).get("managedFields")
            new = clone(old)
            new.pop("status", None)
            if status is not None:
                new["status"] = clone(status)
            if applied and fields:
                metadata(new)["managedFields"] = clone(fields)
        else:
            new = clone(new)
            if has_status:  # the main resource never writes status; a new object starts empty
                new["status"] = clone(old.get("status", {})) if old is not None else {}
        new["apiVersion"], new["kind"] = rt.group_version, rt.kind
        meta = metadata(new)
        if old is not None:
            for key in ("uid", "creationTimestamp", "generation", "deletionTimestamp"):
                if key in metadata(old):
                    meta[key] = metadata(old)[key]
                else:
                    meta.pop(key, None)
        else:
            for key in ("uid", "resourceVersion", "generation", "deletionTimestamp"):
                meta.pop(key, None)
        defaults.default(rt, new)
        if subresource != "status":
            defaults.validate(rt, new, old)
        self._allocate(rt, new, old)
        if rt.has_generation:
            generation = int(metadata(old).get("generation", 0)) if old else 0
            changed = old is None or _spec_part(old) != _spec_part(new)
            meta["generation"] = generation + 1 if changed else generation
        if not applied:
            apply.record_update(old, new, manager, rt.group_version, subresource=subresource,
                                has_status=has_status)  # fmt: skip
        if old is not None and _comparable(old) == _comparable(new):
            return clone(old) if copy else old  # `old` may be the stored object
        if dry_run:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", timestamp())
            return new
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            # The last finalizer removed from an object being deleted: the API server
            # deletes it now (Kubernetes docs, concepts/overview/working-with-objects/
            # finalizers: "When the finalizers field is emptied, ... the object is deleted").
            self.store.put(rt, new, owned=True)
            return self._remove(rt, new, "Background")
        return self.store.put(rt, new, owned=True, copy=copy)  # `new` is this write's own

    def _body(
        self, rt: ResourceType, namespace: str, body: Any, name: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON or YAML object")
        obj = clone(body)
        defaults.reject_unknown_kind(rt, obj)
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if rt.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise errors.bad_request("the namespace of the provided object does not match "
                                         "the namespace sent on the request")  # fmt: skip
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if name is not None:
            meta.setdefault("name", name)
        self._check_identity(rt, obj, namespace, name)
        return obj

    @staticmethod
    def _check_identity(rt: ResourceType, obj: Mapping[str, Any], namespace: str,
                        name: str | None) -> None:  # fmt: skip
        if name is not None and name_of(obj) != name:
            raise errors.bad_request(f"the name of the object ({name_of(obj)}) does not match "
                                     f"the name on the URL ({name})")  # fmt: skip
        if rt.namespaced and namespace_of(obj) not in ("", namespace):
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")  # fmt: skip

    def _allocate(self, rt: ResourceType, new: dict[str, Any], old: dict[str, Any] | None) -> None:
        """Cluster IPs and node ports, kept across updates that do not mention them."""
        if rt.kind != "Service":
            return
        spec, old_spec = new.setdefault("spec", {}), (old or {}).get("spec", {})
        if not spec.get("clusterIP") and spec.get("type") != "ExternalName":
            spec["clusterIP"] = old_spec.get("clusterIP") or next(self._cluster_ips)
        spec.setdefault("clusterIPs", [spec["clusterIP"]] if spec.get("clusterIP") else [])
        if spec.get("type") in ("NodePort", "LoadBalancer"):
            old_ports = {(p.get("port"), p.get("protocol")): p for p in old_spec.get("ports", [])}
            for port in spec.get("ports", []):
                previous = old_ports.get((port.get("port"), port.get("protocol")), {})
                port.setdefault("nodePort", previous.get("nodePort") or next(self._node_ports))
        new.setdefault("status", {}).setdefault("loadBalancer", {})

    # ------------------------------------------------------------------ delete

    def delete(
        self, rt: ResourceType, namespace: str, name: str, *, propagation: str = "Background",
        dry_run: bool = False, preconditions: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Delete at once (no graceful period); dependents follow unless Orphan.

        An object with ``metadata.finalizers`` is not removed: the API server sets its
        ``deletionTimestamp`` and keeps it until an update empties the finalizers (Kubernetes
        docs, concepts/overview/working-with-objects/finalizers: the API server "marks the
        object for deletion by populating .metadata.deletionTimestamp" and "the object
        remains in a terminating state" until they are removed), as a pod in its graceful
        termination is still listed with a deletionTimestamp.
        """
        with self.store.lock:
            obj = self.get(rt, namespace, name)
            for key in ("uid", "resourceVersion"):
                wanted = (preconditions or {}).get(key)
                if wanted and wanted != metadata(obj).get(key):
                    raise errors.stale(rt, name)
            if dry_run:
                return obj
            if metadata(obj).get("finalizers"):
                if metadata(obj).get("deletionTimestamp"):
                    return obj
                marked = clone(obj)
                metadata(marked)["deletionTimestamp"] = timestamp()
                metadata(marked)["deletionGracePeriodSeconds"] = 0
                return self.store.put(rt, marked, owned=True)
            return self._remove(rt, obj, propagation)

    def _remove(self, rt: ResourceType, obj: dict[str, Any], propagation: str
                ) -> dict[str, Any]:
        """Take the object out of the store; dependents, a namespace's children, hooks."""
        name = name_of(obj)
        gone = self.store.remove(rt, namespace_of(obj), name) or obj
        self._collect(metadata(obj)["uid"], propagation)
        if rt.kind == "Namespace":
            for (_, ns, _), child in self.store.all_objects():
                child_rt = catalog.by_kind(child["apiVersion"], child["kind"])
                if ns == name and child_rt is not None:
                    self.store.remove(child_rt, ns, name_of(child))
        for hook in self.on_delete:
            hook(rt, gone)
        return gone

    def _collect(self, owner_uid: str, propagation: str) -> None:
        """The garbage collector: delete (or orphan) everything owned by `owner_uid`."""
        for child in self.store.dependents(owner_uid):
            child_rt = catalog.by_kind(child["apiVersion"], child["kind"])
            if child_rt is None:
                continue
            if propagation == "Orphan":
                refs = [r for r in metadata(child).get("ownerReferences", [])
                        if r.get("uid") != owner_uid]  # fmt: skip
                orphan = clone(child)
                metadata(orphan)["ownerReferences"] = refs
                if not refs:
                    metadata(orphan).pop("ownerReferences")
                self.commit(child_rt, child, orphan, "kube-controller-manager")
            else:
                self.delete(child_rt, namespace_of(child), name_of(child), propagation=propagation)

    def deleted_status(self, rt: ResourceType, obj: Mapping[str, Any]) -> dict[str, Any]:
        """The body of a successful DELETE for types that do not return the object."""
        details: dict[str, Any] = {"name": name_of(obj), "kind": rt.plural,
                                   "uid": metadata(obj).get("uid")}  # fmt: skip
        if rt.group:
            details["group"] = rt.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}  # fmt: skip

    # ------------------------------------------------------------------- scale

    def scale(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        """The autoscaling/v1 Scale view of a Deployment/StatefulSet/ReplicaSet."""
        obj = self.get(rt, namespace, name)
        meta = metadata(obj)
        selector = selectors.to_string(selectors.from_object(obj["spec"].get("selector")))
        return {
            "kind": "Scale", "apiVersion": "autoscaling/v1",
            "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion",
                                              "creationTimestamp") if k in meta},
            "spec": {"replicas": obj["spec"].get("replicas", 0)},
            "status": {"replicas": obj.get("status", {}).get("replicas", 0), "selector": selector},
        }  # fmt: skip

    def update_scale(
        self, rt: ResourceType, namespace: str, name: str, content_type: str, body: Any,
        manager: str, *, dry_run: bool = False,
    ) -> dict[str, Any]:
        """PUT or PATCH of /scale: only spec.replicas is taken from the Scale."""
        with self.store.lock:
            current = self.scale(rt, namespace, name)
            wanted = body if content_type == "" else patch.apply_patch(content_type, current, body)
            if not isinstance(wanted, dict):
                raise errors.bad_request("a Scale object is required")
            replicas = (wanted.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f'Scale.autoscaling "{name}" is invalid: '
                               "spec.replicas: Invalid value: must be greater than or equal to 0")
            old = self.get(rt, namespace, name)
            new = clone(old)
            new["spec"]["replicas"] = replicas
            self.commit(rt, old, new, manager, dry_run=dry_run, subresource="scale")
            return self.scale(rt, namespace, name)


def continue_token(rv: int, last: tuple[str, str]) -> str:
    raw = json.dumps({"rv": rv, "after": list(last)}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def parse_continue(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return (str(data["after"][0]), str(data["after"][1]))
    except (ValueError, KeyError, IndexError, TypeError):
        raise errors.bad_request("continue key is not valid") from None
