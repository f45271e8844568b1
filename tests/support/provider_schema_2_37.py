"""The DigitalOcean provider's schema at v2.37.0, DERIVED FROM SOURCE, not dumped.

No ``terraform providers schema -json`` output of a release with global load balancers
can be had offline, so this takes the v2.34.1 dump (tests/data/README.md) and changes
exactly what ``digitalocean/loadbalancer/resource_loadbalancer.go`` changes between tags
v2.34.1 and v2.37.0 of digitalocean/terraform-provider-digitalocean (v2.37.0 is commit
5f23ec94382911a68470189557d1b92ea13dc369; its CHANGELOG: "#1133 Add config options for
global load balancers", the first release with ``glb_settings``). Every other resource
and data source stays as 2.34.1 dumped it, which may not be what 2.37.0 declares for
them: only ``digitalocean_loadbalancer`` is meant to be judged by this schema.

How an SDKv2 ``schema.Schema`` becomes the JSON below (hashicorp/terraform-plugin-sdk v2,
``helper/schema/core_schema.go``): a ``*Resource`` element is a nested block unless it
is computed-only (then an attribute); a block's ``min_items`` is 0 when it is
``Optional`` (even with ``MinItems: 1``: "Historically helper/schema would ignore MinItems
if Optional were set"); ``Default`` makes no attribute computed; ``Deprecated`` sets
``deprecated: true``; ``TypeInt`` is ``number``.

``python -m tests.support.provider_schema_2_37 >
tests/data/digitalocean-provider-schema-2.37.0-derived.json`` writes the file;
tests/contract/test_global_lb_module.py checks it equals :func:`derive`.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1] / "data"
BASE = DATA / "digitalocean-provider-schema-2.34.1.json"
DERIVED = DATA / "digitalocean-provider-schema-2.37.0-derived.json"
PROVIDER = "registry.terraform.io/digitalocean/digitalocean"
SOURCE = ("digitalocean/terraform-provider-digitalocean v2.37.0, "
          "digitalocean/loadbalancer/resource_loadbalancer.go")


def _attr(kind: Any, description: str = "", **flags: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"type": kind}
    if description:
        out["description"] = description
    out["description_kind"] = "plain"
    out.update({k: True for k, v in flags.items() if v})
    return out


def _block(attributes: dict[str, Any], blocks: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {"attributes": attributes}
    if blocks:
        out["block_types"] = blocks
    out["description_kind"] = "plain"
    return out


def derive(base: dict[str, Any]) -> dict[str, Any]:
    """The 2.34.1 dump with v2.37.0's load balancer schema changes (line numbers are in
    resource_loadbalancer.go at v2.37.0)."""
    doc = copy.deepcopy(base)
    lb = doc["provider_schemas"][PROVIDER]["resource_schemas"]["digitalocean_loadbalancer"]
    block = lb["block"]
    # l.195-204 "algorithm": Deprecated: "This field has been deprecated..." (#1127).
    block["attributes"]["algorithm"]["deprecated"] = True
    # l.206-210 "forwarding_rule": TypeSet, Optional (was Required), MinItems 1,
    # ConflictsWith glb_settings: an Optional block has min_items 0.
    block["block_types"]["forwarding_rule"].pop("min_items", None)
    # l.445-486 "domains": TypeSet, Optional, Computed, MinItems 1 -> block, min 0.
    block["block_types"]["domains"] = {
        "nesting_mode": "set",
        "block": {**_block({
            # l.453: TypeString, Required, NoZeroValues
            "name": _attr("string", "domain name", required=True),
            # l.459: TypeBool, Optional, Default false
            "is_managed": _attr("bool", "flag indicating if domain is managed by DigitalOcean",
                                optional=True),
            # l.465: TypeString, Optional, Computed
            "certificate_name": _attr("string", "name of certificate required for TLS "
                                      "handshaking", optional=True, computed=True),
            # l.472, l.478: TypeList of TypeString, Computed
            "verification_error_reasons": _attr(["list", "string"],
                                                "list of domain verification errors",
                                                computed=True),
            "ssl_validation_error_reasons": _attr(["list", "string"],
                                                  "list of domain SSL validation errors",
                                                  computed=True),
        }), "description": "the list of domains required to ingress traffic to global load "
                           "balancer"},
    }
    # l.488-530 "glb_settings": TypeList, Optional, Computed, MaxItems 1,
    # ConflictsWith forwarding_rule -> block, max 1.
    block["block_types"]["glb_settings"] = {
        "nesting_mode": "list",
        "block": {**_block({
            # l.497: TypeString, Required, StringInSlice http/https
            "target_protocol": _attr("string", "target protocol rules", required=True),
            # l.506: TypeInt, Required, IntInSlice 80/443
            "target_port": _attr("number", "target port rules", required=True),
        }, {
            # l.512: TypeList, Optional, MaxItems 1 -> block, max 1
            "cdn": {"nesting_mode": "list", "block": {**_block({
                # l.519: TypeBool, Optional, Default false
                "is_enabled": _attr("bool", "cache enable flag", optional=True),
            }), "description": "CDN specific configurations"}, "max_items": 1},
        }), "description": "configuration options for global load balancer"},
        "max_items": 1,
    }
    # l.532-538 "target_load_balancer_ids": TypeSet of TypeString, Optional, Computed.
    block["attributes"]["target_load_balancer_ids"] = _attr(
        ["set", "string"], "list of load balancer IDs to put behind a global load balancer",
        optional=True, computed=True)
    return doc


def derived_text() -> str:
    """The stored file's exact text."""
    base = json.loads(BASE.read_text(encoding="utf-8"))
    return json.dumps(derive(base), sort_keys=True, separators=(",", ":")) + "\n"


if __name__ == "__main__":
    sys.stdout.write(derived_text())
