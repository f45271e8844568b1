"""Droplet names, computed exactly as the Terraform module computes them.

Workers are named ``<env>-<pool>-<n>-<generation>``, the generation being the first five hex
digits of the SHA-256 of their pool's secret-free cloud-init: the module's
``substr(var.node_config_hash[...], 0, 5)``. A new configuration therefore brings new
hostnames, which lets a replacement join while the droplet it replaces is still a node.
"""

from __future__ import annotations

import hashlib

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
