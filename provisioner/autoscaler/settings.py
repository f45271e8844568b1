"""The autoscaler service's settings file: one JSON object, written by provision for the cluster.

The keys are fixed by the contract between the service and the code that deploys it
(``provision`` renders this file from the environment; the service only reads it). Each pool
is a node group ``<environment>-<pool>`` of 0 to ``max - min`` droplets above the ``min``
Terraform owns. A missing or mistyped key is a :class:`SettingsError` naming the file and the
key, never a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.cloud import tags as tagging
from provisioner.errors import UsageError


class SettingsError(UsageError):
    """The settings file cannot be read or does not say what the service needs."""


@dataclass(frozen=True)
class Tls:
    """The service's certificate, key and the CA its clients' certificates must chain to."""

    cert: str
    key: str
    client_ca: str


@dataclass(frozen=True)
class KubeApiSettings:
    """An API server named explicitly (tests, or a service run outside the cluster): its
    https URL, a file holding a bearer token and the CA that signed the server's
    certificate. In the cluster the key is null and the pod's service account is used."""

    server: str
    token_file: str
    ca_file: str


@dataclass(frozen=True)
class PoolTaint:
    key: str
    value: str
    effect: str


@dataclass(frozen=True)
class PoolSettings:
    """One autoscaled worker pool as Terraform creates its workers."""

    name: str
    min: int
    max: int
    size: str
    region: str
    image: str
    vpc_uuid: str
    ssh_keys: tuple[str, ...]
    tags: tuple[str, ...]  # without provision:<env>:autoscaled (the service adds it)
    labels: tuple[tuple[str, str], ...]
    taints: tuple[PoolTaint, ...]
    user_data: tuple[Mapping[str, str], ...]  # segments {"text": ...} / {"ref": name}
    values: tuple[tuple[str, str], ...]  # non-secret late values the refs name

    @property
    def group_max(self) -> int:
        """The node group's largest size: the droplets the autoscaler may add above min."""
        return self.max - self.min


@dataclass(frozen=True)
class Settings:
    environment: str
    listen: str
    tls: Tls
    do_api_url: str
    do_token_file: str
    secret_values_file: str
    kube_api: KubeApiSettings | None
    pools: tuple[PoolSettings, ...]

    @property
    def autoscaled_tag(self) -> str:
        """The tag on every droplet the service creates, and on no other."""
        return tagging.autoscaled_tag(self.environment)

    def group_id(self, pool: PoolSettings) -> str:
        return f"{self.environment}-{pool.name}"

    def pool_for_group(self, group_id: str) -> PoolSettings | None:
        return next((p for p in self.pools if self.group_id(p) == group_id), None)


class _Reader:
    """Typed access to one JSON object, errors naming the file and the key path."""

    def __init__(self, filename: str, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise SettingsError(f"{filename}: {path or 'top level'}: expected a JSON object")
        self.filename, self.data, self.path = filename, data, path

    def _where(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def _fail(self, key: str, problem: str) -> SettingsError:
        return SettingsError(f"{self.filename}: {self._where(key)}: {problem}")

    def raw(self, key: str) -> Any:
        if key not in self.data:
            raise self._fail(key, "missing")
        return self.data[key]

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "expected a non-empty string")
        return value

    def optional_child(self, key: str) -> _Reader | None:
        return None if self.raw(key) is None else self.child(key)

    def integer(self, key: str) -> int:
        value = self.raw(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self._fail(key, "expected a whole number, 0 or more")
        return value

    def strings(self, key: str) -> tuple[str, ...]:
        value = self.raw(key)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._fail(key, "expected a list of strings")
        return tuple(value)

    def string_map(self, key: str) -> tuple[tuple[str, str], ...]:
        value = self.raw(key)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self._fail(key, "expected an object of strings")
        return tuple(sorted(value.items()))

    def child(self, key: str) -> _Reader:
        return _Reader(self.filename, self.raw(key), self._where(key))

    def items(self, key: str) -> list[_Reader]:
        value = self.raw(key)
        if not isinstance(value, list):
            raise self._fail(key, "expected a list")
        return [_Reader(self.filename, v, f"{self._where(key)}[{i}]") for i, v in enumerate(value)]


def _segment(reader: _Reader) -> Mapping[str, str]:
    keys = set(reader.data)
    if keys == {"text"} and isinstance(reader.data["text"], str):
        return {"text": reader.data["text"]}
    if keys == {"ref"}:
        return {"ref": reader.text("ref")}
    raise SettingsError(f"{reader.filename}: {reader.path}: expected {{\"text\": ...}} or "
                        "{\"ref\": NAME}")


def _pool(reader: _Reader) -> PoolSettings:
    pool = PoolSettings(
        name=reader.text("name"), min=reader.integer("min"), max=reader.integer("max"),
        size=reader.text("size"), region=reader.text("region"), image=reader.text("image"),
        vpc_uuid=reader.text("vpc_uuid"), ssh_keys=reader.strings("ssh_keys"),
        tags=reader.strings("tags"), labels=reader.string_map("labels"),
        taints=tuple(PoolTaint(t.text("key"), t.raw("value") or "", t.text("effect"))
                     for t in reader.items("taints")),
        user_data=tuple(_segment(s) for s in reader.items("user_data")),
        values=reader.string_map("values"))
    if pool.max < pool.min:
        raise SettingsError(f"{reader.filename}: {reader.path}.max: {pool.max} is below "
                            f"min {pool.min}")
    return pool


def _kube_api(reader: _Reader | None) -> KubeApiSettings | None:
    if reader is None:
        return None
    server = reader.text("server")
    if not server.startswith("https://"):
        raise reader._fail("server", "expected an https:// URL (the token is only sent "
                           "over TLS)")
    return KubeApiSettings(server, reader.text("token_file"), reader.text("ca_file"))


def parse(data: Any, filename: str = "settings") -> Settings:
    """Settings from the decoded JSON object; :class:`SettingsError` on any wrong key."""
    top = _Reader(filename, data, "")
    tls = top.child("tls")
    pools = tuple(_pool(p) for p in top.items("pools"))
    names = [p.name for p in pools]
    if len(set(names)) != len(names):
        raise SettingsError(f"{filename}: pools: a pool name appears twice")
    return Settings(
        environment=top.text("environment"), listen=top.text("listen"),
        tls=Tls(tls.text("cert"), tls.text("key"), tls.text("client_ca")),
        do_api_url=top.text("do_api_url").rstrip("/"), do_token_file=top.text("do_token_file"),
        secret_values_file=top.text("secret_values_file"),
        kube_api=_kube_api(top.optional_child("kube_api")), pools=pools)


def load(path: str | Path) -> Settings:
    """Read and check the settings file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise SettingsError(f"{path}: cannot read the settings file: {error.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SettingsError(f"{path}:{error.lineno}: not JSON: {error.msg}") from None
    return parse(data, str(path))
