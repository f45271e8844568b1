"""Unknown-field detection with the published Kubernetes JSON schemas.

A real apiserver knows every field of every built-in type, and a misspelt field in a
manifest is a classic deploy bug, so the fake should not silently store it:

* server-side apply rejects it, whatever `fieldValidation` says (HTTP 500, "failed to
  create typed patch object (...): .spec.replicass: field not declared in schema");
* other writes follow `?fieldValidation=`: Strict (what kubectl sends) answers 400
  "strict decoding error: unknown field ..."; Warn (the default, e.g. the Python client)
  and Ignore drop the field, Warn adding a `Warning: 299` response header.

The schemas come from the `kubernetes-validate` package (a test dependency of the
project); without it, no field is ever reported unknown.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import errors
from . import fieldpaths as fp

Location = list[str | int]  # keys and list indexes from the object's root


@functools.cache
def _validator(api_version: str, kind: str) -> Any:
    """A Draft 2020-12 validator for the strict schema of this kind, or None."""
    try:
        import jsonschema
        import kubernetes_validate
        from referencing import Registry, Resource
    except ImportError:  # pragma: no cover - the package is in the test extras
        return None
    version = kubernetes_validate.latest_version()
    folder = importlib.resources.files("kubernetes_validate").joinpath(
        f"kubernetes-json-schema/v{version}-local-strict")
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema_file = folder.joinpath(f"{kind.lower()}-{group_version}.json")
    if not schema_file.is_file():
        return None
    schema = json.loads(schema_file.read_text())
    definitions = json.loads(folder.joinpath("_definitions.json").read_text())
    registry: Any = Resource.from_contents(schema) @ Registry()
    registry = Resource.from_contents(definitions) @ registry
    return jsonschema.Draft202012Validator(schema, registry=registry)


def _collect(error: Any, out: list[Location]) -> None:
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        known = set(error.schema.get("properties", {}))
        for name in sorted(set(error.instance) - known):
            out.append([*error.absolute_path, name])
    for child in error.context or ():
        _collect(child, out)


def unknown_fields(obj: Mapping[str, Any]) -> list[Location]:
    """Where `obj` has fields its type does not declare (empty if no schema is known)."""
    api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
    if _validator(api_version, kind) is None:
        return []
    # Whether a field is declared depends on where it sits and on the types around it, not
    # on the values: objects of one shape (a hundred apps from one template) are checked
    # once. Full validation costs milliseconds an object, the fake's largest cost a request.
    try:
        return [list(loc) for loc in _unknown_in_shape(api_version, kind, _shape(obj))]
    except KeyError:  # a scalar type JSON has not (a YAML date): check the object itself
        return _unknown_in(_validator(api_version, kind), obj)


def _shape(value: Any) -> Any:
    """The object with every scalar replaced by its type: hashable, and equal for objects
    that differ only in their values."""
    if isinstance(value, dict):
        return ("{", tuple((k, _shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ("[", tuple(_shape(v) for v in value))
    return type(value).__name__


def _unshape(shape: Any) -> Any:
    """An object of that shape (every scalar a stand-in of its type), for the validator."""
    if isinstance(shape, tuple) and shape[0] == "{":
        return {k: _unshape(v) for k, v in shape[1]}
    if isinstance(shape, tuple):
        return [_unshape(v) for v in shape[1]]
    return _STAND_INS[shape]


_STAND_INS: dict[str, Any] = {"str": "x", "int": 1, "float": 1.5, "bool": True,
                              "NoneType": None}


def forget_shapes() -> None:
    """Drop what was remembered about objects seen (benchmarks: each side starts cold)."""
    from . import fieldpaths

    _unknown_in_shape.cache_clear()
    fieldpaths.forget_keys()


@functools.lru_cache(maxsize=4096)
def _unknown_in_shape(api_version: str, kind: str, shape: Any) -> tuple[tuple[Any, ...], ...]:
    found = _unknown_in(_validator(api_version, kind), _unshape(shape))
    return tuple(tuple(loc) for loc in found)


def _unknown_in(validator: Any, obj: Any) -> list[Location]:
    found: list[Location] = []
    for error in validator.iter_errors(obj):
        _collect(error, found)
    unique = {json.dumps(loc, default=str): loc for loc in found}
    return list(unique.values())


def dotted(location: Location) -> str:
    """`spec.template.spec.containers[0].imagee`: the strict-decoding wording."""
    out = ""
    for part in location:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out


def typed(obj: Mapping[str, Any], location: Location) -> str:
    """`.spec.template.spec.containers[name="app"].imagee`: the server-side apply wording."""
    path: fp.Path = ()
    node: Any = obj
    for part in location:
        if isinstance(part, int) and isinstance(node, list):
            keys = fp.list_keys(path, node)
            element = fp.key_of(node[part], keys) if keys else f"{part}"
            path, node = (*path, element), node[part]
        else:
            path = (*path, f"f:{part}")
            node = node.get(part) if isinstance(node, dict) else None
    return fp.to_string(path)


def drop(obj: Any, location: Location) -> None:
    """Remove the field at `location` (what decoding does to unknown fields)."""
    node = obj
    for part in location[:-1]:
        node = node[part]
    if isinstance(node, dict):
        node.pop(location[-1], None)


@dataclass
class FieldCheck:
    """How one request treats unknown fields (`?fieldValidation=`), and what it warns."""

    mode: str = "Warn"  # Strict, Warn or Ignore
    warnings: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.mode not in ("Strict", "Warn", "Ignore"):
            raise errors.bad_request(f'fieldValidation: Unsupported value: "{self.mode}": '
                                     'supported values: "Ignore", "Strict", "Warn"')

    def check(self, kind: str, version: str, obj: dict[str, Any]) -> None:
        """Raise (Strict), or drop unknown fields from `obj` and maybe warn."""
        unknown = unknown_fields(obj)
        if not unknown:
            return
        names = [f'unknown field "{dotted(loc)}"' for loc in unknown]
        if self.mode == "Strict":
            raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a '
                                     f"{kind}: strict decoding error: {', '.join(names)}")
        for loc in sorted(unknown, key=len, reverse=True):
            drop(obj, loc)
        if self.mode == "Warn":
            self.warnings.extend(names)


def check_apply(config: Mapping[str, Any], namespace: str, name: str) -> None:
    """Server-side apply needs a fully typed configuration: unknown fields and duplicate
    list keys fail with the apiserver's (500) "failed to create typed patch object"."""
    problems = [f"{typed(config, loc)}: field not declared in schema"
                for loc in unknown_fields(config)]  # fmt: skip
    problems += [f"{fp.to_string(path)}: duplicate entries for key {fp.to_string((key,))}"
                 for path, key in fp.duplicate_keys(config)]  # fmt: skip
    if not problems:
        return
    api_version = str(config.get("apiVersion", ""))
    gv = api_version if "/" in api_version else f"/{api_version}"
    where = f"({namespace}/{name}; {gv}, Kind={config.get('kind')})"
    text = problems[0] if len(problems) == 1 else "errors:\n  " + "\n  ".join(problems)
    raise errors.ApiError(500, "InternalError", f"failed to create typed patch object {where}: "
                          f"{text}")  # fmt: skip
