"""Load an environment file: YAML with positions, every section read, cross-checks run."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable
from pathlib import Path

from provisioner.config import checks
from provisioner.config.app_sections import read_app, read_deploy_policy, read_secrets
from provisioner.config.backup_section import read_backups
from provisioner.config.budget_section import read_budget
from provisioner.config.crosscheck import check_environment
from provisioner.config.infra_sections import (
    read_access,
    read_control_plane,
    read_digitalocean,
    read_kubernetes,
    read_state,
    read_worker_pools,
)
from provisioner.config.model import Addons, Environment
from provisioner.config.reader import Issues, Section
from provisioner.config.yamlpos import MAX_BYTES, Mapping, Node, Sequence, load
from provisioner.errors import ConfigError, ConfigIssue

TOP_KEYS = ("name", "namespace", "digitalocean", "kubernetes", "control_plane", "worker_pools",
            "access", "config", "secrets", "apps", "deploy_policy", "state", "deletion_protection",
            "backups", "budget", "addons")


def _locator(root: Node) -> Callable[[str], int]:
    """Map ``a.b[2].c`` paths back to lines, falling back to the nearest known parent."""

    def locate(path: str) -> int:
        node: Node | None = root
        line = root.line
        for part in path.replace("[", ".[").split("."):
            if node is None or not part:
                break
            if part.startswith("[") and isinstance(node, Sequence):
                index = int(part[1:-1])
                node = node.items[index] if index < len(node.items) else None
            elif isinstance(node, Mapping) and part in node.items:
                line = node.key_lines[part]
                node = node.items[part]
                continue
            else:
                node = None
            if node is not None:
                line = node.line
        return line

    return locate


def parse(data: bytes, filename: str) -> Environment:
    """Parse and validate an environment from bytes; raise ConfigError listing every issue."""
    loaded = load(data)
    if loaded.root is None:
        raise ConfigError(filename, loaded.issues)
    issues = Issues()
    issues.items.extend(loaded.issues)
    top = Section(issues, loaded.root, "", TOP_KEYS)
    if not isinstance(loaded.root, Mapping):
        raise ConfigError(filename, issues.items)
    name = top.text("name", "env", checks.dns_label, required=True,
                    hint="e.g. name: prod; it prefixes every cloud resource")
    if len(name) > 20:
        issues.add(top.line_of("name"), "name", f"{name!r} is {len(name)} characters",
                   "keep it to 20 so droplet names fit in a hostname")
    apps = tuple(a for i, n in enumerate(top.items_of("apps"))
                 if (a := read_app(top, n, i)) is not None)
    digitalocean = read_digitalocean(top)
    state = read_state(top)
    env = Environment(
        name=name,
        digitalocean=digitalocean,
        kubernetes=read_kubernetes(top),
        control_plane=read_control_plane(top),
        worker_pools=read_worker_pools(top),
        access=read_access(top),
        namespace=top.text("namespace", name, checks.namespace),
        config=top.pairs("config", checks.env_name, None),
        secrets=read_secrets(top),
        apps=apps,
        deploy_policy=read_deploy_policy(top),
        state=state,
        deletion_protection=top.boolean("deletion_protection", False),
        backups=read_backups(top, name, state, digitalocean.region),
        budget=read_budget(top),
        addons=_read_addons(top),
    )
    locate = _locator(loaded.root)
    check_environment(env, issues, locate)
    if issues.items:
        raise ConfigError(filename, _dedupe(issues.items))
    return env


def _read_addons(top: Section) -> Addons:
    """``addons: {headlamp: true}``: the optional add-ons (README: Dashboard)."""
    if not top.has("addons"):
        return Addons()
    s = top.section("addons", ("headlamp",))
    return Addons(headlamp=s.boolean("headlamp", False))


def _dedupe(items: list[ConfigIssue]) -> list[ConfigIssue]:
    return sorted(set(items))


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _refuse_special(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise ConfigError(str(path), [ConfigIssue(0, "", f"is {kind}, not a file",
                                                  "give the path of an environment .yaml "
                                                  "file")])


def read_bounded(path: Path) -> bytes:
    """The file's bytes, refusing anything but a regular file and reading at most a bound.

    O_NONBLOCK: opening a FIFO nobody writes to would otherwise wait forever, and a device
    such as /dev/zero never ends; neither is an environment file.
    """
    _refuse_special(path, os.stat(path).st_mode)  # a socket cannot even be opened
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _refuse_special(path, os.fstat(fd).st_mode)  # what was opened, if it changed since
        chunks = []
        left = MAX_BYTES + 1  # one byte more than allowed, so decode() can say it is too big
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load_environment(path: Path) -> Environment:
    """Read and validate the environment file at ``path``."""
    try:
        data = read_bounded(path)
    except IsADirectoryError:
        raise ConfigError(str(path), [ConfigIssue(0, "", "is a directory",
                                                  "give the path of an environment .yaml file")]
                          ) from None
    except OSError as e:
        raise ConfigError(str(path), [ConfigIssue(0, "", f"cannot read: {e.strerror}",
                                                  "check the path and permissions")]) from e
    return parse(data, str(path))
