"""After-the-fact accounting: what of an environment is still in the DigitalOcean account.

Used twice by `provision destroy`: to wait until the cluster's controllers have removed the
load balancers and volumes they made (before the droplets go), and, after Terraform, to list
(and with --sweep delete) anything still tagged or named for the environment.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.config.model import Environment

Report = Callable[[str], None]


@dataclass
class Leftovers:
    """Resources still in the account, by kind: (id, name)."""

    droplets: list[tuple[str, str]] = field(default_factory=list)
    load_balancers: list[tuple[str, str]] = field(default_factory=list)
    volumes: list[tuple[str, str]] = field(default_factory=list)
    floating_ips: list[tuple[str, str]] = field(default_factory=list)

    def empty(self) -> bool:
        """Nothing left."""
        return not (self.droplets or self.load_balancers or self.volumes or self.floating_ips)

    def describe(self) -> list[str]:
        """One line per resource."""
        return [f"{kind} {name} ({rid})" for kind, items in (
            ("droplet", self.droplets), ("load balancer", self.load_balancers),
            ("volume", self.volumes), ("floating IP", self.floating_ips)) for rid, name in items]


def _manager(token: str) -> Any:
    import digitalocean

    return digitalocean.Manager(token=token)


def wait_released(token: str, load_balancers: list[str], volumes: list[str], timeout: float,
                  report: Report, interval: float = 2.0) -> list[str]:
    """Until the named load balancers and volumes are gone; what remains at the deadline."""
    manager = _manager(token)
    deadline = time.monotonic() + timeout
    while True:
        names = {lb.name for lb in manager.get_all_load_balancers()}
        volume_names = {v.name for v in manager.get_all_volumes()}
        remaining = ([f"load balancer {n}" for n in load_balancers if n in names]
                     + [f"volume {v}" for v in volumes if v in volume_names])
        if not remaining:
            if load_balancers or volumes:
                report("the cluster's load balancers and volumes are gone")
            return []
        if time.monotonic() >= deadline:
            return remaining
        report("waiting for the cluster to remove " + ", ".join(remaining))
        time.sleep(interval)


def leftovers(env: Environment, token: str, floating_ip: str | None = None) -> Leftovers:
    """Everything still tagged ``provision:<name>`` or named after the environment."""
    manager = _manager(token)
    found = Leftovers()
    tag = f"provision:{env.name}"
    for droplet in manager.get_all_droplets(tag_name=tag):
        found.droplets.append((str(droplet.id), droplet.name))
    for lb in manager.get_all_load_balancers():
        if lb.name.startswith(f"{env.name}-") or tag in (getattr(lb, "tag", "") or ""):
            found.load_balancers.append((str(lb.id), lb.name))
    for volume in manager.get_all_volumes():
        tags = getattr(volume, "tags", None) or []
        if tag in tags:
            found.volumes.append((str(volume.id), volume.name))
    if floating_ip:
        for ip in manager.get_all_floating_ips():
            if ip.ip == floating_ip:
                found.floating_ips.append((ip.ip, ip.ip))
    return found


def sweep(token: str, found: Leftovers, report: Report) -> None:
    """Delete everything listed."""
    import digitalocean

    for rid, name in found.load_balancers:
        digitalocean.LoadBalancer(id=rid, token=token).destroy()
        report(f"deleted load balancer {name}")
    for rid, name in found.droplets:
        digitalocean.Droplet(id=int(rid), token=token).destroy()
        report(f"deleted droplet {name}")
    for rid, name in found.volumes:
        digitalocean.Volume(id=rid, token=token).destroy()
        report(f"deleted volume {name}")
    for ip, _ in found.floating_ips:
        digitalocean.FloatingIP(ip=ip, token=token).destroy()
        report(f"released floating IP {ip}")
