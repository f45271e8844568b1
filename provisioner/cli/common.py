"""What every command shares: the run's Console and the error-to-exit-code mapping.

Kept apart from main.py so that importing any one command never imports the whole group.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable
from functools import wraps
from types import FrameType
from typing import Any, TypeVar

import click

from provisioner.errors import EXIT_FAILURE, ConfigError, ProvisionError
from provisioner.ui.output import Console

F = TypeVar("F", bound=Callable[..., Any])


class Terminated(BaseException):
    """SIGTERM outside a Terraform run (which handles it itself, see infra.runner).

    Raised like KeyboardInterrupt, and like it not an Exception, so no ``except Exception``
    swallows it while ``finally`` blocks and context managers (the work folder's lock) run.
    """


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated

EXIT_CODES_HELP = """\b
Exit codes: 0 success, 1 failure, 2 bad usage or config,
3 refused by policy or another run holding the work folder,
4 changes pending (plan --exit-code), 130/143 interrupted (SIGINT/SIGTERM)."""


# -v and -q are counted wherever they appear, before the command name or after it, in the
# run's shared context meta; the Console follows every change.
_VERBOSE = "provision.verbose"
_QUIET = "provision.quiet"


def set_verbosity(ctx: click.Context, verbose: int = 0, quiet: bool = False) -> int:
    """Add ``verbose`` -v's and a -q to the run's count; the resulting Console level."""
    ctx.meta[_VERBOSE] = ctx.meta.get(_VERBOSE, 0) + verbose
    ctx.meta[_QUIET] = ctx.meta.get(_QUIET, False) or quiet
    level = 0 if ctx.meta[_QUIET] else 1 + ctx.meta[_VERBOSE]
    found = ctx.find_object(Console)
    if found is not None:
        found.verbosity = level
    return level


def verbosity_options() -> list[click.Parameter]:
    """-v and -q for a command, so that `provision COMMAND ... -v` works like `provision -v
    COMMAND ...` (users put flags at the end)."""

    def more(ctx: click.Context, _param: click.Parameter, value: int) -> None:
        set_verbosity(ctx, verbose=value or 0)

    def less(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
        set_verbosity(ctx, quiet=bool(value))

    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=more,
                     help="More detail; -vv shows tracebacks of bugs."),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=less,
                     help="Only errors and results."),
    ]


def console() -> Console:
    """The Console of the running command."""
    ctx = click.get_current_context()
    found = ctx.find_object(Console)
    return found if found is not None else Console()


def reports_errors(func: F) -> F:
    """Turn ProvisionError into message + exit code; never show users a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        out = console()
        # Python's default for SIGTERM ends the process on the spot, skipping every cleanup.
        in_main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminate) if in_main else None
        try:
            return func(*args, **kwargs)
        except Terminated:
            out.error("terminated")
            sys.exit(128 + signal.SIGTERM)
        except ProvisionError as e:
            out.error(str(e), located=isinstance(e, ConfigError))
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, click.exceptions.Abort):
            # Ctrl-C, or Ctrl-D at a prompt: the user stopped; nothing more was done.
            out.error("aborted")
            sys.exit(130)
        except Exception as e:  # a bug in provision, not the user's fault
            if out.verbosity > 2:  # -vv
                raise
            out.error(f"internal error: {type(e).__name__}: {e} (run with -v for details "
                      "and report it)")
            sys.exit(EXIT_FAILURE)
        finally:
            if in_main:  # None: a handler not set from Python; the default is the best guess
                signal.signal(signal.SIGTERM, previous if previous is not None else signal.SIG_DFL)

    return wrapper  # type: ignore[return-value]
