"""Options of the commands that run Terraform, and the prompts they share."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from provisioner.errors import UsageError
from provisioner.infra import parallelism

F = TypeVar("F", bound=Callable[..., Any])

terraform_bin_option = click.option(
    "--terraform-bin", metavar="PATH", default=None,
    help="Run this terraform or tofu binary instead of the embedded Terraform "
         "[env: PROVISION_TERRAFORM_BIN].")

allow_full_token_option = click.option(
    "--allow-full-token", is_flag=True,
    help="Without PROVISION_FAILOVER_TOKEN, give the failover agent the full API token "
         "(it stays in the control-plane nodes' user-data; a scoped token is safer).")

parallelism_option = click.option(
    "--parallelism", type=click.IntRange(1, parallelism.MAXIMUM), default=None, metavar="N",
    envvar="PROVISION_PARALLELISM", show_envvar=True,
    help="Terraform runs N operations at once (its -parallelism). Default: from the "
         f"number of droplets and DigitalOcean's {parallelism.PER_MINUTE} requests a minute "
         f"per token, between {parallelism.TERRAFORM_DEFAULT} (Terraform's default) and "
         f"{parallelism.sustained()} (README: How Terraform is run).")

yes_option = click.option("--yes", "-y", is_flag=True,
                          help="Apply without asking (required when there is no terminal).")


def require_terminal_or_yes(yes: bool, verb: str) -> None:
    """Refuse up front, before any work, when nobody can answer the prompt."""
    if not yes and not sys.stdin.isatty():
        raise UsageError(f"refusing to {verb} without a terminal to confirm on; "
                         "review `provision plan` and pass --yes")


def ask(question: str, yes: bool) -> bool:
    """Ask on the terminal unless --yes was given."""
    if yes:
        return True
    return click.confirm(question, default=False, err=True)
