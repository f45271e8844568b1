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

from provisioner.cloud import throttle
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
    # `provision image build` droplets (tag provision:<name>:image-build): no nodes.
    image_builders: list[tuple[str, str]] = field(default_factory=list)
    # Named like ours but not provably ours (no target left to compare): shown, never deleted.
    unproven: list[str] = field(default_factory=list)

    def _kinds(self) -> tuple[tuple[str, list[tuple[str, str]]], ...]:
        return (("load balancer", self.load_balancers), ("droplet", self.droplets),
                ("volume", self.volumes), ("floating IP", self.floating_ips),
                ("firewall", self.firewalls), ("image build droplet", self.image_builders))

    def empty(self) -> bool:
        """Nothing of ours left (what is only named like ours does not count)."""
        return not any(items for _, items in self._kinds())

    def describe(self) -> list[str]:
        """One line per resource."""
        return [f"{kind} {name} ({rid})" for kind, items in self._kinds() for rid, name in items]

    def keys(self) -> set[str]:
        """``kind:id`` of every resource, for recording exactly what was found."""
        return {f"{kind}:{rid}" for kind, items in self._kinds() for rid, _ in items}

def api_manager(token: str) -> Any:
    """A python-digitalocean Manager whose answers feed the rate-limit watch (throttle.py)."""
    import digitalocean

    return throttle.watch(digitalocean.Manager(token=token))


Item = dict[str, Any]


def listed(manager: Any, what: str, path: str, params: dict[str, str] | None = None
            ) -> list[Item]:
    """Every item of one list, all pages, or an error (retried by ``read``).

    python-digitalocean follows ``links.pages.next`` without checking the answers
    (digitalocean/baseapi.py ``__deal_with_pagination``, 1.16 and 1.17): a later page
    answered 429 or 5xx is merged in as ``id``/``message`` and ends the list, so a list cut
    short looks whole. Ownership decided on it would miss what the later pages hold.
    """
    import digitalocean

    key = path.rstrip("/")

    def fetch() -> list[Item]:
        data = manager.get_data(path, params=dict(params or {}))
        items = data.get(key) if isinstance(data, dict) else None
        total = (data.get("meta") or {}).get("total") if isinstance(data, dict) else None
        if (not isinstance(items, list) or "message" in data
                or (isinstance(total, int) and len(items) < total)):
            cause = data.get("message") if isinstance(data, dict) else None
            raise digitalocean.DataReadError(
                f"the list came back incomplete ({cause or 'too many requests'}; "
                f"{len(items or [])} of {total})")
        return [item for item in items if isinstance(item, dict)]

    return read(what, fetch)


def wait_released(token: str, load_balancers: list[str], volumes: list[str], timeout: float,
                  report: Report, interval: float = 2.0) -> list[str]:
    """Until the named load balancers and volumes are gone; what remains at the deadline."""
    manager = api_manager(token)
    deadline = time.monotonic() + timeout
    while True:
        names = {lb.get("name") for lb in listed(manager, "load balancers", "load_balancers")}
        volume_names = {v.get("name") for v in listed(manager, "volumes", "volumes")}
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
    manager = api_manager(token)
    me = identity(env)
    found = Leftovers()
    # Unfiltered when ids are known: an untagged stray is found by its id.
    droplets = listed(manager, "droplets", "droplets/", None if known else {"tag_name": me.tag})
    ours = set()
    for droplet in droplets:
        if me.tag in (droplet.get("tags") or []) or f"droplet:{droplet['id']}" in known:
            found.droplets.append((str(droplet["id"]), str(droplet.get("name"))))
            ours.add(int(droplet["id"]))
    # A `provision image build` droplet a failed cleanup left behind (exact tag, never
    # another environment's): the environment's, though no node of it.
    builders = (droplets if known else
                listed(manager, "droplets", "droplets/", {"tag_name": me.image_build}))
    for droplet in builders:
        if me.image_build in (droplet.get("tags") or []) and int(droplet["id"]) not in ours:
            found.image_builders.append((str(droplet["id"]), str(droplet.get("name"))))
    for lb in listed(manager, "load balancers", "load_balancers"):
        name = str(lb.get("name"))
        if (f"load balancer:{lb['id']}" in known
                or me.lb_is_ours(name, lb.get("tag"), lb.get("droplet_ids") or [], ours)):
            found.load_balancers.append((str(lb["id"]), name))
        elif name in me.load_balancers:
            found.unproven.append(f"load balancer {name} ({lb['id']})")
    for volume in listed(manager, "volumes", "volumes"):
        if me.tag in (volume.get("tags") or []) or f"volume:{volume['id']}" in known:
            found.volumes.append((str(volume["id"]), str(volume.get("name"))))
    for ip in listed(manager, "floating IPs", "floating_ips"):
        address = str(ip.get("ip"))
        holder = int((ip.get("droplet") or {}).get("id") or 0)
        recorded = address == floating_ip or f"floating IP:{address}" in known
        if holder in ours or (recorded and not holder):
            found.floating_ips.append((address, address))
        elif recorded:
            # An address is a reserved IP's only identity, and a released one goes back to
            # DigitalOcean's pool: held by a droplet that is not ours, it is someone else's.
            found.unproven.append(f"floating IP {address} (on droplet {holder}, not one of "
                                  "this environment's)")
    for firewall in listed(manager, "firewalls", "firewalls"):
        name = str(firewall.get("name"))
        if (me.firewall_is_ours(name, firewall.get("tags") or [])
                or f"firewall:{firewall['id']}" in known):
            found.firewalls.append((str(firewall["id"]), name))
    return found


def sweep(token: str, found: Leftovers, report: Report) -> None:
    """Delete everything listed (each delete waits out the API's rate limit like a read)."""
    import digitalocean

    def delete(what: str, resource: Any) -> None:
        read(what, throttle.watch(resource).destroy)

    for rid, name in found.load_balancers:
        delete(f"load balancer {name}", digitalocean.LoadBalancer(id=rid, token=token))
        report(f"deleted load balancer {name}")
    for rid, name in found.droplets:
        delete(f"droplet {name}", digitalocean.Droplet(id=int(rid), token=token))
        report(f"deleted droplet {name}")
    for rid, name in found.image_builders:
        delete(f"droplet {name}", digitalocean.Droplet(id=int(rid), token=token))
        report(f"deleted image build droplet {name}")
    for rid, name in found.volumes:
        delete(f"volume {name}", digitalocean.Volume(id=rid, token=token))
        report(f"deleted volume {name}")
    for ip, _ in found.floating_ips:
        delete(f"floating IP {ip}", digitalocean.FloatingIP(ip=ip, token=token))
        report(f"released floating IP {ip}")
    for rid, name in found.firewalls:
        delete(f"firewall {name}", digitalocean.Firewall(id=rid, token=token))
        report(f"deleted firewall {name}")
