"""Discovery and OpenAPI documents, generated from the catalog.

Legacy discovery only (/api, /api/v1, /apis, /apis/<g>/<v>): kubectl asks for the
aggregated form (`Accept: application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,
application/json`) and falls back to the legacy documents when the answer's Content-Type is
plain application/json.

OpenAPI v3 is served in its smallest useful form. `kubectl apply/create` validate by
default (`--validate=strict`): kubectl looks, in /openapi/v3/<group-version>, for a PATCH
operation tagged with the kind's `x-kubernetes-group-version-kind` that declares the
`fieldValidation` query parameter; when found it leaves validation to the server
(`?fieldValidation=Strict`). Without that document kubectl fails ("failed to download
openapi") unless run with --validate=false. No schemas are served, so client-side
validation, `kubectl explain` and client-side strategic merge are not available;
/openapi/v2 answers 404 (kubectl only needs it when v3 is missing).
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .catalog import ALL_VERBS, RESOURCES, SUBRESOURCE_KIND, SUBRESOURCE_VERBS, group_versions


def version(git_version: str) -> dict[str, Any]:
    """GET /version."""
    major, minor = git_version.lstrip("v").split(".")[:2]
    return {
        "major": major, "minor": minor, "gitVersion": git_version,
        "gitCommit": "0000000000000000000000000000000000000000", "gitTreeState": "clean",
        "buildDate": "2025-01-01T00:00:00Z", "goVersion": "go1.24.0", "compiler": "gc",
        "platform": "linux/amd64",
    }  # fmt: skip


def api_versions(server_address: str) -> dict[str, Any]:
    """GET /api."""
    return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [
        {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}  # fmt: skip


def api_group_list(minor: int | None = None) -> dict[str, Any]:
    """GET /apis (every group but the core one; with ``minor``, as that minor serves it)."""
    groups: dict[str, list[str]] = {}
    for group, ver in group_versions(minor):
        if group:
            groups.setdefault(group, []).append(ver)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": group, "versions": [{"groupVersion": f"{group}/{v}", "version": v}
                                     for v in versions],
         "preferredVersion": {"groupVersion": f"{group}/{versions[0]}", "version": versions[0]}}
        for group, versions in groups.items()]}  # fmt: skip


def api_group(group: str, minor: int | None = None) -> dict[str, Any] | None:
    """GET /apis/<group>."""
    for entry in api_group_list(minor)["groups"]:
        if entry["name"] == group:
            return {"kind": "APIGroup", "apiVersion": "v1", **entry}
    return None


def resource_list(group: str, ver: str, minor: int | None = None) -> dict[str, Any] | None:
    """GET /api/v1 or /apis/<group>/<version>: an APIResourceList, or None if unknown."""
    resources: list[dict[str, Any]] = []
    for rt in RESOURCES:
        if (rt.group, rt.version) != (group, ver) or (minor is not None and not rt.served(minor)):
            continue
        entry: dict[str, Any] = {
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced,
            "kind": rt.kind, "verbs": list(ALL_VERBS),
            "storageVersionHash": hashlib.sha256(rt.group_resource.encode()).hexdigest()[:12],
        }  # fmt: skip
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in rt.subresources:
            sub_group, sub_version, sub_kind = SUBRESOURCE_KIND.get(sub, (None, None, rt.kind))
            sub_entry: dict[str, Any] = {"name": f"{rt.plural}/{sub}", "singularName": "",
                                         "namespaced": rt.namespaced, "kind": sub_kind,
                                         "verbs": list(SUBRESOURCE_VERBS[sub])}  # fmt: skip
            if sub_group is not None and (sub_group, sub_version) != (rt.group, rt.version):
                sub_entry |= {"group": sub_group, "version": sub_version}
            resources.append(sub_entry)
    if not resources:
        return None
    group_version = f"{group}/{ver}" if group else ver
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version,
            "resources": resources}  # fmt: skip


def _gv_path(group: str, ver: str) -> str:
    return f"apis/{group}/{ver}" if group else f"api/{ver}"


def openapi_v3_gv(group: str, ver: str, minor: int | None = None) -> dict[str, Any] | None:
    """GET /openapi/v3/<api|apis/group>/<version>: paths with PATCH operations only."""
    paths: dict[str, Any] = {}
    for rt in RESOURCES:
        if (rt.group, rt.version) != (group, ver) or (minor is not None and not rt.served(minor)):
            continue
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        path = f"/{_gv_path(group, ver)}{scope}/{rt.plural}/{{name}}"
        paths[path] = {"patch": {
            "operationId": f"patch{rt.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": group, "version": ver, "kind": rt.kind},
            "parameters": [
                {"name": p, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
                for p in ("dryRun", "fieldManager", "fieldValidation", "force")
            ],
            "responses": {"200": {"description": "OK"}},
        }}  # fmt: skip
    if not paths:
        return None
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": "unversioned"},
            "paths": paths, "components": {"schemas": {}}}  # fmt: skip


def openapi_v3_root(minor: int | None = None) -> dict[str, Any]:
    """GET /openapi/v3: where each group-version document is (hash pins the cache)."""
    paths = {}
    for group, ver in group_versions(minor):
        doc = json.dumps(openapi_v3_gv(group, ver, minor), sort_keys=True).encode()
        digest = hashlib.sha512(doc).hexdigest()[:128].upper()
        path = _gv_path(group, ver)
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}
