"""URL routing and verbs: turns a parsed HTTP request into registry calls.

Paths understood (anything else is a 404 Status):

    /version  /healthz  /livez  /readyz[/...]  /openapi/v3[/...]  /openapi/v2 (404)
    /metrics (only the deprecated-API gauge, and only once a test sets its series; 404 before)
    /api  /api/v1  /apis  /apis/<group>  /apis/<group>/<version>
    /api/v1/[watch/][namespaces/<ns>/]<plural>[/<name>[/<subresource>]]
    /apis/<group>/<version>/[watch/][namespaces/<ns>/]<plural>[/<name>[/<subresource>]]

Verbs follow the apiserver: GET one/LIST/WATCH (`?watch=1`), POST create, PUT update,
PATCH (merge, strategic, JSON patch, apply), DELETE, DELETE on a collection
(deletecollection). Writes accept `?dryRun=All` and `?fieldManager=`; without one the
manager is the User-Agent up to its first "/" (e.g. "OpenAPI-Generator" for the Python
client), as on the real server.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import (
    catalog,
    certificates,
    discovery,
    disruption,
    errors,
    patch,
    tables,
    tokens,
    watch,
)
from .catalog import ResourceType
from .errors import ApiError
from .kubelet import Kubelet
from .meta import name_of, namespace_of
from .registry import Registry, continue_token, parse_body, parse_continue
from .schemas import FieldCheck
from .selectors import object_selector


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""
    user: str = ""  # the authenticated requester (the server sets it)

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    status: int = 200
    body: Any = None  # JSON-able, or str for text/plain
    content_type: str = "application/json"
    stream: Iterator[dict[str, Any] | None] | None = None  # watch events (None: idle tick)
    headers: dict[str, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # sent as `Warning: 299 - "..."`


@dataclass
class Target:
    """What a resource URL points at."""

    rt: ResourceType
    namespace: str
    name: str = ""
    subresource: str = ""
    watch: bool = False

    def verb(self, method: str, watching: bool) -> str:
        if method == "GET":
            return "get" if self.name else "watch" if watching else "list"
        return {"POST": "create", "PUT": "update", "PATCH": "patch",
                "DELETE": "delete" if self.name else "deletecollection"}.get(method, "")


def parse_target(path: str) -> Target | None:
    """The resource a /api or /apis path addresses, or None for non-resource paths."""
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    watching = bool(rest) and rest[0] == "watch"
    if watching:
        rest = rest[1:]
    namespace = ""
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3:
        return None
    rt = catalog.lookup(group, version, rest[0])
    if rt is None or (namespace and not rt.namespaced):
        return None
    name = rest[1] if len(rest) > 1 else ""
    sub = rest[2] if len(rest) > 2 else ""
    if sub and sub not in rt.subresources:
        return None
    return Target(rt, namespace, name, sub, watching)


class Rest:
    """The request handlers; `kubelet` answers pod logs."""

    def __init__(self, registry: Registry, kubelet: Kubelet, git_version: str) -> None:
        self.registry = registry
        self.kubelet = kubelet
        self.git_version = git_version
        self.ready = True
        self.live = True
        self.server_address = "127.0.0.1:6443"
        self.timeline: disruption.Timeline | None = None  # evictions are noted there
        self.issued_tokens: list[tokens.Issued] = []  # TokenRequests answered (tokens.py)
        self.on_token: Any = None  # the server registers issued tokens as users
        # The apiserver_requested_deprecated_apis series /metrics shows (label dicts);
        # None: /metrics answers 404, as a server whose metrics are not reachable does.
        self.deprecated_api_series: list[dict[str, str]] | None = None

    def handle(self, req: Request, stopping: Any = None) -> Response:
        target = parse_target(req.path)
        if target is not None:
            if not target.rt.served(self.minor):
                raise errors.route_not_found()  # a removed version: as for no such API
            self._note_deprecated(target)
            return self.resource(req, target, stopping)
        return self.non_resource(req)

    def _note_deprecated(self, target: Any) -> None:
        """Any request through a version that a later minor removes sets the gauge's series,
        reads included: MonitorRequest sets deprecatedRequestGauge to 1 whenever the
        request's version is deprecated (kubernetes/kubernetes staging/src/k8s.io/apiserver/
        pkg/endpoints/metrics/metrics.go). Only once /metrics is served (a test set it)."""
        rt = target.rt
        if self.deprecated_api_series is None or rt.served_until is None:
            return
        labels = {"group": rt.group, "version": rt.version, "resource": rt.plural,
                  "subresource": target.subresource,
                  "removed_release": f"1.{rt.served_until + 1}"}
        if labels not in self.deprecated_api_series:
            self.deprecated_api_series.append(labels)

    @property
    def minor(self) -> int:
        """The minor of the version this server reports (1.31 serves what 1.32 removed)."""
        return int(self.git_version.lstrip("v").split(".")[1])

    # ------------------------------------------------------- non-resource paths

    def non_resource(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if req.method != "GET":
            raise errors.method_not_allowed()
        health = {"/healthz": self.live, "/livez": self.live, "/readyz": self.ready}
        for prefix, ok in health.items():
            if path == prefix or path.startswith(prefix + "/"):
                return self._health(prefix[1:], ok, "verbose" in req.query)
        if path == "/metrics":
            if self.deprecated_api_series is None:
                raise errors.route_not_found()
            return Response(200, deprecated_api_metrics(self.deprecated_api_series),
                            "text/plain; version=0.0.4; charset=utf-8")
        documents: dict[str, Any] = {
            "/version": lambda: discovery.version(self.git_version),
            "/api": lambda: discovery.api_versions(self.server_address),
            "/apis": lambda: discovery.api_group_list(self.minor),
            "/openapi/v3": lambda: discovery.openapi_v3_root(self.minor),
        }
        parts = [p for p in path.split("/") if p]
        if path in documents:
            return Response(body=documents[path]())
        body: Any = None
        if len(parts) == 2 and parts[0] == "api":
            body = discovery.resource_list("", parts[1], self.minor)
        elif len(parts) == 2 and parts[0] == "apis":
            body = discovery.api_group(parts[1], self.minor)
        elif len(parts) == 3 and parts[0] == "apis":
            body = discovery.resource_list(parts[1], parts[2], self.minor)
        elif parts[:3] == ["openapi", "v3", "api"] and len(parts) == 4:
            body = discovery.openapi_v3_gv("", parts[3], self.minor)
        elif parts[:3] == ["openapi", "v3", "apis"] and len(parts) == 5:
            body = discovery.openapi_v3_gv(parts[3], parts[4], self.minor)
        if body is None:
            raise errors.route_not_found()
        return Response(body=body)

    @staticmethod
    def _health(name: str, ok: bool, verbose: bool) -> Response:
        checks = ["ping", "log", "etcd", "informer-sync", "poststarthook/start-informers"]
        if ok:
            text = "".join(f"[+]{c} ok\n" for c in checks) + f"{name} check passed\n"
            return Response(200, text if verbose else "ok", "text/plain; charset=utf-8")
        text = "".join(f"[+]{c} ok\n" for c in checks if c != "etcd")
        text = "[-]etcd failed: reason withheld\n" + text + f"{name} check failed\n"
        return Response(500, text, "text/plain; charset=utf-8")

    # ------------------------------------------------------------ resources

    @staticmethod
    def manager(req: Request) -> str:
        explicit = req.query.get("fieldManager", "")
        if explicit or req.content_type in (patch.APPLY, patch.APPLY_CBOR):
            return explicit
        return req.headers.get("user-agent", "").split("/")[0][:128] or "unknown"

    @staticmethod
    def dry_run(req: Request, body: Any = None) -> bool:
        values = [req.query.get("dryRun", "")]
        if isinstance(body, dict):
            values += list(body.get("dryRun") or [])
        if any(v not in ("", "All") for v in values):
            raise errors.bad_request(f"unsupported dry run value(s): {values}")
        return "All" in values

    def resource(self, req: Request, t: Target, stopping: Any) -> Response:
        watching = t.watch or req.query.get("watch") in ("1", "true", "True")
        rt, ns = t.rt, t.namespace
        if req.method == "GET":
            if t.subresource == "log":
                return self._log(req, t)
            if t.subresource == "scale":
                return Response(body=self.registry.scale(rt, ns, t.name))
            if watching:
                return self._watch(req, t, stopping)
            if t.name:
                obj = self.registry.get(rt, ns, t.name)
                if _wants_metadata(req.headers.get("accept", ""), "PartialObjectMetadata"):
                    return Response(body=_metadata_only(obj))
                if tables.wants_table(req.headers.get("accept", "")):
                    return Response(body=tables.table(rt, [obj], obj["metadata"][
                        "resourceVersion"], req.query.get("includeObject", "Metadata")))
                return Response(body=obj)
            return self._list(req, t)
        body = parse_body(req.body, req.content_type)
        fields = FieldCheck(req.query.get("fieldValidation") or "Warn")
        if req.method == "POST" and t.subresource == "token":
            exists = self.registry.store.peek(rt, ns, t.name) is not None
            answer, issued = tokens.request_token(rt, ns, t.name, body, exists,
                                                  dt.datetime.now(dt.UTC))
            self.issued_tokens.append(issued)
            if self.on_token is not None:
                self.on_token(issued)
            return Response(201, answer)
        if req.method == "POST" and t.subresource == "eviction":
            return Response(201, disruption.evict(self.registry, ns, t.name, body,
                                                  self.dry_run(req), self.timeline))
        if req.method == "POST" and not t.name:
            if ns == "" and rt.namespaced:
                raise errors.method_not_allowed()
            if rt.kind == certificates.KIND and isinstance(body, dict):
                body = certificates.prepare_create(body, req.user)
            created = self.registry.create(rt, ns, body, self.manager(req),
                                           dry_run=self.dry_run(req), fields=fields)  # fmt: skip
            return Response(201, created, warnings=fields.warnings)
        if req.method == "PUT" and t.name:
            if t.subresource == "scale":
                return Response(body=self.registry.update_scale(
                    rt, ns, t.name, "", body, self.manager(req), dry_run=self.dry_run(req)))
            return Response(body=self.registry.replace(
                rt, ns, t.name, body, self.manager(req), dry_run=self.dry_run(req),
                subresource=t.subresource, fields=fields), warnings=fields.warnings)  # fmt: skip
        if req.method == "PATCH" and t.name:
            return self._patch(req, t, body, fields)
        if req.method == "DELETE":
            return self._delete(req, t, body)
        raise errors.method_not_allowed()

    def _patch(self, req: Request, t: Target, body: Any, fields: FieldCheck) -> Response:
        known = (patch.MERGE, patch.STRATEGIC, patch.JSON_PATCH, patch.APPLY)
        if req.content_type not in known:
            raise errors.unsupported_media_type(req.content_type)
        if t.subresource == "scale":
            return Response(body=self.registry.update_scale(
                t.rt, t.namespace, t.name, req.content_type, body, self.manager(req),
                dry_run=self.dry_run(req)))  # fmt: skip
        force = req.query.get("force") in ("true", "1", "True")
        existed = self.registry.store.peek(t.rt, t.namespace, t.name) is not None
        # The answer is only encoded: the stored object itself will do (copy=False).
        result = self.registry.patch(
            t.rt, t.namespace, t.name, req.content_type, body, self.manager(req), force=force,
            dry_run=self.dry_run(req), subresource=t.subresource, fields=fields,
            copy=False)  # fmt: skip
        return Response(200 if existed else 201, result, warnings=fields.warnings)

    def _delete(self, req: Request, t: Target, body: Any) -> Response:
        options = body if isinstance(body, dict) else {}
        propagation = req.query.get("propagationPolicy") or options.get(
            "propagationPolicy") or "Background"  # fmt: skip
        dry_run = self.dry_run(req, options)
        if not t.name:
            listed = self._select(req, t)
            for obj in listed:
                self.registry.delete(t.rt, namespace_of(obj), name_of(obj),
                                     propagation=propagation, dry_run=dry_run)  # fmt: skip
            rv = self.registry.store.resource_version
            return Response(body=self._list_body(t.rt, listed, rv))
        gone = self.registry.delete(t.rt, t.namespace, t.name, propagation=propagation,
                                    dry_run=dry_run, preconditions=options.get("preconditions"))
        if t.rt.kind in ("Pod", "Namespace"):
            return Response(body=gone)
        return Response(body=self.registry.deleted_status(t.rt, gone))

    # --------------------------------------------------------------- reading

    def _select(self, req: Request, t: Target) -> list[dict[str, Any]]:
        matches = object_selector(req.query.get("labelSelector", ""),
                                  req.query.get("fieldSelector", ""))  # fmt: skip
        return self.registry.store.objects(t.rt, t.namespace or None, matches)[0]

    @staticmethod
    def _list_body(rt: ResourceType, items: list[dict[str, Any]], rv: int,
                   meta: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
        # Typed lists from the real server carry kind/apiVersion on the list, not on items.
        bare = []
        for obj in items:
            item = copy.copy(obj)
            item.pop("kind", None)
            item.pop("apiVersion", None)
            bare.append(item)
        return {"kind": rt.list_kind, "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(rv), **(meta or {})}, "items": bare}

    def _list(self, req: Request, t: Target) -> Response:
        with self.registry.store.lock:
            items = self._select(req, t)
            rv = self.registry.store.resource_version
        meta: dict[str, Any] = {}
        if req.query.get("continue"):
            after = parse_continue(req.query["continue"])
            items = [o for o in items if (namespace_of(o), name_of(o)) > after]
        limit = int(req.query.get("limit") or 0)
        if 0 < limit < len(items):
            meta["continue"] = continue_token(rv, (namespace_of(items[limit - 1]),
                                                   name_of(items[limit - 1])))
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        accept = req.headers.get("accept", "")
        if tables.wants_table(accept):
            body = tables.table(t.rt, items, str(rv), req.query.get("includeObject", "Metadata"))
            body["metadata"].update(meta)
            return Response(body=body)
        if _wants_metadata(accept, "PartialObjectMetadataList"):
            return Response(body={
                "kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": str(rv), **meta},
                "items": [_metadata_only(obj) for obj in items]})  # fmt: skip
        return Response(body=self._list_body(t.rt, items, rv, meta))

    def _watch(self, req: Request, t: Target, stopping: Any) -> Response:
        rv = req.query.get("resourceVersion", "")
        if rv and not rv.isdigit():
            raise errors.bad_request(f"invalid resource version: {rv!r}")
        timeout = req.query.get("timeoutSeconds")
        field_selector = req.query.get("fieldSelector", "")
        if t.name:
            extra = f"metadata.name={t.name}"
            field_selector = f"{field_selector},{extra}" if field_selector else extra
        events = watch.stream(
            self.registry.store, t.rt, t.namespace or None,
            object_selector(req.query.get("labelSelector", ""), field_selector),
            resource_version=rv,
            send_initial_events=req.query.get("sendInitialEvents") == "true",
            allow_bookmarks=req.query.get("allowWatchBookmarks") == "true",
            timeout=float(timeout) if timeout else None, stopping=stopping,
        )  # fmt: skip
        return Response(stream=events)

    def _log(self, req: Request, t: Target) -> Response:
        tail = req.query.get("tailLines")
        text = self.kubelet.read_log(
            t.namespace, t.name, req.query.get("container", ""),
            int(tail) if tail and tail.lstrip("-").isdigit() else None,
            req.query.get("previous") == "true",
        )  # fmt: skip
        return Response(body=text, content_type="text/plain")


def _wants_metadata(accept: str, kind: str) -> bool:
    """`Accept: application/json;as=<kind>;g=meta.k8s.io;v=v1` first among the choices (a
    metadata-only answer, as client-go's metadata client asks for; protobuf is skipped)."""
    for choice in accept.split(","):
        params = dict(p.strip().partition("=")[::2] for p in choice.split(";")[1:])
        if choice.split(";")[0].strip() in ("application/json", "*/*"):
            return params.get("as") == kind and params.get("g") == "meta.k8s.io"
    return False


def _metadata_only(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj.get("metadata", {})}


DEPRECATED_API_LABELS = ("group", "version", "resource", "subresource", "removed_release")


def deprecated_api_metrics(series: list[dict[str, str]]) -> str:
    """The Prometheus text exposition of kube-apiserver's deprecated-API gauge.

    kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/metrics/metrics.go,
    ``deprecatedRequestGauge``: subsystem ``apiserver``, name ``requested_deprecated_apis``,
    a STABLE gauge with labels group, version, resource, subresource, removed_release, set
    to 1 for each deprecated group/version/resource the server has been asked for since it
    started. Labels are written sorted, as the Prometheus client writes them.
    """
    name = "apiserver_requested_deprecated_apis"
    lines = [f"# HELP {name} [STABLE] Gauge of deprecated APIs that have been requested, "
             "broken out by API group, version, resource, subresource, and removed_release.",
             f"# TYPE {name} gauge"]
    for labels in series:
        values = {key: labels.get(key, "") for key in DEPRECATED_API_LABELS}
        text = ",".join(f'{key}="{value}"' for key, value in sorted(values.items()))
        lines.append(f"{name}{{{text}}} 1")
    return "\n".join(lines) + "\n"


def encode(body: Any) -> bytes:
    if isinstance(body, str):
        return body.encode()
    return json.dumps(body, separators=(",", ":")).encode()


__all__ = ["ApiError", "Request", "Response", "Rest", "Target", "encode", "parse_target"]
