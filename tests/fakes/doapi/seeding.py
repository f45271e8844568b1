"""Put things into the simulated account that Terraform does not create.

* `seed()`: the account profile, the region/size catalogue and SSH keys, for accounts
  that do not exist yet or were created by the fake provider (which stores none of it);
* `add_load_balancer()` / `add_volume()`: objects that the Kubernetes cloud controller
  manager and CSI driver would create through the API in a later stage.

Records are stored in the provider's tables and attribute names (`digitalocean_ssh_key`,
`digitalocean_loadbalancer`, `digitalocean_volume`), so `terraform import` and the fake
provider's data sources see them exactly as the HTTP API does.
"""

from __future__ import annotations

import binascii
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from tests.fakes.doprovider.cloud import Account, Cloud, new_uuid, now_rfc3339
from tests.fakes.doprovider.resources import ipam
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION
from tests.fakes.doprovider.resources.compute import default_vpc, ensure_tags, ssh_fingerprint

from . import catalog

SSH_KEYS = "digitalocean_ssh_key"
LOAD_BALANCERS = "digitalocean_loadbalancer"
VOLUMES = "digitalocean_volume"
DROPLETS = "digitalocean_droplet"

SshKeys = Mapping[str, str] | Iterable[tuple[str, str]]


def as_cloud(target: Cloud | Path | str) -> Cloud:
    """A `Cloud` for an account file path (or the Cloud itself)."""
    return target if isinstance(target, Cloud) else Cloud(Path(target))


def log_api_event(account: Account, op: str, type_name: str, rid: str, name: Any) -> None:
    """Audit-log entry like the provider's, marked `via: "api"`.

    The marker lets tests tell Terraform's own creates/deletes from the API's
    (`[e for e in events if e.get("via") != "api"]`) without a second log.
    """
    account.log(op, type_name, rid, name)
    account.data["events"][-1]["via"] = "api"


def generate_ssh_public_key(comment: str = "sim@example.com") -> str:
    """A fresh, valid OpenSSH ed25519 public key line (the provider checks the format)."""
    key = ed25519.Ed25519PrivateKey.generate().public_key()
    blob = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    return f"{blob.decode()} {comment}"


def seed(
    target: Cloud | Path | str,
    *,
    regions: Iterable[str] | None = None,
    sizes: Iterable[str] | None = None,
    ssh_keys: SshKeys = (),
    droplet_limit: int | None = None,
    profile: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Write the profile, catalogue and SSH keys into the account file (created if missing).

    `regions` / `sizes` are slugs the fake provider knows; given, they replace the
    stored list (sizes are offered in every available seeded region), omitted, the
    stored or default list is written. Legacy regions (nyc2, sfo1, ams2) are listed
    unavailable, like the real API. `ssh_keys` maps names to OpenSSH public keys; a key
    already in the account is kept, not duplicated. Returns the seeded keys' records.
    """
    with as_cloud(target).transaction() as account:
        stored_regions, stored_sizes = catalog.stored_catalog(account)
        region_list = (
            [catalog.region_entry(slug) for slug in dict.fromkeys(regions)]
            if regions is not None
            else stored_regions
        )
        if sizes is not None or regions is not None:
            offered = [r["slug"] for r in region_list if r["available"]]
            slugs = (
                list(dict.fromkeys(sizes))
                if sizes is not None
                else [s["slug"] for s in stored_sizes]
            )
            stored_sizes = [catalog.size_entry(slug, offered) for slug in slugs]
        account.data["catalog"] = {"regions": region_list, "sizes": stored_sizes}

        prof = {**account.data.get("account", {}), **(profile or {})}
        if droplet_limit is not None:
            prof["droplet_limit"] = droplet_limit
        account.data["account"] = {**catalog.DEFAULT_PROFILE, **prof}

        pairs = ssh_keys.items() if isinstance(ssh_keys, Mapping) else ssh_keys
        return [_add_ssh_key(account, name, public_key) for name, public_key in pairs]


def _add_ssh_key(account: Account, name: str, public_key: str) -> dict[str, Any]:
    """Store a key as the provider's SshKey.build would (same id counter, fingerprint)."""
    try:
        fingerprint = ssh_fingerprint(public_key)
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"ssh key {name!r} is not an OpenSSH public key: {exc}") from exc
    for existing in account.table(SSH_KEYS).values():
        if existing.get("fingerprint") == fingerprint:
            return dict(existing)
    record = {
        "id": str(account.next_counter("ssh_key", 41000001)),
        "name": name,
        "public_key": public_key.strip(),
        "fingerprint": fingerprint,
    }
    account.put(SSH_KEYS, record)
    return dict(record)


def _into_default_project(account: Account, urn: str) -> None:
    # Objects created outside Terraform land in the default project, as on DigitalOcean.
    project = account.default_project()
    project["resources"] = sorted({*(project.get("resources") or []), urn})


def add_load_balancer(
    account: Account,
    name: str,
    tags: Iterable[str] = (),
    *,
    region: str = DEFAULT_REGION,
    droplet_ids: Iterable[int] = (),
    entry_port: int = 80,
    target_port: int = 30080,
) -> dict[str, Any]:
    """Store a TCP load balancer like one the cloud controller manager creates."""
    lb_id = new_uuid()
    record: dict[str, Any] = {
        "id": lb_id,
        "name": name,
        "region": region,
        "type": "REGIONAL",
        "size": "lb-small",
        "size_unit": 1,
        "algorithm": "round_robin",
        "status": "active",
        "ip": ipam.public_ipv4(account, "loadbalancer"),
        "urn": f"do:loadbalancer:{lb_id}",
        "droplet_ids": sorted(int(d) for d in droplet_ids),
        "droplet_tag": None,
        "vpc_uuid": default_vpc(account, region)["id"],
        "project_id": account.default_project()["id"],
        "forwarding_rule": [
            {
                "entry_protocol": "tcp",
                "entry_port": entry_port,
                "target_protocol": "tcp",
                "target_port": target_port,
                "certificate_id": "",
                "certificate_name": "",
                "tls_passthrough": False,
            }
        ],
        "healthcheck": [
            {
                "protocol": "tcp",
                "port": target_port,
                "path": "",
                "check_interval_seconds": 3,
                "response_timeout_seconds": 5,
                "unhealthy_threshold": 3,
                "healthy_threshold": 5,
            }
        ],
        "sticky_sessions": [{"type": "none", "cookie_name": "", "cookie_ttl_seconds": 0}],
        "firewall": [],
        "redirect_http_to_https": False,
        "enable_proxy_protocol": False,
        "enable_backend_keepalive": False,
        "disable_lets_encrypt_dns_records": False,
        "http_idle_timeout_seconds": 60,
        # Not in the provider schema (its reads drop it); the API reports it.
        "tags": list(tags),
        "created_at": now_rfc3339(),
    }
    ensure_tags(account, record["tags"])
    account.put(LOAD_BALANCERS, record)
    _into_default_project(account, record["urn"])
    log_api_event(account, "create", LOAD_BALANCERS, lb_id, name)
    return record


def add_volume(
    account: Account,
    name: str,
    size_gib: int,
    tags: Iterable[str] = (),
    *,
    region: str = DEFAULT_REGION,
    droplet_ids: Iterable[int] = (),
) -> dict[str, Any]:
    """Store a block storage volume like one the CSI driver creates (maybe attached)."""
    vol_id = new_uuid()
    attached = sorted(int(d) for d in droplet_ids)
    for did in attached:
        droplet = account.get(DROPLETS, str(did))
        if droplet is None:
            raise ValueError(f"droplet {did} does not exist")
        droplet["volume_ids"] = sorted({*(droplet.get("volume_ids") or []), vol_id})
    record: dict[str, Any] = {
        "id": vol_id,
        "name": name,
        "region": region,
        "size": size_gib,
        "description": "",
        "droplet_ids": attached,
        "filesystem_type": "ext4",
        "filesystem_label": "",
        "initial_filesystem_type": None,
        "initial_filesystem_label": None,
        "snapshot_id": None,
        "tags": list(tags),
        "urn": f"do:volume:{vol_id}",
        "created_at": now_rfc3339(),
    }
    ensure_tags(account, record["tags"])
    account.put(VOLUMES, record)
    _into_default_project(account, record["urn"])
    log_api_event(account, "create", VOLUMES, vol_id, name)
    return record
