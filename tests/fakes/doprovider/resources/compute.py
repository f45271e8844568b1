"""Droplets, SSH keys and tags."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any, ClassVar

from ..cloud import Account, new_uuid
from ..diag import Path
from ..values import UNKNOWN, is_unknown
from . import catalog, ipam
from .base import ApiError, Context, Obj, Resource
from .validators import no_zero_value, tag_name


def sha1_hex(value: Any) -> str:
    """The provider's HashStringStateFunc: user_data is stored as its SHA-1."""
    return hashlib.sha1(str(value).encode()).hexdigest()


# The account keeps each droplet's whole user-data beside the records (keyed by droplet id):
# the provider's create sends the configured text, not the state's hash
# (terraform-provider-digitalocean, digitalocean/droplet/resource_droplet.go,
# resourceDigitalOceanDropletCreate: `opts.UserData = d.Get("user_data")`), DigitalOcean
# keeps it for the droplet's life and serves it to the droplet at
# http://169.254.169.254/metadata/v1/user-data (docs.digitalocean.com/reference/api/metadata/),
# while GET /v2/droplets/{id} does not return it (the API reference's droplet object has no
# user_data). Tests and the e2e world read it as the droplet's cloud-init would.
USER_DATA = "user_data"


def user_data(account_data: dict[str, Any], droplet_id: Any) -> str | None:
    """A droplet's user-data as its metadata service serves it (None: none or no droplet)."""
    text = (account_data.get(USER_DATA) or {}).get(str(droplet_id))
    return text if isinstance(text, str) else None


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def default_vpc(account: Account, region: str) -> dict[str, Any]:
    """The region's default VPC, created on first use like in a real account."""
    for rec in account.table("digitalocean_vpc").values():
        if rec.get("default") and rec.get("region") == region:
            return rec
    rec = {
        "id": new_uuid(),
        "name": f"default-{region}",
        "region": region,
        "description": "",
        "ip_range": ipam.allocate_vpc_range(account),
        "default": True,
        "urn": "",
        "created_at": "2020-01-01 00:00:00 +0000 UTC",
    }
    rec["urn"] = f"do:vpc:{rec['id']}"
    account.put("digitalocean_vpc", rec)
    return rec


def ensure_tags(account: Account, tags: Any) -> None:
    """Tagging a resource creates missing tags, as the API does."""
    for name in tags or []:
        if isinstance(name, str) and account.get("digitalocean_tag", name) is None:
            account.put("digitalocean_tag", {"id": name, "name": name})


def untag(account: Account, name: str) -> None:
    """Take the tag off every droplet and volume that carries it (a deleted tag's effect)."""
    for table in ("digitalocean_droplet", "digitalocean_volume"):
        for record in account.table(table).values():
            tags = record.get("tags") or []
            if name in tags:
                record["tags"] = [t for t in tags if t != name]


def _apply_size(obj: Obj, size: catalog.Size) -> None:
    obj["vcpus"] = size.vcpus
    obj["memory"] = size.memory_mb
    obj["disk"] = size.disk_gb
    obj["price_monthly"] = size.price_monthly
    obj["price_hourly"] = size.price_hourly


class Droplet(Resource):
    """digitalocean_droplet: numeric ids, public + VPC-private IPv4, size-derived facts."""

    type_name = "digitalocean_droplet"
    noun = "droplet"
    api_path = "/v2/droplets"
    # resource_droplet.go: POST, then GET polls until status "active" (apicalls.py).
    polls_until_active = True
    urn_kind = "droplet"
    requires_replace = frozenset(
        {"image", "region", "ssh_keys", "user_data", "vpc_uuid", "monitoring", "droplet_agent"}
    )
    defaults: ClassVar[dict[str, Any]] = {
        "backups": False,
        "ipv6": False,
        "monitoring": False,
        "resize_disk": True,
        "graceful_shutdown": False,
    }
    state_funcs: ClassVar[dict[str, Any]] = {
        "user_data": sha1_hex,
        "region": _lower,
        "size": _lower,
    }
    recompute_on_change: ClassVar[dict[str, tuple[str, ...]]] = {
        "size": ("disk", "vcpus", "memory", "price_hourly", "price_monthly"),
        "ipv6": ("ipv6_address",),
    }
    validators: ClassVar[dict[str, Any]] = {
        "image": no_zero_value,
        "name": no_zero_value,
        "region": no_zero_value,
        "size": no_zero_value,
        "user_data": no_zero_value,
        "vpc_uuid": no_zero_value,
        "ssh_keys": no_zero_value,
        "tags": tag_name,
    }

    def plan(
        self, ctx: Context, prior: Obj | None, proposed: Obj, config: Obj
    ) -> tuple[Obj, list[Path]]:
        planned, replace = super().plan(ctx, prior, proposed, config)
        # CustomizeDiff: turning IPv6 off needs a new droplet.
        turned_off = prior is not None and prior.get("ipv6") and planned.get("ipv6") is False
        if turned_off and ("ipv6",) not in replace:
            replace.append(("ipv6",))
            for name, attr in ctx.schema.block.attributes.items():
                if attr.computed and config.get(name) is None:
                    planned[name] = UNKNOWN
        return planned, replace

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        region = obj.get("region")
        if region is None or is_unknown(region):
            region = obj["region"] = catalog.DEFAULT_REGION
        if region not in catalog.REGIONS:
            raise ApiError(422, "You specified an invalid region for Droplet creation.")
        size = catalog.size_for(str(obj.get("size")))
        if size is None:
            raise ApiError(422, "You specified an invalid size for Droplet creation.")
        vpc = self._vpc(account, obj, region)
        rid = str(account.next_counter("droplet", 400000001))
        self.fill_common(obj, rid)
        _apply_size(obj, size)
        obj["vpc_uuid"] = vpc["id"]
        obj["ipv4_address"] = ipam.public_ipv4(account, "droplet")
        obj["ipv4_address_private"] = ipam.private_ipv4(account, vpc)
        if is_unknown(obj.get("ipv6_address")) or obj.get("ipv6_address") is None:
            obj["ipv6_address"] = ipam.public_ipv6(account) if obj.get("ipv6") else ""
        obj["locked"] = False
        obj["private_networking"] = True
        text = (ctx.config or {}).get("user_data")
        if isinstance(text, str) and not is_unknown(text):
            account.data.setdefault(USER_DATA, {})[str(obj["id"])] = text
        if is_unknown(obj.get("volume_ids")):
            obj["volume_ids"] = []
        ensure_tags(account, obj.get("tags"))

    @staticmethod
    def _vpc(account: Account, obj: Obj, region: str) -> dict[str, Any]:
        vpc_id = obj.get("vpc_uuid")
        if vpc_id is None or is_unknown(vpc_id):
            return default_vpc(account, region)
        vpc = account.get("digitalocean_vpc", vpc_id)
        if vpc is None:
            raise ApiError(422, f"vpc_uuid {vpc_id} is not a VPC of this account")
        if vpc.get("region") != region:
            raise ApiError(
                422, f"VPC {vpc_id} is in {vpc.get('region')}, not in the droplet's region {region}"
            )
        return vpc

    def modify(self, ctx: Context, account: Account, prior: Obj, obj: Obj) -> None:
        super().modify(ctx, account, prior, obj)
        if obj.get("size") != prior.get("size"):
            size = catalog.size_for(str(obj.get("size")))
            if size is None:
                raise ApiError(422, "You specified an invalid size for Droplet resize.")
            _apply_size(obj, size)
            if obj.get("resize_disk") is False:
                obj["disk"] = prior.get("disk")
        if obj.get("ipv6") and not obj.get("ipv6_address"):
            obj["ipv6_address"] = ipam.public_ipv6(account)
        ensure_tags(account, obj.get("tags"))

    def remove(self, ctx: Context, account: Account, prior: Obj) -> None:
        # DigitalOcean detaches a deleted droplet from reserved IPs, firewalls and LBs.
        did = int(prior["id"])
        (account.data.get(USER_DATA) or {}).pop(str(did), None)
        for ip in account.table("digitalocean_reserved_ip").values():
            if ip.get("droplet_id") is not None and int(ip["droplet_id"]) == did:
                ip["droplet_id"] = None
        for table in ("digitalocean_firewall", "digitalocean_loadbalancer"):
            for rec in account.table(table).values():
                ids = rec.get("droplet_ids") or []
                rec["droplet_ids"] = [i for i in ids if int(i) != did]


def ssh_fingerprint(public_key: str) -> str:
    """MD5 fingerprint of an OpenSSH public key, as DigitalOcean shows it."""
    parts = public_key.strip().split()
    if len(parts) < 2:
        raise ValueError("not in `type base64 [comment]` form")
    blob = base64.b64decode(parts[1], validate=True)
    digest = hashlib.md5(blob).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class SshKey(Resource):
    """digitalocean_ssh_key: numeric id, MD5 fingerprint, duplicate keys rejected."""

    type_name = "digitalocean_ssh_key"
    noun = "SSH Key"
    api_path = "/v2/account/keys"
    requires_replace = frozenset({"public_key"})
    validators: ClassVar[dict[str, Any]] = {"name": no_zero_value}

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        try:
            fingerprint = ssh_fingerprint(str(obj.get("public_key")))
        except (ValueError, binascii.Error) as exc:
            raise ApiError(422, f"Key invalid: {exc}") from exc
        for other in account.table(self.table()).values():
            if other.get("fingerprint") == fingerprint:
                raise ApiError(422, "SSH Key is already in use on your account")
        self.fill_common(obj, str(account.next_counter("ssh_key", 41000001)))
        obj["fingerprint"] = fingerprint


class Tag(Resource):
    """digitalocean_tag: the name is the id; counts reflect what carries the tag."""

    type_name = "digitalocean_tag"
    noun = "tag"
    api_path = "/v2/tags"
    requires_replace = frozenset({"name"})
    validators: ClassVar[dict[str, Any]] = {"name": tag_name}

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        # Creating an existing tag succeeds (tags are also created implicitly).
        obj["id"] = obj["name"]
        self._counts(account, obj)

    def refresh(self, ctx: Context, account: Account, current: Obj, record: Obj) -> Obj | None:
        self._counts(account, record)
        return record

    def remove(self, ctx: Context, account: Account, prior: Obj) -> None:
        # "Deleting a tag also untags all the resources that have previously been tagged by
        # the Tag" (digitalocean/openapi specification/resources/tags/tags_delete.yml); of the
        # taggable kinds (droplets, databases, images, volumes, volume snapshots) the account
        # holds droplets and volumes.
        untag(account, str(prior["name"]))

    @staticmethod
    def _counts(account: Account, obj: Obj) -> None:
        name = obj["name"]
        droplets = sum(
            1
            for d in account.table("digitalocean_droplet").values()
            if name in (d.get("tags") or [])
        )
        volumes = sum(
            1
            for v in account.table("digitalocean_volume").values()
            if name in (v.get("tags") or [])
        )
        obj.update(
            droplets_count=droplets,
            volumes_count=volumes,
            images_count=0,
            volume_snapshots_count=0,
            databases_count=0,
            total_resource_count=droplets + volumes,
        )
