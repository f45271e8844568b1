"""What an environment has in the account: its droplets by role, and who holds its floating IP."""

from __future__ import annotations

from typing import Any

from provisioner.cloud import throttle
from provisioner.cloud.preflight import read
from provisioner.config.model import Environment
from provisioner.render.names import resource_names


def inventory(env: Environment, token: str) -> dict[str, Any]:
    """Droplets by role with state and addresses, and who holds the floating IP."""
    import digitalocean

    tags = resource_names(env)
    manager = throttle.watch(digitalocean.Manager(token=token))
    droplets = read("droplets", lambda: manager.get_all_droplets(
        tag_name=tags["digitalocean_tag.cluster"]))
    by_id = {}
    roles: dict[str, list[dict[str, Any]]] = {"control-plane": [], "workers": []}
    for d in sorted(droplets, key=lambda d: d.name):
        role = ("control-plane" if tags["digitalocean_tag.controllers"] in (d.tags or [])
                else "workers")
        roles[role].append({"name": d.name, "id": d.id, "status": d.status,
                            "size": d.size_slug, "region": (d.region or {}).get("slug")
                            if isinstance(d.region, dict) else d.region,
                            "public_ip": d.ip_address,
                            "private_ip": d.private_ip_address,
                            # RFC 3339, as the API's droplet object carries it.
                            "created_at": getattr(d, "created_at", None)})
        by_id[int(d.id)] = d.name
    holder = None
    endpoint = None
    for ip in read("floating IPs", manager.get_all_floating_ips):
        droplet = ip.droplet or {}
        if droplet and int(droplet.get("id", 0)) in by_id:
            endpoint, holder = ip.ip, by_id[int(droplet["id"])]
    return {"droplets": roles, "floating_ip": endpoint, "floating_ip_holder": holder}
