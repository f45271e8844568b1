"""Droplet names, computed exactly as the Terraform module computes them.

Workers are named ``<env>-<pool>-<n>-<generation>``, the generation being the first five hex
digits of the SHA-256 of their pool's secret-free cloud-init: the module's
``substr(var.node_config_hash[...], 0, 5)``. A new configuration therefore brings new
hostnames, which lets a replacement join while the droplet it replaces is still a node.
"""

from __future__ import annotations

import hashlib

from provisioner import lb_names
from provisioner.config.model import Environment
from provisioner.render import cloudinit

GENERATION_DIGITS = 5


def config_hash(text: str) -> str:
    """The hash the module receives as ``node_config_hash``."""
    return hashlib.sha256(text.encode()).hexdigest()


def controller_names(env: Environment) -> list[str]:
    """``<env>-cp-1`` ... in join order."""
    return [f"{env.name}-cp-{i + 1}" for i in range(env.control_plane.count)]


def worker_names(env: Environment) -> dict[str, list[str]]:
    """Worker droplet names by pool."""
    names = {}
    for pool in env.worker_pools:
        generation = config_hash(cloudinit.worker(env, pool).text)[:GENERATION_DIGITS]
        names[pool.name] = [f"{env.name}-{pool.name}-{i + 1}-{generation}"
                            for i in range(pool.count)]
    return names


def all_names(env: Environment) -> set[str]:
    """Every droplet the environment runs."""
    return set(controller_names(env)).union(*worker_names(env).values())


def resource_names(env: Environment) -> dict[str, str]:
    """Terraform address -> the name a person recognises, for every resource of the module."""
    names = {f"digitalocean_droplet.controllers[{i}]": name
             for i, name in enumerate(controller_names(env))}
    for pool, workers in worker_names(env).items():
        for i, name in enumerate(workers):
            names[f'digitalocean_droplet.workers["{pool}-{i + 1}"]'] = name
            names[f'terraform_data.worker_config["{pool}-{i + 1}"]'] = name
    names.update({
        "digitalocean_vpc.network": f"{env.name}-vpc",
        "digitalocean_firewall.controllers": f"{env.name}-controllers",
        "digitalocean_firewall.workers": f"{env.name}-workers",
        "digitalocean_tag.cluster": f"provision:{env.name}",
        "digitalocean_tag.controllers": f"provision:{env.name}:controller",
        "digitalocean_tag.workers": f"provision:{env.name}:worker",
        "digitalocean_reserved_ip.api[0]": f"{env.name} API endpoint",
        "digitalocean_loadbalancer.api[0]": lb_names.api_load_balancer(env.name),
        "digitalocean_project_resources.this[0]": env.digitalocean.project or "default",
    })
    return names
