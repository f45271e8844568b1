"""The first stage of every online command: load, render into the work folder, secrets."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import wraps
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

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


def run_plan_path(work: Workdir, name: str) -> Path:
    """A plan file of this run alone (``up.tfplan`` -> ``plans/up-PID-RANDOM.tfplan``).

    With a fixed name, a second run could overwrite the plan the first one had shown
    before the first applied it; the work folder's lock forbids the second run, and a
    name no other run uses keeps "the plan applied is the plan shown" true on its own.
    """
    stem = name.removesuffix(".tfplan")
    return work.root / "plans" / f"{stem}-{os.getpid()}-{secrets.token_hex(4)}.tfplan"


_RUN_PLAN = re.compile(r"[a-z]+-[0-9]+-[0-9a-f]{8}\.tfplan")
P = ParamSpec("P")
R = TypeVar("R")
Command = Callable[Concatenate[Path, Path | None, P], R]


def holds_work_folder(command: str) -> Callable[[Command[P, R]], Command[P, R]]:
    """Run the decorated ``(config, workdir, ...)`` command holding the work folder's lock.

    When it ends, however it ends, the plan files of runs (:func:`run_plan_path`) are
    deleted: they hold the bootstrap secrets, and a plan is applied only by its own run.
    """
    def decorate(func: Command[P, R]) -> Command[P, R]:
        @wraps(func)
        def run(config: Path, workdir: Path | None, /, *args: P.args,
                **kwargs: P.kwargs) -> R:
            with one_writer(config, workdir, command) as work:
                try:
                    return func(config, workdir, *args, **kwargs)
                finally:
                    plans = work.root / "plans"
                    for path in plans.iterdir() if plans.is_dir() else ():
                        if _RUN_PLAN.fullmatch(path.name):  # never a user's --out file
                            path.unlink(missing_ok=True)
        return run
    return decorate
