"""The ``provision`` command group and its error handling.

Commands stay small: each parses its options, calls one Click-free core function and prints
the result. Every ProvisionError becomes its message on stderr and its exit code; anything
else is a bug and is reported as one, without a traceback unless -v was given.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import click

from provisioner import __version__
from provisioner.errors import EXIT_FAILURE, ConfigError, ProvisionError
from provisioner.ui.output import Console

F = TypeVar("F", bound=Callable[..., Any])

EXIT_CODES_HELP = """\b
Exit codes: 0 success, 1 failure, 2 bad usage or config,
3 refused by policy, 4 changes pending (plan --exit-code)."""


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
        try:
            return func(*args, **kwargs)
        except ProvisionError as e:
            out.error(str(e), located=isinstance(e, ConfigError))
            sys.exit(e.exit_code)
        except KeyboardInterrupt:
            out.error("interrupted")
            sys.exit(130)
        except Exception as e:  # a bug in provision, not the user's fault
            if out.verbosity > 2:  # -vv
                raise
            out.error(f"internal error: {type(e).__name__}: {e} (run with -v for details "
                      "and report it)")
            sys.exit(EXIT_FAILURE)

    return wrapper  # type: ignore[return-value]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
             epilog=EXIT_CODES_HELP)
@click.option("-v", "--verbose", count=True, help="More detail; -vv shows tracebacks of bugs.")
@click.option("-q", "--quiet", is_flag=True, help="Only errors and results.")
@click.version_option(__version__, prog_name="provision")
@click.pass_context
def cli(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Turn one YAML file into a highly available Kubernetes cluster on DigitalOcean.

    \b
    Examples:
      provision validate examples/production.yaml
      provision plan examples/production.yaml --offline
      provision render examples/production.yaml --out build/
    """
    ctx.obj = Console(0 if quiet else 1 + verbose)


def _register() -> None:
    # Commands import their heavy dependencies lazily, inside the command body.
    from provisioner.cli import (
        check,
        deploy,
        destroy,
        kubeconfig,
        plan,
        render,
        status,
        up,
        validate,
    )

    cli.add_command(validate.validate)
    cli.add_command(render.render)
    cli.add_command(plan.plan)
    cli.add_command(up.up)
    cli.add_command(destroy.destroy)
    cli.add_command(kubeconfig.kubeconfig)
    cli.add_command(deploy.deploy)
    cli.add_command(deploy.rollback)
    cli.add_command(check.check)
    cli.add_command(status.status)


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="provision")
