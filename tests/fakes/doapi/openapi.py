"""Hold the fake's traffic to DigitalOcean's published OpenAPI description.

`OpenApi().check(method, path, query, body, status, response)` returns the ways one
exchange disagrees with the description copied into tests/data/digitalocean-openapi/
(public repository digitalocean/openapi; commit and paths in tests/data/README.md):

* the path and method must be an operation the description lists (and the copy holds);
* path and query parameters it describes must match their schemas (query strings are
  coerced to the described type first, as a server would); required ones must be there;
* a JSON request body must match the operation's `requestBody` schema;
* the status must be one the operation describes (or its `default`), and the response body
  must match that response's schema (no body where none is described, and the reverse).

The description is many YAML files joined by relative `$ref`s. Inlining it all explodes,
so nothing is inlined: each file is loaded when a reference first reaches it (the
`referencing` registry's `retrieve`, cached), and validators are compiled once per
operation and status. OpenAPI 3.0 schemas are JSON Schema draft 4 plus a few keywords;
`nullable: true` is rewritten to allow null (OpenAPI 3.0.3, "Schema Object", `nullable`).
`$ref` siblings are ignored, as both OpenAPI 3.0 and draft 4 say.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin

import yaml
from jsonschema import Draft4Validator, validators
from referencing import Registry, Resource, Specification

SPEC_DIR = Path(__file__).resolve().parents[2] / "data" / "digitalocean-openapi"
ROOT_FILE = "DigitalOcean-public.v2.yaml"
BASE = "https://openapi.digitalocean.invalid/specification/"  # a name only, never fetched
_METHODS = ("get", "put", "post", "delete", "patch")


def _discriminator(validator: Any, discriminator: Any, instance: Any,
                   schema: Mapping[str, Any]) -> Any:
    """OpenAPI 3.0 `discriminator` beside `anyOf`/`oneOf`: the mapped schema must hold.

    Plain `anyOf` would let `{"type": "assign", "droplet_id": "12"}` pass as an unassign;
    the discriminator says the `type` value picks the one schema that applies. Where it
    sits on a base schema (inside `allOf`) it only names subtypes, so it is left alone.
    """
    if not isinstance(instance, dict) or not ({"anyOf", "oneOf"} & set(schema)):
        return
    mapping = discriminator.get("mapping") or {}
    ref = mapping.get(instance.get(discriminator.get("propertyName")))
    if isinstance(ref, str):
        yield from validator.descend(instance, {"$ref": ref})


_Validator: Any = validators.extend(Draft4Validator, {"discriminator": _discriminator})


@dataclass(frozen=True)
class Violation:
    """One disagreement: which exchange, which side, where in the body, and why."""

    method: str
    path: str
    status: int | None
    side: str  # "request" or "response"
    where: str  # JSON path inside the body or the parameter's name ("" for the whole)
    message: str

    def __str__(self) -> str:
        at = f" at {self.where}" if self.where else ""
        status = f" -> {self.status}" if self.status is not None else ""
        return f"{self.method} {self.path}{status}: {self.side}{at}: {self.message}"


def _allow_null(node: Any) -> Any:
    """OpenAPI 3.0 `nullable: true` -> a JSON Schema that also accepts null (in place)."""
    if isinstance(node, list):
        for item in node:
            _allow_null(item)
    elif isinstance(node, dict):
        for value in node.values():
            _allow_null(value)
        if node.get("nullable") is True:
            node.pop("nullable")
            kind = node.get("type")
            if isinstance(kind, str) and "$ref" not in node:
                node["type"] = [kind, "null"]
                if isinstance(node.get("enum"), list) and None not in node["enum"]:
                    node["enum"] = [*node["enum"], None]
            else:  # a $ref or a composition: null, or whatever the rest allows
                rest = dict(node)
                node.clear()
                node["anyOf"] = [{"type": "null"}, rest]
    return node


class _Yaml12Booleans(yaml.SafeLoader):
    """OpenAPI documents are YAML 1.2, where only true/false are booleans; PyYAML reads 1.1,
    where ``off``, ``on``, ``yes`` and ``no`` are too: the droplet model's status enum
    (``new, active, off, archive``) would read ``off`` as False."""


_Yaml12Booleans.yaml_implicit_resolvers = {
    key: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for key, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}
_Yaml12Booleans.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"))


@functools.cache
def _load(relative: str) -> Any:
    """One YAML file of the copy, nullable rewritten (parsed once per process)."""
    path = (SPEC_DIR / relative).resolve()
    if SPEC_DIR.resolve() not in path.parents:
        raise LookupError(f"{relative} is outside the copied description")
    if not path.is_file():
        raise LookupError(f"{relative} is not in tests/data/digitalocean-openapi/")
    return _allow_null(yaml.load(path.read_text(encoding="utf-8"), Loader=_Yaml12Booleans))


# The description's files are operations, responses and schemas mixed, with no `id`s in
# them: the registry must not crawl them for embedded ids as it would a JSON Schema (it
# trips over non-schema values), so files are resources of this inert specification.
_SPECIFICATION: Any = Specification  # its attrs-made __init__ is invisible to mypy
_FILES: Specification[Any] = _SPECIFICATION(
    name="digitalocean-openapi-file",
    id_of=lambda contents: None,
    subresources_of=lambda contents: [],
    maybe_in_subresource=lambda segments, resolver, subresource: resolver,
    anchors_in=lambda specification, contents: [],
)


def _retrieve(uri: str) -> Resource[Any]:
    if not uri.startswith(BASE):
        raise LookupError(f"{uri}: only the copied description is available")
    return _FILES.create_resource(_load(uri[len(BASE):]))


def _pointer(document: Any, fragment: str) -> Any:
    for part in [p for p in fragment.split("/") if p]:
        key = part.replace("~1", "/").replace("~0", "~")
        document = document[int(key)] if isinstance(document, list) else document[key]
    return document


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class _Located:
    """A node of the description and the absolute URI it sits at."""

    uri: str
    node: Any

    def at(self, *keys: str) -> _Located:
        uri = self.uri + ("" if "#" in self.uri else "#") + "".join("/" + _escape(k) for k in keys)
        node = self.node
        for key in keys:
            node = node[int(key)] if isinstance(node, list) else node[key]
        return _Located(uri, node)


def _deref(uri: str) -> _Located:
    """Follow `$ref`s of non-schema objects (operations, responses, parameters)."""
    for _ in range(20):
        file_uri, fragment = urldefrag(uri)
        node = _pointer(_load(file_uri[len(BASE):]), fragment)
        if isinstance(node, Mapping) and isinstance(node.get("$ref"), str):
            uri = urljoin(uri, node["$ref"])
            continue
        return _Located(uri if "#" in uri else uri + "#", node)
    raise LookupError(f"{uri}: $ref chain too long")


@dataclass
class _Param:
    name: str
    where: str  # "path" or "query"
    required: bool
    kind: Any  # the schema's "type" (after the nullable rewrite)
    validator: Draft4Validator | None


@dataclass
class _Operation:
    template: str
    pattern: re.Pattern[str]
    located: _Located
    params: list[_Param]
    body: Draft4Validator | None
    body_required: bool
    responses: dict[str, Draft4Validator | None]  # status or "default" -> body validator


class OpenApi:
    """The description's operations, compiled on first use; `check()` one exchange."""

    def __init__(self) -> None:
        self._registry: Registry[Any] = Registry(retrieve=_retrieve)  # type: ignore[call-arg]
        root = _load(ROOT_FILE)
        self._templates: list[tuple[str, re.Pattern[str], str, str]] = []
        for template, item in (root.get("paths") or {}).items():
            pattern = re.compile(re.sub(r"\\\{[^}/]+\\\}", "[^/]+", re.escape(template)))
            for method in _METHODS:
                if isinstance(item.get(method), Mapping):
                    uri = f"{BASE}{ROOT_FILE}#/paths/{_escape(template)}/{method}"
                    self._templates.append((method.upper(), pattern, template, uri))
        # Literal segments win over parameters: /v2/droplets/actions before /{droplet_id}.
        self._templates.sort(key=lambda t: (t[2].count("{"), -len(t[2])))
        self._operations: dict[str, _Operation] = {}

    def _validator(self, uri: str) -> Draft4Validator:
        validator: Draft4Validator = _Validator(
            {"$ref": uri}, registry=self._registry, format_checker=Draft4Validator.FORMAT_CHECKER)
        return validator

    def _operation(self, method: str, path: str) -> _Operation | None:
        for verb, pattern, template, uri in self._templates:
            if verb == method and pattern.fullmatch(path):
                if uri not in self._operations:
                    self._operations[uri] = self._compile(template, uri)
                return self._operations[uri]
        return None

    def operation_of(self, method: str, path: str) -> str | None:
        """The described path template `method path` goes to (None: not described)."""
        for verb, pattern, template, _ in self._templates:
            if verb == method.upper() and pattern.fullmatch(path):
                return template
        return None

    def _compile(self, template: str, uri: str) -> _Operation:
        op = _deref(uri)
        pattern = re.compile(re.sub(r"\\\{([^}/]+)\\\}", r"(?P<\1>[^/]+)", re.escape(template)))
        params = []
        for i, _ in enumerate(op.node.get("parameters") or []):
            param = _deref(op.at("parameters", str(i)).uri)
            schema = param.node.get("schema")
            params.append(_Param(
                name=param.node["name"], where=param.node["in"],
                required=bool(param.node.get("required")),
                kind=(schema or {}).get("type"),
                validator=self._validator(param.at("schema").uri) if schema else None,
            ))  # fmt: skip
        body, body_required = None, False
        if "requestBody" in op.node:
            request = _deref(op.at("requestBody").uri)
            body_required = bool(request.node.get("required"))
            if "application/json" in (request.node.get("content") or {}):
                body = self._validator(request.at("content", "application/json", "schema").uri)
        responses: dict[str, Draft4Validator | None] = {}
        for status in op.node.get("responses") or {}:
            response = _deref(op.at("responses", str(status)).uri)
            content = response.node.get("content") or {}
            media = next((m for m in content if m.startswith("application/json")), None)
            responses[str(status)] = (
                self._validator(response.at("content", media, "schema").uri)
                if media and "schema" in content[media] else None
            )
        return _Operation(template, pattern, op, params, body, body_required, responses)

    def check(self, method: str, path: str, query: Mapping[str, str], body: Any,
              status: int, response: Any) -> list[Violation]:
        """Everything about one request and its response that the description rejects."""
        method = method.upper()
        found: list[Violation] = []

        def add(side: str, where: str, message: str, at: int | None = status) -> None:
            found.append(Violation(method, path, at, side, where, message))

        try:
            op = self._operation(method, path)
        except LookupError as missing:  # described upstream, but its files were not copied
            add("request", "", f"operation not in the copied description: {missing}", None)
            return found
        if op is None:
            add("request", "", "no such operation in DigitalOcean's API description", None)
            return found
        match = op.pattern.fullmatch(path)
        values = {"path": match.groupdict() if match else {}, "query": dict(query)}
        for param in op.params:
            if param.where not in values:
                continue  # headers and cookies: not modelled
            raw = values[param.where].get(param.name)
            if raw is None:
                if param.required:
                    add("request", param.name, f"required {param.where} parameter missing")
                continue
            if param.validator is not None:
                for err in param.validator.iter_errors(_coerce(raw, param.kind)):
                    add("request", param.name, f"{param.where} parameter: {err.message}")
        if body is None:
            if op.body_required:
                add("request", "", "a JSON body is required")
        elif op.body is not None:
            for err in op.body.iter_errors(body):
                add("request", err.json_path, err.message)
        key = str(status) if str(status) in op.responses else "default"
        if key not in op.responses:
            add("response", "", f"status {status} is not described for {op.template}")
            return found
        validator = op.responses[key]
        if validator is None:
            if response is not None:
                add("response", "", f"a body where the description has none ({key})")
        elif response is None:
            add("response", "", f"no body where the description has one ({key})")
        else:
            for err in validator.iter_errors(response):
                add("response", err.json_path, err.message)
        return found


def _coerce(raw: str, kind: Any) -> Any:
    """A query or path string as the described type (left a string when it is not one)."""
    kinds = kind if isinstance(kind, list) else [kind]
    try:
        if "integer" in kinds:
            return int(raw)
        if "number" in kinds:
            return float(raw)
    except ValueError:
        return raw
    if "boolean" in kinds and raw in ("true", "false"):
        return raw == "true"
    return raw


@functools.lru_cache(maxsize=1)
def shared() -> OpenApi:
    """One `OpenApi` per process: compiled validators are reused by every fake."""
    return OpenApi()
