"""What of an environment the account bills, and the account's own droplet prices.

Ownership is decided as `cloud/ownership.py` decides it (exact tags and names, never a
prefix): droplets carrying ``provision:<name>`` (the autoscaler's carry it too, and
``provision:<name>:autoscaled`` besides: both tags are listed, so one missing the other is
still counted), load balancers `Identity.lb_is_ours` accepts, reserved IPs held by our
droplets or the address the last `up` recorded, volumes tagged ours or attached to our
droplets (the CSI driver's carry no environment tag; a detached untagged one cannot be
told from another environment's and is not counted).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from provisioner.cloud.ownership import identity
from provisioner.cloud.preflight import read
from provisioner.cloud.sweep import api_manager, listed
from provisioner.cloud.tags import autoscaled_tag
from provisioner.config.model import Environment
from provisioner.cost.estimate import Running


def size_prices(token: str) -> dict[str, Decimal]:
    """price_monthly of every size /v2/sizes lists (the account's own prices)."""
    manager = api_manager(token)
    prices = {}
    for size in listed(manager, "sizes", "sizes"):
        price = size.get("price_monthly")
        if isinstance(price, int | float) and not isinstance(price, bool):
            prices[str(size.get("slug"))] = Decimal(str(price))
    return prices


def running(env: Environment, token: str, floating_ip: str | None = None) -> Running:
    """The environment's billed resources now (``floating_ip``: the recorded address)."""
    manager = api_manager(token)
    me = identity(env)
    scaled = autoscaled_tag(env.name)
    controllers = f"{me.tag}:controller"
    droplets: dict[int, dict[str, Any]] = {}
    for tag in (me.tag, scaled):
        for droplet in listed(manager, "droplets", "droplets", {"tag_name": tag}):
            droplets[int(droplet["id"])] = droplet
    rows = []
    for droplet in sorted(droplets.values(), key=lambda d: str(d.get("name"))):
        tags = droplet.get("tags") or []
        role = ("control plane" if controllers in tags
                else "autoscaled workers" if scaled in tags else "workers")
        size = str(droplet.get("size_slug") or (droplet.get("size") or {}).get("slug") or "?")
        rows.append((role, str(droplet.get("name")), size))
    ours = set(droplets)
    balancers = []
    for lb in listed(manager, "load balancers", "load_balancers"):
        if me.lb_is_ours(str(lb.get("name")), lb.get("tag"), lb.get("droplet_ids") or [],
                         ours):
            balancers.append((str(lb.get("name")), int(lb.get("size_unit") or 1)))
    ips = []
    for ip in read("floating IPs", manager.get_all_floating_ips):
        holder = int((ip.droplet or {}).get("id") or 0)
        if holder in ours:
            ips.append((str(ip.ip), True))
        elif floating_ip and str(ip.ip) == floating_ip and not holder:
            ips.append((str(ip.ip), False))
    volumes = []
    for volume in listed(manager, "volumes", "volumes"):
        attached = {int(d) for d in volume.get("droplet_ids") or []}
        if me.tag in (volume.get("tags") or []) or (attached and attached <= ours):
            volumes.append((str(volume.get("name")), int(volume.get("size_gigabytes") or 0)))
    return Running(droplets=tuple(rows), load_balancers=tuple(balancers),
                   reserved_ips=tuple(ips), volumes=tuple(volumes),
                   spaces=env.backups.bucket if env.backups else None)
