"""terraform.tfvars.json: the only way config values reach the Terraform module.

JSON is a serializer, not a template: whatever a value holds, Terraform reads it back as the
same string, so no user input can become HCL.
"""

from __future__ import annotations

import json
from typing import Any

from provisioner.config.model import Environment
from provisioner.render.cloudinit import UserData
from provisioner.render.firewall import all_rules
from provisioner.render.markers import segments
from provisioner.render.names import config_hash


def tfvars(env: Environment, user_data: list[UserData]) -> dict[str, Any]:
    """The module's input values for this environment."""
    do = env.digitalocean
    return {
        "name": env.name,
        "region": do.region,
        "image": do.base_image,
        # terraform/image.tf resolves the name to the snapshot's id in the region.
        "image_snapshot": do.snapshot or "",
        "ssh_keys": list(do.ssh_keys),
        "tags": list(do.tags),
        "vpc_cidr": do.vpc_cidr,
        "project": do.project or "",
        "controller_count": env.control_plane.count,
        "controller_size": env.control_plane.size,
        "api_endpoint": env.control_plane.endpoint,
        "worker_pools": {p.name: {"count": p.count, "size": p.size} for p in env.worker_pools},
        "firewall": {role: [r.as_tfvar() for r in rules]
                     for role, rules in all_rules(env).items()},
        "user_data": {u.role: segments(u.text) for u in user_data},
        "node_config_hash": {u.role: config_hash(u.text) for u in user_data},
    }


def dumps(values: dict[str, Any]) -> str:
    """Stable JSON text: sorted keys, so the same config gives the same bytes."""
    return json.dumps(values, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
