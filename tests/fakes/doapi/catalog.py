"""Who the simulated account is and what it offers: the profile, regions and sizes.

The slugs and size facts come from the fake provider's catalogue
(tests/fakes/doprovider/resources/catalog.py), so the API never lists a region or size
the provider would reject, nor hides one it accepts. What the provider's catalogue lacks
(display names, features, availability, transfer allowance) is added here.

Both live in the account file as optional top-level keys, written by `seeding.seed()`;
without them the defaults below apply, so an account Terraform created is served as is::

    "account": {"uuid": ..., "email": ..., "droplet_limit": 25, ...},
    "catalog": {"regions": [{"slug", "name", "available", "features"}],
                "sizes":   [{"slug", "vcpus", "memory", "disk", "transfer",
                             "price_monthly", "price_hourly", "description",
                             "available", "regions": [...]}]}
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes.doprovider.cloud import Account
from tests.fakes.doprovider.resources import catalog as provider_catalog

Json = dict[str, Any]

REGION_NAMES = {
    "nyc1": "New York 1",
    "nyc2": "New York 2",
    "nyc3": "New York 3",
    "sfo1": "San Francisco 1",
    "sfo2": "San Francisco 2",
    "sfo3": "San Francisco 3",
    "ams2": "Amsterdam 2",
    "ams3": "Amsterdam 3",
    "sgp1": "Singapore 1",
    "lon1": "London 1",
    "fra1": "Frankfurt 1",
    "tor1": "Toronto 1",
    "blr1": "Bangalore 1",
    "syd1": "Sydney 1",
}
# The real API lists these legacy regions with `available: false` (no new droplets).
LEGACY_REGIONS = frozenset({"nyc2", "sfo1", "ams2"})
REGION_FEATURES = ["backups", "ipv6", "metadata", "install_agent", "storage", "image_transfer"]
_LEGACY_FEATURES = ["backups", "ipv6", "metadata", "install_agent", "image_transfer"]

# Monthly transfer allowance in TB and the product line, as /v2/sizes reports them.
_TRANSFER = {
    "s-1vcpu-512mb-10gb": 0.5,
    "s-1vcpu-1gb": 1.0,
    "s-1vcpu-2gb": 2.0,
    "s-2vcpu-2gb": 3.0,
    "s-2vcpu-4gb": 4.0,
    "s-4vcpu-8gb": 5.0,
    "s-8vcpu-16gb": 6.0,
}
_DESCRIPTIONS = {
    "s": "Basic",
    "c": "CPU-Optimized",
    "c2": "CPU-Optimized 2x SSD",
    "g": "General Purpose",
    "gd": "General Purpose 2x SSD",
    "m": "Memory-Optimized",
    "m3": "Memory-Optimized 3x SSD",
    "m6": "Memory-Optimized 6x SSD",
    "so": "Storage-Optimized",
    "so1_5": "Storage-Optimized 1.5x SSD",
}

DEFAULT_PROFILE: Json = {
    "uuid": "00000000-0000-4000-8000-000000000001",  # = owner_uuid of the fake's projects
    "email": "sammy@example.com",
    "name": "Sammy",
    "email_verified": True,
    "status": "active",
    "status_message": "",
    "droplet_limit": 25,
    "floating_ip_limit": 3,
    "reserved_ip_limit": 3,
    "volume_limit": 100,
    "team": {"uuid": "00000000-0000-4000-8000-0000000000aa", "name": "My Team"},
}


def region_entry(slug: str, available: bool | None = None) -> Json:
    """One stored region; legacy regions default to unavailable, like the real API."""
    if slug not in provider_catalog.REGIONS:
        raise ValueError(
            f"unknown region {slug!r}: the fake provider accepts only "
            f"{sorted(provider_catalog.REGIONS)}"
        )
    legacy = slug in LEGACY_REGIONS
    return {
        "slug": slug,
        "name": REGION_NAMES.get(slug, slug),
        "available": (not legacy) if available is None else available,
        "features": list(_LEGACY_FEATURES if legacy else REGION_FEATURES),
    }


def size_entry(slug: str, regions: list[str]) -> Json:
    """One stored size, its facts taken from the provider's catalogue."""
    size = provider_catalog.size_for(slug)
    if size is None:
        raise ValueError(f"unknown size {slug!r}: the fake provider would reject it")
    family = slug.split("-", 1)[0]
    return {
        "slug": slug,
        "vcpus": size.vcpus,
        "memory": size.memory_mb,
        "disk": size.disk_gb,
        "transfer": _TRANSFER.get(slug, 4.0 if size.vcpus <= 2 else 5.0),
        "price_monthly": size.price_monthly,
        "price_hourly": size.price_hourly,
        "description": _DESCRIPTIONS.get(family, "Basic"),
        "available": True,
        "regions": sorted(regions),
    }


def default_regions() -> list[Json]:
    """Every region the provider accepts, in a stable order."""
    return [region_entry(slug) for slug in sorted(provider_catalog.REGIONS)]


def default_sizes(regions: list[Json]) -> list[Json]:
    """The provider's named sizes, each offered in every available region."""
    available = [r["slug"] for r in regions if r["available"]]
    return [size_entry(slug, available) for slug in provider_catalog.SIZES]


def stored_catalog(account: Account) -> tuple[list[Json], list[Json]]:
    """(regions, sizes) of the account: the seeded ones, else the defaults (copies)."""
    stored = account.data.get("catalog") or {}
    regions = copy.deepcopy(stored.get("regions")) or default_regions()
    sizes = copy.deepcopy(stored.get("sizes")) or default_sizes(regions)
    return regions, sizes


def profile(account: Account) -> Json:
    """The account's profile (GET /v2/account), defaults filled in."""
    return {**copy.deepcopy(DEFAULT_PROFILE), **copy.deepcopy(account.data.get("account") or {})}
