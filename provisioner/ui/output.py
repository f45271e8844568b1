"""Where output goes: results on stdout, messages on stderr, JSON when asked."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

_QUIET = 0
_NORMAL = 1
_VERBOSE = 2


class Console:
    """Message verbosity and colour for one command run."""

    def __init__(self, verbosity: int = _NORMAL) -> None:
        self.verbosity = verbosity
        self.colour = sys.stderr.isatty() and "NO_COLOR" not in os.environ

    def info(self, message: str) -> None:
        """A progress or status message (stderr), hidden by -q."""
        if self.verbosity >= _NORMAL:
            click.echo(message, err=True)

    def detail(self, message: str) -> None:
        """A message only -v shows."""
        if self.verbosity >= _VERBOSE:
            click.echo(message, err=True)

    def error(self, message: str, located: bool = False) -> None:
        """An error (stderr), always shown; ``located`` messages already start FILE:LINE."""
        if located:
            click.echo(message, err=True)
            return
        prefix = click.style("error:", fg="red", bold=True) if self.colour else "error:"
        click.echo(f"{prefix} {message}", err=True)


def emit_json(data: Any) -> None:
    """Machine-readable result on stdout, stable key order."""
    click.echo(json.dumps(data, indent=2, sort_keys=True))


def emit_text(text: str) -> None:
    """Human-readable result on stdout."""
    click.echo(text, nl=False)
