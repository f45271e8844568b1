"""Droplet names, computed exactly as the Terraform module computes them.

Workers are keyed ``<pool>-<n>-<generation>`` and named ``<env>-<key>``, the generation
being the first five hex digits of the SHA-256 of what a replacement must carry: the JSON
array of the pool's secret-free cloud-init hash, its size and the image (the module's
``local.worker_generation``). A new configuration therefore brings new keys and hostnames,
which lets a replacement join while the droplet it replaces is still a node.
"""

from __future__ import annotations

import hashlib
import json

from provisioner import lb_names
from provisioner.config.model import Environment, WorkerPool
from provisioner.render import cloudinit

GENERATION_DIGITS = 5


def config_hash(text: str) -> str:
    """The hash the module receives as ``node_config_hash``."""
    return hashlib.sha256(text.encode()).hexdigest()


def controller_names(env: Environment) -> list[str]:
    """``<env>-cp-1`` ... in join order."""
    return [f"{env.name}-cp-{i + 1}" for i in range(env.control_plane.count)]


def worker_generation(env: Environment, pool: WorkerPool) -> str:
    """The module's ``local.worker_generation[pool]`` (its ``jsonencode`` has no spaces)."""
    carried = [config_hash(cloudinit.worker(env, pool).text), pool.size, env.digitalocean.image]
    text = json.dumps(carried, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:GENERATION_DIGITS]


def worker_keys(env: Environment) -> dict[str, list[str]]:
    """Worker instance keys (``<pool>-<n>-<generation>``) by pool."""
    keys = {}
    for pool in env.worker_pools:
        generation = worker_generation(env, pool)
        keys[pool.name] = [f"{pool.name}-{i + 1}-{generation}" for i in range(pool.count)]
    return keys


def worker_names(env: Environment) -> dict[str, list[str]]:
    """Worker droplet names by pool."""
    return {pool: [f"{env.name}-{key}" for key in keys]
            for pool, keys in worker_keys(env).items()}


def all_names(env: Environment) -> set[str]:
    """Every droplet the environment runs."""
    return set(controller_names(env)).union(*worker_names(env).values())


def resource_names(env: Environment) -> dict[str, str]:
    """Terraform address -> the name a person recognises, for every resource of the module."""
    names = {f"digitalocean_droplet.controllers[{i}]": name
             for i, name in enumerate(controller_names(env))}
    for keys in worker_keys(env).values():
        for key in keys:
            names[f'digitalocean_droplet.workers["{key}"]'] = f"{env.name}-{key}"
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
