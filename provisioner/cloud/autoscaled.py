"""The droplets the autoscaler service created: found by exact tags, deleted by `destroy`.

A droplet is an autoscaled one of environment ``prod`` when its tags hold both
``provision:prod`` and ``provision:prod:autoscaled`` (list membership, never a prefix:
``provision:prod-eu:autoscaled`` is another environment's). Its pool is its
``provision:prod:pool:<pool>`` tag, which the service copies from the pool's Terraform tags.
Terraform's state never holds them, so `up` neither plans nor changes them; `destroy`
deletes them before Terraform removes the VPC and firewalls they sit in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from provisioner.cloud import sweep
from provisioner.cloud.tags import env_tag, is_autoscaled, pool_of
from provisioner.errors import ProvisionError

Report = Callable[[str], None]
# Droplets leave the list within seconds of their delete; the VPC cannot go before them.
GONE_TIMEOUT = 5 * 60.0


@dataclass(frozen=True)
class Autoscaled:
    """One droplet the autoscaler made."""

    id: int
    name: str
    pool: str | None
    status: str


def listed(env_name: str, token: str, manager: Any = None) -> list[Autoscaled]:
    """The environment's autoscaled droplets, by name."""
    manager = manager or sweep.api_manager(token)
    found = []
    for d in sweep.listed(manager, "droplets", "droplets/", {"tag_name": env_tag(env_name)}):
        tags = [str(t) for t in d.get("tags") or []]
        if is_autoscaled(env_name, tags):
            found.append(Autoscaled(int(d["id"]), str(d.get("name")), pool_of(env_name, tags),
                                    str(d.get("status"))))
    return sorted(found, key=lambda a: a.name)


def stale(env_name: str, autoscaled_pools: Iterable[str], token: str) -> list[Autoscaled]:
    """The environment's autoscaled droplets no pool of the file autoscales any more (its
    pool lost ``autoscale`` or was removed, or no pool autoscales): no node group holds
    them (the service's settings list only the file's autoscaled pools), so neither the
    cluster-autoscaler nor Terraform would ever delete them."""
    keep = set(autoscaled_pools)
    return [d for d in listed(env_name, token) if d.pool is None or d.pool not in keep]


def delete(token: str, droplets: Iterable[Autoscaled], report: Report, why: str = "") -> None:
    """DELETE each droplet by id (gone already is fine: read() retries, 404 is its answer)."""
    import digitalocean

    from provisioner.cloud import throttle
    from provisioner.cloud.preflight import read

    for droplet in droplets:
        try:
            read(f"droplet {droplet.name}",
                 throttle.watch(digitalocean.Droplet(id=droplet.id, token=token)).destroy)
        except digitalocean.NotFoundError:
            continue  # gone already (the cluster-autoscaler's own delete, a retry)
        report(f"deleted autoscaled droplet {droplet.name}{why}")


# A droplet the service created while it was being stopped shows in a later list.
ROUNDS = 5


def delete_all(env_name: str, token: str, report: Report,
               timeout: float = GONE_TIMEOUT, interval: float = 2.0) -> list[Autoscaled]:
    """Delete every autoscaled droplet of the environment and wait until they are gone;
    list again until a list comes back empty (at most ROUNDS lists), so a droplet created
    while the autoscaler was stopping is not left in the VPC Terraform removes next."""
    manager = sweep.api_manager(token)
    deleted: list[Autoscaled] = []
    deadline = time.monotonic() + timeout
    for _ in range(ROUNDS):
        doomed = listed(env_name, token, manager)
        if not doomed:
            return deleted
        delete(token, doomed, report)
        deleted += doomed
        _wait_gone(env_name, manager, {d.id for d in doomed}, deadline, timeout, interval)
    left = listed(env_name, token, manager)
    if left:
        names = ", ".join(d.name for d in left)
        raise ProvisionError(f"autoscaled droplets keep appearing ({names} after {ROUNDS} "
                             "rounds of deletes): is a node autoscaler still "
                             "running? Stop it (scale provision-system's Deployments to 0) and "
                             "run `provision destroy` again; nothing else was destroyed")
    return deleted


def _wait_gone(env_name: str, manager: Any, ids: set[int], deadline: float, timeout: float,
               interval: float) -> None:
    while ids:
        present = {int(d["id"]) for d in sweep.listed(manager, "droplets", "droplets/",
                                                      {"tag_name": env_tag(env_name)})}
        ids &= present
        if not ids:
            return
        if time.monotonic() >= deadline:
            raise ProvisionError(f"autoscaled droplets still present after {timeout:.0f} s "
                                 f"(ids {sorted(ids)}); nothing else was destroyed, run "
                                 "`provision destroy` again")
        time.sleep(interval)
