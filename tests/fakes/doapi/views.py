"""Account records (provider schema attribute names) -> DigitalOcean API v2 JSON.

This is the one place where the two vocabularies meet: the account file stores what the
Terraform state holds (`ipv4_address`, `forwarding_rule`, `inbound_rule`...), the API
answers with `networks.v4`, `forwarding_rules`, `inbound_rules`... Field sets follow the
public API reference; python-digitalocean builds some nested objects with fixed keyword
arguments (ForwardingRule, HealthCheck, InboundRule), so those carry exactly the keys
the real API sends, no more.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
import zlib
from typing import Any

from tests.fakes.doprovider.cloud import Account
from tests.fakes.doprovider.resources.catalog import DEFAULT_REGION

from . import catalog
from .faults import Faults

Json = dict[str, Any]
_IMAGE_EPOCH = "2024-04-23T14:33:24Z"


class View:
    """Renders one account snapshot; create one per request (inside the transaction)."""

    def __init__(self, account: Account, faults: Faults, origin: str) -> None:
        self.account = account
        self.faults = faults
        self.origin = origin  # "http://127.0.0.1:PORT", for URIs inside bodies
        stored_regions, stored_sizes = catalog.stored_catalog(account)
        self._regions = {r["slug"]: r for r in stored_regions}
        self._sizes = {s["slug"]: s for s in stored_sizes}

    # ------------------------------------------------------------- account, catalogue

    def account_info(self) -> Json:
        """GET /v2/account's `account`."""
        info = catalog.profile(self.account)
        if self.faults.droplet_limit is not None:
            info["droplet_limit"] = self.faults.droplet_limit
        return info

    def _region_available(self, slug: str) -> bool:
        region = self._regions.get(slug)
        return bool(region and region["available"]) and slug not in self.faults.unavailable_regions

    def _size_regions(self, size: Json) -> list[str]:
        return [
            r
            for r in size.get("regions", [])
            if self._region_available(r) and self.faults.offers(r, size["slug"])
        ]

    def regions(self) -> list[Json]:
        """GET /v2/regions: availability and sizes after the failure overlays."""
        return [self.region(slug) for slug in self._regions]

    def region(self, slug: str) -> Json:
        """A region object (also embedded in droplets, IPs, volumes, actions)."""
        # A region missing from a seeded catalogue is still described, as unavailable.
        stored = self._regions.get(slug) or {"name": catalog.REGION_NAMES.get(slug, slug)}
        available = self._region_available(slug)
        sizes = [s for s, size in self._sizes.items() if slug in self._size_regions(size)]
        return {
            "slug": slug,
            "name": stored["name"],
            "features": list(stored.get("features") or []),
            "available": available,
            "sizes": sizes if available else [],
        }

    def sizes(self) -> list[Json]:
        """GET /v2/sizes."""
        return [self.size(slug) for slug in self._sizes]

    def size(self, slug: str) -> Json:
        """A size object; slugs outside the catalogue (pattern-accepted) are derived."""
        stored = self._sizes.get(slug)
        if stored is None:
            try:
                stored = catalog.size_entry(slug, [])
            except ValueError:
                stored = {"slug": slug, "regions": [], "available": False}
            stored["available"] = False
        regions = self._size_regions(stored)
        return {**stored, "regions": regions, "available": bool(stored["available"] and regions)}

    def ssh_key(self, record: Json) -> Json:
        """An `ssh_key`."""
        return {
            "id": int(record["id"]),
            "fingerprint": record.get("fingerprint"),
            "public_key": record.get("public_key"),
            "name": record.get("name"),
        }

    # -------------------------------------------------------------------- droplets

    def droplet(self, record: Json) -> Json:
        """A `droplet`: networks from the stored addresses, size/region objects inlined."""
        region = str(record.get("region") or DEFAULT_REGION)
        features = ["private_networking"]
        for flag in ("backups", "ipv6", "monitoring"):
            if record.get(flag):
                features.append(flag)
        size_slug = str(record.get("size"))
        return {
            "id": int(record["id"]),
            "name": record.get("name"),
            "memory": record.get("memory"),
            "vcpus": record.get("vcpus"),
            "disk": record.get("disk"),
            "locked": bool(record.get("locked")),
            "status": record.get("status") or "active",
            "kernel": None,
            "created_at": record.get("created_at"),
            "features": features,
            "backup_ids": [],
            "next_backup_window": None,
            "snapshot_ids": [],
            "image": self.image(record.get("image"), region),
            "volume_ids": list(record.get("volume_ids") or []),
            "size": self.size(size_slug),
            "size_slug": size_slug,
            "networks": self._networks(record),
            "region": self.region(region),
            "tags": list(record.get("tags") or []),
            "vpc_uuid": record.get("vpc_uuid"),
        }

    def _networks(self, record: Json) -> Json:
        v4 = []
        public = record.get("ipv4_address")
        if public:
            # Droplet public addresses sit in /20s whose first host is the gateway.
            net = ipaddress.IPv4Interface(f"{public}/20").network
            v4.append(_v4(public, net, "public"))
        private = record.get("ipv4_address_private")
        if private:
            vpc = self.account.get("digitalocean_vpc", str(record.get("vpc_uuid")))
            cidr = (vpc or {}).get("ip_range") or f"{private}/20"
            v4.append(_v4(private, ipaddress.IPv4Network(cidr, strict=False), "private"))
        v6 = []
        if record.get("ipv6_address"):
            address = str(record["ipv6_address"])
            gateway = str(ipaddress.IPv6Interface(f"{address}/64").network.network_address + 1)
            v6.append({"ip_address": address, "netmask": 64, "gateway": gateway, "type": "public"})
        return {"v4": v4, "v6": v6}

    def image(self, image: Any, region: str) -> Json:
        """The image a droplet was created from: a public distribution image by slug."""
        text = str(image or "")
        if text.isdigit():  # a snapshot or custom image id
            return {
                "id": int(text), "name": f"snapshot-{text}", "distribution": "Unknown",
                "slug": None, "public": False, "regions": [region], "type": "snapshot",
                "created_at": _IMAGE_EPOCH, "min_disk_size": 25, "size_gigabytes": 5.0,
                "description": "", "tags": [], "status": "available", "error_message": "",
            }  # fmt: skip
        distribution = text.split("-", 1)[0].capitalize() or "Unknown"
        return {
            "id": 100000000 + zlib.crc32(text.encode()) % 10**8,  # stable per slug
            "name": text, "distribution": distribution, "slug": text, "public": True,
            "regions": [r for r in self._regions if self._region_available(r)],
            "type": "base", "created_at": _IMAGE_EPOCH, "min_disk_size": 7,
            "size_gigabytes": 2.36, "description": "", "tags": [], "status": "available",
            "error_message": "",
        }  # fmt: skip

    # ------------------------------------------------------------- networking objects

    def reserved_ip(self, record: Json) -> Json:
        """A `floating_ip` / `reserved_ip` (same object under both names)."""
        droplet = None
        if record.get("droplet_id") is not None:
            found = self.account.get("digitalocean_droplet", str(record["droplet_id"]))
            droplet = self.droplet(found) if found else None
        region = record.get("region") or (droplet or {}).get("region", {}).get("slug")
        return {
            "ip": record.get("ip_address") or record["id"],
            "region": self.region(str(region or DEFAULT_REGION)),
            "droplet": droplet,
            "locked": False,
            "project_id": self.project_of(record.get("urn")),
        }

    def project_of(self, urn: Any) -> str:
        """Id of the project holding `urn` (the default project when none does)."""
        for project in self.account.table("digitalocean_project").values():
            if urn and urn in (project.get("resources") or []):
                return str(project["id"])
        return str(self.account.default_project()["id"])

    def load_balancer(self, record: Json) -> Json:
        """A `load_balancer`."""
        rules = [
            {k: rule.get(k) for k in _FORWARDING_KEYS}
            for rule in record.get("forwarding_rule") or []
        ]
        health = (record.get("healthcheck") or [{}])[0]
        sticky = (record.get("sticky_sessions") or [{"type": "none"}])[0]
        firewall = (record.get("firewall") or [{}])[0]
        return {
            "id": record["id"],
            "name": record.get("name"),
            "ip": record.get("ip"),
            "size_unit": record.get("size_unit") or 1,
            "size": record.get("size") or "lb-small",
            "type": record.get("type") or "REGIONAL",
            "algorithm": record.get("algorithm") or "round_robin",
            "status": record.get("status") or "active",
            "created_at": record.get("created_at") or _IMAGE_EPOCH,
            "forwarding_rules": rules,
            # The provider keeps null for what a TCP check lacks (path); the API always
            # sends the described types (openapi load_balancers/models/health_check.yml).
            "health_check": {k: d if health.get(k) is None else health[k]
                             for k, d in _HEALTH_DEFAULTS.items()},
            "sticky_sessions": {
                "type": sticky.get("type") or "none",
                "cookie_name": sticky.get("cookie_name") or "",
                "cookie_ttl_seconds": sticky.get("cookie_ttl_seconds") or 0,
            },
            "region": self.region(str(record.get("region"))),
            "tag": record.get("droplet_tag") or "",
            "tags": list(record.get("tags") or []),
            "droplet_ids": [int(d) for d in record.get("droplet_ids") or []],
            "redirect_http_to_https": bool(record.get("redirect_http_to_https")),
            "enable_proxy_protocol": bool(record.get("enable_proxy_protocol")),
            "enable_backend_keepalive": bool(record.get("enable_backend_keepalive")),
            "disable_lets_encrypt_dns_records": bool(
                record.get("disable_lets_encrypt_dns_records")
            ),
            "http_idle_timeout_seconds": record.get("http_idle_timeout_seconds") or 60,
            "firewall": {
                "allow": list(firewall.get("allow") or []),
                "deny": list(firewall.get("deny") or []),
            },
            "vpc_uuid": record.get("vpc_uuid"),
            "project_id": record.get("project_id") or self.project_of(record.get("urn")),
        }

    def volume(self, record: Json) -> Json:
        """A `volume`."""
        return {
            "id": record["id"],
            "name": record.get("name"),
            "region": self.region(str(record.get("region"))),
            "droplet_ids": [int(d) for d in record.get("droplet_ids") or []],
            "description": record.get("description") or "",
            "size_gigabytes": record.get("size"),
            "created_at": record.get("created_at") or _IMAGE_EPOCH,
            "filesystem_type": record.get("filesystem_type") or "",
            "filesystem_label": record.get("filesystem_label") or "",
            "tags": list(record.get("tags") or []),
        }

    def firewall(self, record: Json) -> Json:
        """A `firewall`: provider `inbound_rule` blocks -> API `inbound_rules`."""
        return {
            "id": record["id"],
            "name": record.get("name"),
            "status": record.get("status") or "succeeded",
            "created_at": record.get("created_at"),
            "pending_changes": list(record.get("pending_changes") or []),
            "inbound_rules": [
                _rule(r, "sources", "source_") for r in record.get("inbound_rule") or []
            ],
            "outbound_rules": [
                _rule(r, "destinations", "destination_") for r in record.get("outbound_rule") or []
            ],
            "droplet_ids": [int(d) for d in record.get("droplet_ids") or []],
            "tags": list(record.get("tags") or []),
        }

    def vpc(self, record: Json) -> Json:
        """A `vpc` (the provider keeps Go's time.String(); the API speaks RFC 3339)."""
        return {
            "id": record["id"],
            "urn": record.get("urn") or f"do:vpc:{record['id']}",
            "name": record.get("name"),
            "description": record.get("description") or "",
            "region": record.get("region"),
            "ip_range": record.get("ip_range"),
            "default": bool(record.get("default")),
            "created_at": _rfc3339(record.get("created_at")),
        }

    def tag(self, name: str) -> Json:
        """A `tag` with the resource counts DigitalOcean keeps per tag."""
        droplets = [
            d for d in self.account.table("digitalocean_droplet").values()
            if name in (d.get("tags") or [])
        ]  # fmt: skip
        volumes = [
            v for v in self.account.table("digitalocean_volume").values()
            if name in (v.get("tags") or [])
        ]  # fmt: skip
        last_droplet = f"{self.origin}/v2/droplets/{droplets[-1]['id']}" if droplets else ""
        last_volume = f"{self.origin}/v2/volumes/{volumes[-1]['id']}" if volumes else ""
        return {
            "name": name,
            "resources": {
                "count": len(droplets) + len(volumes),
                "last_tagged_uri": last_volume or last_droplet,
                "droplets": {"count": len(droplets), "last_tagged_uri": last_droplet},
                "images": {"count": 0},
                "volumes": {"count": len(volumes), "last_tagged_uri": last_volume},
                "volume_snapshots": {"count": 0},
                "databases": {"count": 0},
            },
        }

    def tag_names(self) -> list[str]:
        """Tags that exist: created ones, and any carried by droplets or volumes."""
        names = set(self.account.table("digitalocean_tag"))
        for table in ("digitalocean_droplet", "digitalocean_volume"):
            for record in self.account.table(table).values():
                names.update(record.get("tags") or [])
        return sorted(names)


_FORWARDING_KEYS = (
    "entry_protocol",
    "entry_port",
    "target_protocol",
    "target_port",
    "certificate_id",
    "tls_passthrough",
)
_HEALTH_DEFAULTS: Json = {
    "protocol": "tcp",
    "port": 80,
    "path": "",
    "check_interval_seconds": 10,
    "response_timeout_seconds": 5,
    "healthy_threshold": 5,
    "unhealthy_threshold": 3,
}


def _v4(address: str, net: ipaddress.IPv4Network, kind: str) -> Json:
    return {
        "ip_address": address,
        "netmask": str(net.netmask),
        "gateway": str(net.network_address + 1),
        "type": kind,
    }


def _rule(rule: Json, targets: str, prefix: str) -> Json:
    return {
        "protocol": rule.get("protocol"),
        "ports": rule.get("port_range") or "0",
        targets: {
            "addresses": list(rule.get(f"{prefix}addresses") or []),
            "droplet_ids": [int(d) for d in rule.get(f"{prefix}droplet_ids") or []],
            "load_balancer_uids": list(rule.get(f"{prefix}load_balancer_uids") or []),
            "kubernetes_ids": list(rule.get(f"{prefix}kubernetes_ids") or []),
            "tags": list(rule.get(f"{prefix}tags") or []),
        },
    }


def _rfc3339(value: Any) -> Any:
    """'2020-01-01 00:00:00 +0000 UTC' -> '2020-01-01T00:00:00Z' (others unchanged)."""
    if not isinstance(value, str):
        return value
    try:
        parsed = _dt.datetime.strptime(value.removesuffix(" UTC"), "%Y-%m-%d %H:%M:%S %z")
    except ValueError:
        return value
    return parsed.astimezone(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
