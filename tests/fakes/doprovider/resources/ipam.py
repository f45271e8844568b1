"""Address allocation for the simulated account: public pools, VPC ranges, private IPs.

Public addresses come from ranges DigitalOcean really announces, so code that checks
"is this a public address" behaves as in production; nothing ever routes to them here.
"""

from __future__ import annotations

import ipaddress
import itertools
from typing import Any

from ..cloud import Account

# One pool per kind of object, so addresses also tell what they belong to.
PUBLIC_POOLS = {
    "droplet": ipaddress.IPv4Network("159.203.0.0/16"),
    "reserved_ip": ipaddress.IPv4Network("45.55.0.0/16"),
    "loadbalancer": ipaddress.IPv4Network("174.138.0.0/16"),
}
_IPV6_PREFIX = "2604:a880:400:d1::"
# Automatic VPC ranges: /20s from 10.100.0.0 on, like DigitalOcean's 10.1xx.0.0/20 ones.
_AUTO_VPC_BASE = ipaddress.IPv4Network("10.100.0.0/14")
_AUTO_VPC_PREFIX = 20


def public_ipv4(account: Account, pool: str) -> str:
    """Next unused public IPv4 address of the pool (skips .0 and .255 of each /24).

    An account may override a pool (``"pools": {"reserved_ip": "127.77.0.0/24"}``): the
    end-to-end test puts the floating IP on loopback, where its fake API server listens.
    """
    override = (account.data.get("pools") or {}).get(pool)
    net = ipaddress.IPv4Network(override) if override else PUBLIC_POOLS[pool]
    while True:
        n = account.next_counter(f"ipv4:{pool}", 10)
        addr = net.network_address + n
        if addr not in net:
            raise RuntimeError(f"simulated {pool} address pool exhausted")
        if int(addr) % 256 not in (0, 255):
            return str(addr)


def public_ipv6(account: Account) -> str:
    """Next public IPv6 address for a droplet with `ipv6 = true`."""
    n = account.next_counter("ipv6", 0x1000)
    return f"{_IPV6_PREFIX}{n:x}:1"


def vpc_ranges(account: Account) -> list[ipaddress.IPv4Network]:
    """The ip_range of every VPC in the account."""
    out = []
    for rec in account.table("digitalocean_vpc").values():
        try:
            out.append(ipaddress.IPv4Network(rec.get("ip_range") or "", strict=False))
        except ValueError:
            continue
    return out


def allocate_vpc_range(account: Account) -> str:
    """A /20 that overlaps no VPC of the account (what the API does without ip_range)."""
    taken = vpc_ranges(account)
    for candidate in _AUTO_VPC_BASE.subnets(new_prefix=_AUTO_VPC_PREFIX):
        if not any(candidate.overlaps(t) for t in taken):
            return str(candidate)
    raise RuntimeError("simulated VPC address space exhausted")


def overlapping_vpc(account: Account, ip_range: str) -> dict[str, Any] | None:
    """The VPC whose range overlaps ip_range, if any."""
    net = ipaddress.IPv4Network(ip_range, strict=False)
    for rec in account.table("digitalocean_vpc").values():
        try:
            other = ipaddress.IPv4Network(rec.get("ip_range") or "", strict=False)
        except ValueError:
            continue
        if net.overlaps(other):
            return rec
    return None


def private_ipv4(account: Account, vpc: dict[str, Any]) -> str:
    """Lowest free address of the VPC for a new droplet (from .2, as DigitalOcean does)."""
    net = ipaddress.IPv4Network(vpc["ip_range"], strict=False)
    used = {
        d.get("ipv4_address_private")
        for d in account.table("digitalocean_droplet").values()
        if d.get("vpc_uuid") == vpc["id"]
    }
    for host in itertools.islice(net.hosts(), 1, None):
        if str(host) not in used:
            return str(host)
    raise RuntimeError(f"VPC {vpc['id']} ({net}) has no free addresses")
