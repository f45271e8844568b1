"""The desired objects of a deploy: rendered manifests, the shared Secret, ApplySet labels.

Membership follows kubectl's ApplySet convention: a parent ConfigMap labelled with the set's
id lists the group-kinds it contains, and every member carries
``applyset.kubernetes.io/part-of``. Pruning therefore finds exactly what this environment
applied before, and kubectl's own ``--applyset`` understands the same set.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from provisioner.config.model import Environment
from provisioner.errors import UsageError
from provisioner.render.manifests import MANAGED_BY, SECRET_NAME, all_files
from provisioner.workloads.kinds import Kind, kind_of

APP_LABEL = "app.kubernetes.io/name"  # which app an object belongs to
PART_OF = "applyset.kubernetes.io/part-of"
APPLYSET_ID = "applyset.kubernetes.io/id"
CONTAINS = "applyset.kubernetes.io/contains-group-kinds"
TOOLING = "applyset.kubernetes.io/tooling"
SECRETS_CHECKSUM = "provision.dev/secrets-checksum"
TEMPLATE_HASH = "provision.dev/template-hash"
# libyaml's parser when PyYAML has it: 9x faster on the rendered manifests, same result.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Desired:
    """One object to apply."""

    kind: Kind
    name: str
    namespace: str | None
    body: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str | None]:
        """Identity for diffs and pruning."""
        return (self.kind.group_kind, self.name, self.namespace)


def parent_name(env: Environment) -> str:
    """The ApplySet parent ConfigMap."""
    return f"provision-{env.name}"


def applyset_id(env: Environment) -> str:
    """kubectl's ApplySet id for a ConfigMap parent: base64url(sha256(name.ns.kind.group))."""
    digest = hashlib.sha256(f"{parent_name(env)}.{env.namespace}.ConfigMap.".encode()).digest()
    return "applyset-" + base64.urlsafe_b64encode(digest).decode().rstrip("=") + "-v1"


def secret_values(env: Environment, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The shared secrets, read from the deploying process's environment; all or nothing."""
    source = os.environ if environ is None else environ
    missing = [s.from_env for s in env.secrets if s.from_env not in source]
    if missing:
        raise UsageError("secrets are read from the environment at deploy time; not set: "
                         + ", ".join(missing) + " (export them, e.g. from the CI secret store)")
    return {s.key: source[s.from_env] for s in env.secrets}


def _secrets_checksum(values: Mapping[str, str]) -> str:
    # A hash of the values, never the values: a rotated secret rolls the apps using it.
    return hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()


def template_hash(template: dict[str, Any]) -> str:
    """A pod template's identity, colour aside (what blue/green compares)."""
    from provisioner.render.manifests import COLOUR_LABEL

    meta = dict(template.get("metadata") or {})
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k != COLOUR_LABEL}
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if k != TEMPLATE_HASH}
    payload = {"labels": labels, "annotations": annotations,
               "spec": _without(template.get("spec") or {}, COLOUR_LABEL)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _without(value: Any, key: str) -> Any:
    """``value`` with ``key`` removed from every mapping in it (the colour in selectors)."""
    if isinstance(value, dict):
        return {k: _without(v, key) for k, v in value.items() if k != key}
    if isinstance(value, list):
        return [_without(v, key) for v in value]
    return value


def _mark(body: dict[str, Any], set_id: str) -> None:
    labels = body.setdefault("metadata", {}).setdefault("labels", {})
    labels[PART_OF] = set_id
    labels.setdefault("app.kubernetes.io/managed-by", MANAGED_BY)


def desired_objects(env: Environment, colours: Mapping[str, str] | None = None,
                    environ: Mapping[str, str] | None = None,
                    annotations: Mapping[str, str] | None = None) -> list[Desired]:
    """Every object of the environment, in apply order, marked as ApplySet members.

    ``annotations`` (a deploy-window override record) go on every workload.
    """
    set_id = applyset_id(env)
    values = secret_values(env, environ)
    checksum = _secrets_checksum(values)
    uses_secrets = {a.name for a in env.apps if a.global_config and env.secrets}
    result: list[Desired] = []
    for manifest in all_files(env, colours):
        for body in yaml.load_all(manifest.text, Loader=_LOADER):
            if not body:
                continue
            kind = kind_of(body)
            if kind.kind != "Namespace":  # the namespace outlives any one deploy: never pruned
                _mark(body, set_id)
            if kind.tier == 2:
                app = body["metadata"]["labels"].get(APP_LABEL)
                template_meta = body["spec"]["template"].setdefault("metadata", {})
                if app in uses_secrets:
                    template_meta.setdefault("annotations", {})[SECRETS_CHECKSUM] = checksum
                template_meta.setdefault("annotations", {})[TEMPLATE_HASH] = template_hash(
                    body["spec"]["template"])
                if annotations:
                    body["metadata"].setdefault("annotations", {}).update(annotations)
            meta = body["metadata"]
            result.append(Desired(kind, meta["name"], meta.get("namespace"), body))
    if env.secrets:
        secret = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                  "metadata": {"name": SECRET_NAME, "namespace": env.namespace,
                               "labels": {"app.kubernetes.io/part-of": env.name}},
                  "stringData": values}
        _mark(secret, set_id)
        result.append(Desired(kind_of(secret), SECRET_NAME, env.namespace, secret))
    return sorted(result, key=lambda d: d.kind.tier)


def parent_object(env: Environment, group_kinds: set[str],
                  record: Mapping[str, str] | None = None) -> Desired:
    """The ApplySet parent, listing the group-kinds its members may have.

    ``record`` (when, who, which images) is the last deploy's, for `provision status`.
    """
    body = {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": parent_name(env), "namespace": env.namespace,
                         "labels": {APPLYSET_ID: applyset_id(env),
                                    "app.kubernetes.io/managed-by": MANAGED_BY},
                         "annotations": {TOOLING: "provision/v1",
                                         CONTAINS: ",".join(sorted(group_kinds)),
                                         **(record or {})}}}
    return Desired(kind_of(body), parent_name(env), env.namespace, body)
