"""Checks against the DigitalOcean account before anything is created.

A failed apply halfway through an environment is slow to clean up; a failed preflight costs
nothing. Every problem is one line that says what to change, and all of them are reported.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from provisioner.cloud.releases import check_release
from provisioner.config.model import Environment
from provisioner.errors import ProvisionError, UsageError
from provisioner.render.names import all_names

T = TypeVar("T")
_ATTEMPTS = 4


class PreflightError(ProvisionError):
    """The account cannot hold this environment as configured; nothing was created."""


class TokenRejected(PreflightError):
    """The API answered 401: the token is wrong, revoked or expired."""


@dataclass(frozen=True)
class AccountView:
    """What preflight read from the account."""

    droplet_limit: int
    droplets: dict[str, set[str]]  # droplet name -> tags
    regions: dict[str, tuple[bool, frozenset[str]]]  # slug -> (available, sizes offered)
    key_fingerprints: frozenset[str]
    key_ids: frozenset[str]


def read(what: str, func: Callable[[], T]) -> T:
    """One API read, retried on rate limits, server errors, dropped connections and on
    answers that are not the API's JSON (an edge proxy's HTML error page)."""
    import digitalocean
    import requests

    # python-digitalocean 1.17 defines JSONReadError in digitalocean/baseapi.py but its
    # digitalocean/__init__.py does not import it: `digitalocean.JSONReadError` does not exist.
    from digitalocean.baseapi import JSONReadError

    delay = 1.0
    for attempt in range(1, _ATTEMPTS + 1):
        try:
            return func()
        except digitalocean.TokenError as e:
            raise PreflightError("no DigitalOcean API token: export DIGITALOCEAN_TOKEN") from e
        except digitalocean.DataReadError as e:
            message = str(e)
            if "unauthorized" in message.lower() or "authenticate" in message.lower():
                raise TokenRejected("the DigitalOcean API token was rejected (401): create a "
                                     "new read/write token and export DIGITALOCEAN_TOKEN") from e
            if attempt == _ATTEMPTS or not any(
                    s in message.lower() for s in ("too many", "rate", "server", "unavailable")):
                raise PreflightError(f"reading {what} from DigitalOcean failed: {message}") from e
        except (JSONReadError, requests.RequestException) as e:
            if attempt == _ATTEMPTS:
                raise PreflightError(f"cannot reach the DigitalOcean API to read {what} "
                                     f"({type(e).__name__} after {_ATTEMPTS} attempts); check "
                                     "the network and DIGITALOCEAN_END_POINT, then retry") from e
        except (KeyError, IndexError, TypeError, ValueError) as e:
            # python-digitalocean indexes into whatever JSON came back: an error body without
            # "message", or a list where an object belongs, fails inside the library.
            if attempt == _ATTEMPTS:
                raise PreflightError(f"the DigitalOcean API answered {what} with something it "
                                     f"does not send ({type(e).__name__} after {_ATTEMPTS} "
                                     "attempts); check DIGITALOCEAN_END_POINT, then retry") from e
        time.sleep(delay)
        delay *= 2
    raise AssertionError("unreachable")


def read_account(token: str, end_point: str | None = None) -> AccountView:
    """Read the parts of the account preflight needs."""
    import os

    import digitalocean

    # python-digitalocean waits forever by default; a hung API must not hang a CI job.
    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "30")

    options: dict[str, Any] = {"token": token}
    if end_point:
        options["end_point"] = end_point
    try:
        manager = digitalocean.Manager(**options)
    except digitalocean.EndPointError as e:
        shown = end_point or os.environ.get("DIGITALOCEAN_END_POINT", "")
        raise UsageError(f"DIGITALOCEAN_END_POINT {shown!r} is not a URL: fix or unset it "
                         "(e.g. https://api.digitalocean.com/v2/)") from e
    account = read("the account", manager.get_account)
    regions = read("regions", manager.get_all_regions)
    keys = read("SSH keys", manager.get_all_sshkeys)
    droplets = read("droplets", manager.get_all_droplets)
    return AccountView(
        droplet_limit=int(account.droplet_limit or 0),
        droplets={d.name: set(d.tags or []) for d in droplets},
        regions={r.slug: (bool(r.available), frozenset(r.sizes or [])) for r in regions},
        key_fingerprints=frozenset(k.fingerprint for k in keys),
        key_ids=frozenset(str(k.id) for k in keys),
    )


def problems(env: Environment, view: AccountView) -> list[str]:
    """Every reason the account cannot take this environment, one line each."""
    found = []
    region = env.digitalocean.region
    if region not in view.regions:
        found.append(f"region {region!r} does not exist; choose one of "
                     + ", ".join(sorted(s for s, (ok, _) in view.regions.items() if ok)))
    elif not view.regions[region][0]:
        found.append(f"region {region!r} is not accepting new droplets; choose another")
    else:
        offered = view.regions[region][1]
        wanted = {env.control_plane.size: "control_plane.size"}
        for i, pool in enumerate(env.worker_pools):
            wanted.setdefault(pool.size, f"worker_pools[{i}].size")
        for size, where in wanted.items():
            if size not in offered:
                found.append(f"size {size!r} ({where}) is not offered in {region}")
    for key in env.digitalocean.ssh_keys:
        if key not in view.key_fingerprints and key not in view.key_ids:
            found.append(f"SSH key {key} is not in the account; upload it or fix "
                         "digitalocean.ssh_keys")
    ours = {name for name, tags in view.droplets.items() if f"provision:{env.name}" in tags}
    new = len(all_names(env) - ours)
    free = view.droplet_limit - len(view.droplets)
    if new > free:
        found.append(f"the account may run {view.droplet_limit} droplets and has "
                     f"{len(view.droplets)}; this environment needs {new} more: raise the "
                     "limit with DigitalOcean support or reduce counts")
    return found


def preflight(env: Environment, token: str, end_point: str | None = None,
              config: Path | None = None) -> None:
    """Raise PreflightError listing every problem, or return when all is well.

    First the account (an unreachable API ends it there, exit 1); then the Kubernetes
    release, in the package index the nodes install from (a release that does not exist is
    the file's error, exit 2; an unreachable index only warns).
    """
    account = read_account(token, end_point)
    check_release(env, config)
    found = problems(env, account)
    if found:
        raise PreflightError("preflight found problems; nothing was created:\n"
                             + "\n".join(f"  {line}" for line in found))
