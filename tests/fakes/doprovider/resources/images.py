"""Droplet snapshots: the table the fake API's snapshot action fills, read by
data.digitalocean_droplet_snapshot.

The lookup follows the provider's read (terraform-provider-digitalocean
datasource_digitalocean_droplet_snapshot.go, dataSourceDigitalOceanDropletSnapshotRead): it
lists the droplet snapshots (GET /v2/snapshots?resource_type=droplet), keeps those whose name
equals ``name``, then those available in ``region``; none is an error, several are an error
unless ``most_recent`` picks the newest by ``created_at``; the result's id is the snapshot's,
``droplet_id`` the droplet it was taken of.
"""

from __future__ import annotations

from ..cloud import Account
from .base import Context, DataSource, Obj

SNAPSHOTS = "digitalocean_droplet_snapshot"


class DropletSnapshot(DataSource):
    """data.digitalocean_droplet_snapshot by exact name (name_regex is not simulated)."""

    type_name = SNAPSHOTS
    noun = "Droplet snapshot"
    api_path = "/v2/snapshots"

    def lookup(self, ctx: Context, account: Account, config: Obj) -> Obj | None:
        name = config.get("name")
        if not name:
            ctx.diags.error("One of `name` or `name_regex` must be assigned")
            return None
        found = [r for r in account.table(SNAPSHOTS).values() if r.get("name") == name]
        region = config.get("region")
        if region:
            found = [r for r in found if str(region).lower() in (r.get("regions") or [])]
        if not found:
            ctx.diags.error(f"No DROPLET snapshot found with name {name}")
            return None
        if len(found) > 1 and not config.get("most_recent"):
            ctx.diags.error(f"too many Droplet snapshots found with name {name} "
                            f"(found {len(found)}, expected 1)")
            return None
        record = max(found, key=lambda r: str(r.get("created_at") or ""))
        return {"id": str(record["id"]), "name": record["name"],
                "created_at": record.get("created_at"),
                "min_disk_size": record.get("min_disk_size"),
                "regions": list(record.get("regions") or []),
                "droplet_id": str(record.get("resource_id") or ""),
                "size": record.get("size_gigabytes")}
