"""After-the-fact accounting: what of an environment is still in the DigitalOcean account.

Used twice by `provision destroy`: to wait until the cluster's controllers have removed the
load balancers and volumes they made (before the droplets go), and, around Terraform, to list
(and with --sweep delete) what the environment provably owns: exact tags and ids only, never a
name prefix (cloud/ownership.py). Tags are never deleted: deleting one untags every resource
that carries it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from provisioner.cloud.ownership import identity
from provisioner.cloud.preflight import read
from provisioner.config.model import Environment

Report = Callable[[str], None]


@dataclass
class Leftovers:
    """Resources of the environment still in the account, by kind: (id, name)."""

    droplets: list[tuple[str, str]] = field(default_factory=list)
    load_balancers: list[tuple[str, str]] = field(default_factory=list)
    volumes: list[tuple[str, str]] = field(default_factory=list)
    floating_ips: list[tuple[str, str]] = field(default_factory=list)
    firewalls: list[tuple[str, str]] = field(default_factory=list)
    # Named like ours but not provably ours (no target left to compare): shown, never deleted.
    unproven: list[str] = field(default_factory=list)

    def _kinds(self) -> tuple[tuple[str, list[tuple[str, str]]], ...]:
        return (("load balancer", self.load_balancers), ("droplet", self.droplets),
                ("volume", self.volumes), ("floating IP", self.floating_ips),
                ("firewall", self.firewalls))

    def empty(self) -> bool:
        """Nothing of ours left (what is only named like ours does not count)."""
        return not any(items for _, items in self._kinds())

    def describe(self) -> list[str]:
        """One line per resource."""
        return [f"{kind} {name} ({rid})" for kind, items in self._kinds() for rid, name in items]

    def keys(self) -> set[str]:
        """``kind:id`` of every resource, for recording exactly what was found."""
        return {f"{kind}:{rid}" for kind, items in self._kinds() for rid, _ in items}

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


def leftovers(env: Environment, token: str, floating_ip: str | None = None,
              known: frozenset[str] = frozenset()) -> Leftovers:
    """Everything the environment provably owns in the account (see cloud/ownership.py).

    ``floating_ip`` is the address the environment's state recorded; ``known`` holds the
    ``kind:id`` keys proven ours earlier. Destroy needs them: Terraform's destroy of the
    environment's tag untags every droplet still carrying it, and takes our droplets out of
    the load balancers that targeted them, so after it only ids are left to go by.
    """
    manager = _manager(token)
    me = identity(env)
    found = Leftovers()
    # Unfiltered when ids are known: an untagged stray is found by its id.
    droplets = read("droplets", lambda: manager.get_all_droplets(
        tag_name=None if known else me.tag))
    ours = set()
    for droplet in droplets:
        if me.tag in (droplet.tags or []) or f"droplet:{droplet.id}" in known:
            found.droplets.append((str(droplet.id), droplet.name))
            ours.add(int(droplet.id))
    for lb in read("load balancers", manager.get_all_load_balancers):
        if (f"load balancer:{lb.id}" in known
                or me.lb_is_ours(lb.name, getattr(lb, "tag", None), lb.droplet_ids or [], ours)):
            found.load_balancers.append((str(lb.id), lb.name))
        elif lb.name in me.load_balancers:
            found.unproven.append(f"load balancer {lb.name} ({lb.id})")
    for volume in read("volumes", manager.get_all_volumes):
        if me.tag in (getattr(volume, "tags", None) or []) or f"volume:{volume.id}" in known:
            found.volumes.append((str(volume.id), volume.name))
    for ip in read("floating IPs", manager.get_all_floating_ips):
        holder = int((ip.droplet or {}).get("id") or 0)
        recorded = ip.ip == floating_ip or f"floating IP:{ip.ip}" in known
        if holder in ours or (recorded and not holder):
            found.floating_ips.append((ip.ip, ip.ip))
        elif recorded:
            # An address is a reserved IP's only identity, and a released one goes back to
            # DigitalOcean's pool: held by a droplet that is not ours, it is someone else's.
            found.unproven.append(f"floating IP {ip.ip} (on droplet {holder}, not one of "
                                  "this environment's)")
    for firewall in read("firewalls", manager.get_all_firewalls):
        if (me.firewall_is_ours(firewall.name, firewall.tags or [])
                or f"firewall:{firewall.id}" in known):
            found.firewalls.append((str(firewall.id), firewall.name))
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
    for rid, name in found.firewalls:
        digitalocean.Firewall(id=rid, token=token).destroy()
        report(f"deleted firewall {name}")
