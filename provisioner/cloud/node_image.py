"""Preflight for ``digitalocean.image: snapshot:<name>``: the snapshot exists in the region,
and it was baked for the file's Kubernetes version.

Terraform resolves the name (terraform/image.tf, data.digitalocean_droplet_snapshot); this
check runs before it so a missing snapshot is the file's error with its line (exit 2), not
a provider error half-way through a plan. The version comes from the name `provision image
build` gives (``provision-<env>-k8s-<version>-<time>``, cloud/image_build.py): a snapshot
named otherwise cannot say, and is only warned about. A version that differs is a warning,
not an error: the nodes' bootstrap installs the file's version over it (slower, still right).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from provisioner.config.model import Environment
from provisioner.config.yamlpos import key_line
from provisioner.errors import ConfigError, ConfigIssue

KEY = "digitalocean.image"
_VERSION = re.compile(r"-k8s-(\d+\.\d+\.\d+)-")


def baked_version(name: str) -> str | None:
    """The Kubernetes version in a snapshot name `provision image build` gave, or None."""
    found = _VERSION.search(name)
    return found.group(1) if found else None


def check_snapshot(env: Environment, snapshots: list[dict[str, Any]], config: Path | None,
                   warn: Callable[[str], None]) -> None:
    """Raise ConfigError when the named snapshot is not in the region; warn when it was
    baked for another Kubernetes version, or its name does not say which."""
    name = env.digitalocean.snapshot
    if name is None:
        return
    region = env.digitalocean.region
    filename = str(config) if config is not None else "the environment file"
    named = [s for s in snapshots if s.get("name") == name]
    here = [s for s in named if region in (s.get("regions") or [])]
    if not here:
        where = sorted({r for s in named for r in s.get("regions") or []})
        problem = (f"snapshot {name!r} is not in {region} (it is in {', '.join(where)})"
                   if where else f"no droplet snapshot named {name!r} in the account")
        hint = ("copy it to the region (an image transfer) or build one there: "
                "provision image build" if where else
                f"run `provision image build {filename}` and name what it prints")
        line = key_line(config, "digitalocean", "image")
        raise ConfigError(filename, [ConfigIssue(line, KEY, problem, hint)])
    version = baked_version(name)
    if version is None:
        warn(f"warning: {KEY}: the name of snapshot {name!r} does not say its Kubernetes "
             f"version; nodes install {env.kubernetes.version} unless the image has it")
    elif version != env.kubernetes.version:
        warn(f"warning: {KEY}: snapshot {name!r} has Kubernetes {version}, the file asks for "
             f"{env.kubernetes.version}: every node installs {env.kubernetes.version} over it "
             f"at boot (no time saved); build a new image: provision image build {filename}")


def snapshot_record(env: Environment, snapshots: list[dict[str, Any]]
                    ) -> dict[str, Any] | None:
    """The snapshot terraform/image.tf resolves ``snapshot:<name>`` to, by the same rule
    (data.digitalocean_droplet_snapshot: exact name, in the region, most_recent = the
    newest ``created_at``); None when none matches."""
    name, region = env.digitalocean.snapshot, env.digitalocean.region
    here = [s for s in snapshots
            if s.get("name") == name and region in (s.get("regions") or [])]
    if not here:
        return None
    return max(here, key=lambda s: str(s.get("created_at") or ""))


def snapshot_id(env: Environment, snapshots: list[dict[str, Any]]) -> str | None:
    """The id of :func:`snapshot_record`, as Terraform's ``local.image`` gives it."""
    found = snapshot_record(env, snapshots)
    return None if found is None else str(found["id"])
