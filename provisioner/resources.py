"""Where the Jinja templates and Terraform sources live, installed or in a source checkout."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from provisioner.errors import ProvisionError

_PACKAGE = Path(__file__).resolve().parent


@cache
def data_dir(name: str) -> Path:
    """``templates`` or ``terraform``: inside the wheel, or at the root of a checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise ProvisionError(f"provision is installed without its {name}/ folder; reinstall it")
