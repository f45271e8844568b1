"""What an environment has in the account: its droplets by role, and who holds its floating IP."""

from __future__ import annotations

from typing import Any

from provisioner.cloud import throttle
from provisioner.cloud.preflight import read
from provisioner.config.model import Environment
from provisioner.render.names import resource_names


def _node_groups(env: Environment) -> dict[str, dict[str, Any]]:
    """Each autoscaled pool's bounds: Terraform's floor and the node group's range."""
    groups = {}
    for pool in env.worker_pools:
        if pool.autoscale is not None:
            groups[pool.name] = {"node_group": f"{env.name}-{pool.name}",
                                 "min": pool.autoscale.min, "max": pool.autoscale.max,
                                 "group_max": pool.autoscale.group_max, "count": 0,
                                 "droplets": []}
    return groups


def inventory(env: Environment, token: str) -> dict[str, Any]:
    """Droplets by role with state and addresses, and who holds the floating IP.

    The droplets the autoscaler service made (cloud/autoscaled.py) are not among the
    workers: they are listed per pool under ``autoscaled`` with the node group's bounds.
    """
    import digitalocean

    from provisioner.cloud.tags import is_autoscaled, pool_of

    tags = resource_names(env)
    manager = throttle.watch(digitalocean.Manager(token=token))
    droplets = read("droplets", lambda: manager.get_all_droplets(
        tag_name=tags["digitalocean_tag.cluster"]))
    by_id = {}
    roles: dict[str, list[dict[str, Any]]] = {"control-plane": [], "workers": []}
    groups = _node_groups(env)
    for d in sorted(droplets, key=lambda d: d.name):
        role = ("control-plane" if tags["digitalocean_tag.controllers"] in (d.tags or [])
                else "workers")
        listing = roles[role]
        if is_autoscaled(env.name, list(d.tags or [])):
            pool = pool_of(env.name, d.tags) or "?"
            group = groups.setdefault(pool, {"node_group": f"{env.name}-{pool}", "min": None,
                                             "max": None, "group_max": None, "count": 0,
                                             "droplets": []})
            group["count"] += 1
            listing = group["droplets"]
        listing.append({"name": d.name, "id": d.id, "status": d.status,
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
    return {"droplets": roles, "autoscaled": groups, "floating_ip": endpoint,
            "floating_ip_holder": holder}


def app_load_balancers(env: Environment, token: str) -> dict[str, str]:
    """Name -> id of the load balancers the cloud controller manager made for the
    environment's apps exposed through one (named ``<env>.<app>``, lb_names.py), as the
    account lists them now; an app whose load balancer is not made yet is absent."""
    from provisioner.cloud.sweep import api_manager, listed
    from provisioner.lb_names import load_balancer

    wanted = {load_balancer(env.name, a.name) for a in env.apps if a.expose == "load_balancer"}
    if not wanted:
        return {}
    manager = api_manager(token)
    return {str(lb["name"]): str(lb["id"])
            for lb in listed(manager, "load balancers", "load_balancers")
            if lb.get("name") in wanted}

