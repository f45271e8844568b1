"""Where the DigitalOcean API token comes from: the environment, never a file or a flag."""

from __future__ import annotations

import os

from provisioner.errors import UsageError

# The names the Terraform provider and doctl read, in the order they prefer them.
TOKEN_VARIABLES = ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN")


def api_token(required: bool = True) -> str:
    """The API token from the environment."""
    for name in TOKEN_VARIABLES:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    if required:
        raise UsageError("no DigitalOcean API token: export DIGITALOCEAN_TOKEN (a read/write "
                         "token from the control panel's API page; in CI, from the secret store)")
    return ""
