"""The first stage of every online command: load, render into the work folder, secrets."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from provisioner.bootstrap.pki import ClusterSecrets
from provisioner.config import Environment, load_environment
from provisioner.render import render_environment
from provisioner.workdir import Workdir


@dataclass(frozen=True)
class Prepared:
    """A validated environment, rendered into its work folder, with its secrets."""

    config: Path
    env: Environment
    work: Workdir
    secrets: ClusterSecrets


def prepare(config: Path, workdir: Path | None) -> Prepared:
    """Load and render ``config``; nothing outside the work folder is touched."""
    env = load_environment(config)
    work = Workdir.for_config(config, env, workdir)
    work.write_rendered(render_environment(env))
    return Prepared(config, env, work, work.cluster_secrets(env))


@contextmanager
def one_writer(config: Path, workdir: Path | None, command: str) -> Iterator[Workdir]:
    """``config``'s work folder, held by this run alone while the block runs.

    Raises :class:`provisioner.lock.Busy` (exit 3) at once when another run holds it.
    """
    work = Workdir.for_config(config, load_environment(config), workdir)
    with work.locked(command):
        yield work
