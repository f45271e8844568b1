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

from provisioner.cloud import throttle
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
    answers that are not the API's JSON (an edge proxy's HTML error page).

    A 429 is waited out as the API says (``Retry-After``; ``RateLimit-Reset`` once the hour
    is used up, cloud/throttle.py) for at most ``throttle.MAX_WAIT`` seconds in all; past
    that, one error names the limit. Other failures get ``_ATTEMPTS`` tries."""
    import digitalocean
    import requests

    # python-digitalocean 1.17 defines JSONReadError in digitalocean/baseapi.py but its
    # digitalocean/__init__.py does not import it: `digitalocean.JSONReadError` does not exist.
    from digitalocean.baseapi import JSONReadError

    delay = 1.0
    attempt = throttled = 0
    waited = 0.0
    while True:
        attempt += 1
        throttle.last_refusal()  # forget a 429 of an earlier read
        try:
            return func()
        except digitalocean.TokenError as e:
            raise PreflightError("no DigitalOcean API token: export DIGITALOCEAN_TOKEN") from e
        except digitalocean.DataReadError as e:
            message = str(e)
            lowered = message.lower()
            if "unauthorized" in lowered or "authenticate" in lowered:
                raise TokenRejected("the DigitalOcean API token was rejected (401): create a "
                                     "new read/write token and export DIGITALOCEAN_TOKEN") from e
            refusal = throttle.last_refusal()
            if refusal is not None or "rate limit" in lowered or "too many" in lowered:
                throttled += 1
                attempt -= 1  # a refusal is not a failed attempt: its wait is bounded instead
                try:
                    pause = throttle.wait_for(refusal, waited, throttled, what)
                except throttle.LimitReached as limit:
                    raise PreflightError(str(limit)) from e
                waited += pause
                _sleep(pause)
                continue
            if attempt >= _ATTEMPTS or not any(
                    s in lowered for s in ("server", "unavailable")):
                raise PreflightError(f"reading {what} from DigitalOcean failed: {message}") from e
        except (JSONReadError, requests.RequestException) as e:
            if attempt >= _ATTEMPTS:
                raise PreflightError(f"cannot reach the DigitalOcean API to read {what} "
                                     f"({type(e).__name__} after {_ATTEMPTS} attempts); check "
                                     "the network and DIGITALOCEAN_END_POINT, then retry") from e
        except (KeyError, IndexError, TypeError, ValueError) as e:
            # python-digitalocean indexes into whatever JSON came back: an error body without
            # "message", or a list where an object belongs, fails inside the library.
            if attempt >= _ATTEMPTS:
                raise PreflightError(f"the DigitalOcean API answered {what} with something it "
                                     f"does not send ({type(e).__name__} after {_ATTEMPTS} "
                                     "attempts); check DIGITALOCEAN_END_POINT, then retry") from e
        _sleep(delay)
        delay *= 2


def _sleep(seconds: float) -> None:
    time.sleep(seconds)


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
        manager = throttle.watch(digitalocean.Manager(**options))
    except digitalocean.EndPointError as e:
        shown = end_point or os.environ.get("DIGITALOCEAN_END_POINT", "")
        raise UsageError(f"DIGITALOCEAN_END_POINT {shown!r} is not a URL: fix or unset it "
                         "(e.g. https://api.digitalocean.com/v2/)") from e
    # Through the Manager's own session, which `throttle.watch` hooked: get_account()
    # would answer through a new Account object's session (python-digitalocean's
    # Account.get_object), whose 429 headers nobody would see.
    account = read("the account", lambda: account_of(manager))
    regions = read("regions", manager.get_all_regions)
    keys = read("SSH keys", manager.get_all_sshkeys)
    droplets = read("droplets", manager.get_all_droplets)
    return AccountView(
        droplet_limit=int(account.get("droplet_limit") or 0),
        droplets={d.name: set(d.tags or []) for d in droplets},
        regions={r.slug: (bool(r.available), frozenset(r.sizes or [])) for r in regions},
        key_fingerprints=frozenset(k.fingerprint for k in keys),
        key_ids=frozenset(str(k.id) for k in keys),
    )


def account_of(manager: Any) -> dict[str, Any]:
    """``GET /v2/account``'s ``account`` object, read through ``manager``."""
    account = manager.get_data("account/")["account"]
    if not isinstance(account, dict):
        raise TypeError("account is not an object")
    return account


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


def _check_node_image(env: Environment, token: str, config: Path | None) -> None:
    """``digitalocean.image: snapshot:<name>``: exists in the region, baked for the version."""
    import sys

    import digitalocean

    from provisioner.cloud.image_build import snapshots
    from provisioner.cloud.node_image import check_snapshot

    manager = throttle.watch(digitalocean.Manager(token=token))
    check_snapshot(env, snapshots(manager), config,
                   lambda message: print(message, file=sys.stderr))


def preflight(env: Environment, token: str, end_point: str | None = None,
              config: Path | None = None) -> None:
    """Raise PreflightError listing every problem, or return when all is well.

    First the account (an unreachable API ends it there, exit 1); then the Kubernetes
    release, in the package index the nodes install from (a release that does not exist is
    the file's error, exit 2; an unreachable index only warns).
    """
    account = read_account(token, end_point)
    check_release(env, config)
    if env.digitalocean.snapshot is not None:
        _check_node_image(env, token, config)
    found = problems(env, account)
    if found:
        raise PreflightError("preflight found problems; nothing was created:\n"
                             + "\n".join(f"  {line}" for line in found))
