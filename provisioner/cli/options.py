"""Options shared by several commands, defined once and stacked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

config_argument = click.argument(
    "config", type=click.Path(path_type=Path, dir_okay=True, allow_dash=False),
    metavar="CONFIG")

workdir_option = click.option(
    "--workdir", type=click.Path(path_type=Path, file_okay=False), default=None,
    help="Work folder for rendered files, secrets and state "
         "[default: .provision/<name>/ beside CONFIG].")

output_option = click.option(
    "--output", "-o", "output", type=click.Choice(["text", "json"]), default="text",
    show_default=True, help="Result format on stdout.")


def given_kubeconfig(path: Path | None) -> Path | None:
    """A --kubeconfig the user named must exist: a typo must not read as "no cluster"."""
    from provisioner.errors import UsageError

    if path is None or path.exists():  # a folder is refused by Click (dir_okay=False)
        return path
    raise UsageError(f"--kubeconfig {path}: the file does not exist (name an existing "
                     "kubeconfig, or leave --kubeconfig out to use the environment's own)")


def common(func: F) -> F:
    """CONFIG and --workdir, the pair most commands take."""
    return config_argument(workdir_option(func))


def override_window_options(what: str) -> Callable[[F], F]:
    """--override-window and --reason, for every command the windows and freezes hold back;
    ``what`` starts the help: "Deploy", "Destroy", ..."""
    def stack(func: F) -> F:
        func = click.option("--reason", default=None,
                            help="Why the window is overridden (recorded).")(func)
        return click.option("--override-window", is_flag=True,
                            help=f"{what} outside the deploy windows or inside a freeze "
                                 "(needs --reason).")(func)
    return stack


def override_reason(override_window: bool, reason: str | None) -> str | None:
    """The reason an override is recorded with; None without --override-window."""
    from provisioner.errors import UsageError

    if override_window and not (reason and reason.strip()):
        raise UsageError("--override-window needs --reason TEXT: it is recorded on what changes")
    return reason if override_window else None
