"""What a DigitalOcean account offers: regions taking droplets, their sizes, SSH keys.

`provision init` offers these as choices and checks answers against them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from provisioner.config import checks
from provisioner.errors import ProvisionError

Say = Callable[[str], None]


@dataclass(frozen=True)
class SshKey:
    """An SSH key of the account."""

    name: str
    fingerprint: str
    id: str


@dataclass(frozen=True)
class Catalog:
    """What the account offers; without a token, nothing known and any well-formed value goes."""

    regions: tuple[str, ...] = ()
    sizes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    keys: tuple[SshKey, ...] = ()
    from_account: bool = False

    def sizes_in(self, region: str) -> tuple[str, ...]:
        """Sizes offered in ``region``; empty when unknown."""
        return self.sizes.get(region, ())


def read_catalog(token: str) -> Catalog:
    """The account's available regions, the sizes each offers, and its SSH keys.

    python-digitalocean reads DIGITALOCEAN_END_POINT itself. Reads are retried and their
    errors worded as preflight words them.
    """
    import digitalocean

    from provisioner.cloud import throttle
    from provisioner.cloud.preflight import read

    # python-digitalocean waits forever by default; a hung API must not hang the dialogue.
    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "30")
    manager = throttle.watch(digitalocean.Manager(token=token))
    regions = read("regions", manager.get_all_regions)
    keys = read("SSH keys", manager.get_all_sshkeys)
    available = sorted(str(r.slug) for r in regions
                       if r.available and checks.region(str(r.slug)) is None)
    sizes = {str(r.slug): tuple(str(s) for s in (r.sizes or []) if checks.size(str(s)) is None)
             for r in regions if str(r.slug) in available}
    return Catalog(
        regions=tuple(available),
        sizes=sizes,
        keys=tuple(SshKey(str(k.name or ""), str(k.fingerprint), str(k.id)) for k in keys
                   if checks.ssh_key(str(k.fingerprint)) is None),
        from_account=True,
    )


def account_catalog(note: Say) -> Catalog:
    """The account's catalogue when a token is in the environment, else an empty one."""
    from provisioner.cloud.token import api_token

    token = api_token(required=False)
    if not token:
        return Catalog()
    try:
        return read_catalog(token)
    except ProvisionError as e:
        note(f"warning: could not read the DigitalOcean account, so nothing is checked "
             f"against it: {e}")
        return Catalog()
