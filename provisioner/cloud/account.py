"""Whether the DigitalOcean API accepts a token (`rotate` before storing it, `check`)."""

from __future__ import annotations

from provisioner.cloud import throttle
from provisioner.cloud.preflight import TokenRejected, account_of, read


def token_accepted(token: str) -> bool:
    """True when GET /v2/account answers with ``token``; False on 401.

    Other failures (the API unreachable, 5xx after retries) raise PreflightError: they say
    nothing about the token.
    """
    import os

    import digitalocean

    # python-digitalocean waits forever by default; a hung API must not hang a command.
    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "30")
    try:
        manager = throttle.watch(digitalocean.Manager(token=token))
        read("the account", lambda: account_of(manager))
    except TokenRejected:
        return False
    return True


def check_token(token: str, source: str) -> None:
    """Raise TokenRejected unless the API accepts ``token`` (named by ``source``, never shown)."""
    if not token_accepted(token):
        raise TokenRejected(f"the DigitalOcean API rejects the token in {source} (401): "
                            "nothing was changed; export a valid read/write token")
