"""Does the Kubernetes patch release an environment asks for exist? Asked before anything
is created, of the package index the nodes install it from.

Each node adds the Kubernetes project's apt repository for the minor,
``https://pkgs.k8s.io/core:/stable:/v<minor>/deb/ /`` (a flat repository: apt reads its
index at ``.../deb/Packages``), and installs the kubeadm whose version is
``<release>-<revision>`` (templates/scripts/bootstrap.sh.j2, `package_version`). A release
missing there used to fail only on the droplet, after the infrastructure was created. The
index is a Debian ``Packages`` file: one stanza per package build, ``Package: kubeadm``,
``Version: 1.36.2-1.1`` (apt prints builds from it as ``kubeadm 1.31.7-1.1`` fetched from
prod-cdn.packages.k8s.io/repositories/isv:/kubernetes:/core:/stable:/v1.31/deb, where
pkgs.k8s.io redirects).

Only a definite answer stops: the index lists builds of that minor and none of this
release, or neither the index nor the repository's signing key (``.../deb/Release.key``,
which every node fetches first) exists, so the minor has no repository. Anything else
(no network, a timeout, a server error, an index that cannot be read) is a warning, and
preflight goes on: the node checks again when it installs.

``PROVISION_KUBERNETES_PACKAGES_URL`` replaces ``https://pkgs.k8s.io`` (the path stays).
It is internal: the tests set it to a local server standing in for the index.
"""

from __future__ import annotations

import gzip
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable
from pathlib import Path

from provisioner.config.model import Environment
from provisioner.config.yamlpos import key_line
from provisioner.errors import ConfigError, ConfigIssue

Say = Callable[[str], None]

PACKAGES_HOST = "https://pkgs.k8s.io"
HOST_ENV = "PROVISION_KUBERNETES_PACKAGES_URL"  # internal, for tests
KEY = "kubernetes.version"
_TIMEOUT = 20.0
_LIMIT = 64 * 1024 * 1024  # the index of a minor is a few hundred kilobytes


class _Missing(Exception):
    """The server answered 404."""


def repository(minor: str) -> str:
    """The apt repository of a Kubernetes minor, as the node's sources.list names it."""
    host = os.environ.get(HOST_ENV) or PACKAGES_HOST
    return f"{host.rstrip('/')}/core:/stable:/v{minor}/deb"


def _get(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": "provision-preflight"})
    try:
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            body: bytes = response.read(_LIMIT)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise _Missing(url) from e
        raise
    return gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body


def kubeadm_releases(index: str) -> set[str]:
    """Upstream releases (``1.36.2``) of the kubeadm builds a ``Packages`` index lists."""
    found = set()
    for stanza in re.split(r"\n\s*\n", index):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+):[ \t]*(.*)$", stanza, re.M))
        if fields.get("Package") == "kubeadm" and fields.get("Version"):
            version = fields["Version"].split(":", 1)[-1]  # no epoch
            found.add(version.rsplit("-", 1)[0])  # upstream version, without the revision
    return found


def _key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version))


def _line(config: Path | None) -> int:
    return key_line(config, "kubernetes", "version")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)


def check_release(env: Environment, config: Path | None = None, warn: Say = _stderr) -> None:
    """Raise ConfigError (exit 2) when the release definitely does not exist; warn when
    the index cannot be asked."""
    release, minor = env.kubernetes.version.removeprefix("v"), env.kubernetes.minor
    base = repository(minor)
    filename = str(config) if config is not None else "the environment file"
    try:
        try:
            index = _get(f"{base}/Packages").decode("utf-8", "replace")
        except _Missing:
            _get(f"{base}/Release.key")  # the repository exists: its index is elsewhere
            warn(f"warning: {base}/Packages is missing, so Kubernetes {release} was not "
                 "checked; the nodes check it when they install")
            return
    except _Missing:
        raise ConfigError(filename, [ConfigIssue(
            _line(config), KEY, f"Kubernetes {minor} has no package repository ({base}/): "
            f"release {release} does not exist",
            "choose a released minor")]) from None
    # URLError, timeouts, HTTP errors, a short read, a truncated or corrupt gzip body.
    except (OSError, ValueError, EOFError, zlib.error, http.client.HTTPException) as e:
        warn(f"warning: could not read the Kubernetes package index {base}/Packages "
             f"({e}), so Kubernetes {release} was not checked; the nodes check it when "
             "they install")
        return
    releases = kubeadm_releases(index)
    if not releases:
        warn(f"warning: {base}/Packages lists no kubeadm, so Kubernetes {release} was not "
             "checked; the nodes check it when they install")
        return
    if release not in releases:
        newest = max(releases, key=_key)
        raise ConfigError(filename, [ConfigIssue(
            _line(config), KEY, f"Kubernetes {release} does not exist in {base}/ (where the "
            f"nodes install it from); the newest {minor} patch release is {newest}",
            f'write version: "{newest}"')])
