"""The ``provision`` command group and its error handling.

Commands stay small: each parses its options, calls one Click-free core function and prints
the result. Every ProvisionError becomes its message on stderr and its exit code; anything
else is a bug and is reported as one, without a traceback unless -v was given.
"""

from __future__ import annotations

import click

from provisioner import __version__
from provisioner.cli.common import (
    EXIT_CODES_HELP,
    console,
    reports_errors,
    set_verbosity,
    verbosity_options,
)
from provisioner.ui.output import Console

__all__ = ["cli", "console", "main", "reports_errors"]


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
    ctx.obj = Console(set_verbosity(ctx, verbose, quiet))


def _register() -> None:
    # Commands import their heavy dependencies lazily, inside the command body.
    from provisioner.cli import (
        backup,
        check,
        dashboard,
        deploy,
        destroy,
        fleet_commands,
        image,
        init,
        kubeconfig,
        plan,
        render,
        restore,
        rotate,
        status,
        up,
        upgrade,
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
    cli.add_command(dashboard.dashboard)
    cli.add_command(rotate.rotate)
    cli.add_command(backup.backup)
    cli.add_command(init.init)
    cli.add_command(upgrade.upgrade)
    cli.add_command(restore.restore)
    cli.add_command(image.image)
    cli.add_command(fleet_commands.evacuate)
    cli.add_command(fleet_commands.restore_traffic)
    for command in cli.commands.values():
        command.params.extend(verbosity_options())


_register()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="provision")
