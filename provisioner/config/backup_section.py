"""Reading the optional ``backups:`` section: where and how often etcd is snapshotted."""

from __future__ import annotations

import re

from provisioner.config import checks
from provisioner.config.model import Backups, State
from provisioner.config.reader import Section

KEYS = ("bucket", "region", "endpoint", "prefix", "every", "keep_hourly", "keep_daily")
MIN_EVERY = 15 * 60
MAX_EVERY = 24 * 3600
_EVERY = re.compile(r"^([0-9]+)(m|h)\Z", re.ASCII)
# Spaces bucket names: 3-63 characters, lower-case letters, digits and '-' (DigitalOcean's
# "Spaces: naming rules"); the S3 rules they follow also forbid dots here (path style).
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]\Z")
_PREFIX = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\Z")


def bucket_name(value: str) -> checks.Problem:
    """A Spaces bucket name."""
    if not _BUCKET.match(value):
        return (f"{value!r} is not a Spaces bucket name",
                "3 to 63 lower-case letters, digits and '-', e.g. acme-etcd-backups")
    return None


def key_prefix(value: str) -> checks.Problem:
    """The folder inside the bucket: segments of letters, digits, '.', '_' and '-'."""
    if len(value) > 200 or not _PREFIX.match(value) or any(
            part in (".", "..") for part in value.split("/")):
        return (f"{value!r} is not a usable key prefix",
                "segments of letters, digits, '.', '_', '-' joined by '/', no leading or "
                "trailing '/', e.g. production")
    return None


def interval(value: str) -> checks.Problem:
    """``15m`` .. ``24h``."""
    seconds = parse_interval(value)
    if seconds is None:
        return f"{value!r} is not a duration", "minutes or hours, e.g. every: 1h or every: 30m"
    if not MIN_EVERY <= seconds <= MAX_EVERY:
        return f"{value!r} is out of range", "between 15m and 24h"
    return None


def parse_interval(value: str) -> int | None:
    """Seconds in ``30m`` or ``2h``; None when it is neither."""
    match = _EVERY.match(value.strip())
    if not match:
        return None
    return int(match.group(1)) * (60 if match.group(2) == "m" else 3600)


def default_region(state: State, droplet_region: str) -> str:
    """The state bucket's region when state is in Spaces, else the droplets' region."""
    if state.backend == "spaces" and state.region:
        return state.region
    return droplet_region


def read_backups(top: Section, name: str, state: State, droplet_region: str) -> Backups | None:
    """The ``backups:`` section, or None when it is not written."""
    if not top.has("backups"):
        return None
    s = top.section("backups", KEYS)
    if s.absent:
        return None  # not a mapping: reported by Section
    region = s.text("region", default_region(state, droplet_region), checks.region)
    every = s.text("every", "1h", interval)
    return Backups(
        bucket=s.text("bucket", "", bucket_name, required=True,
                      hint="the Spaces bucket the snapshots go to, e.g. bucket: "
                           "acme-etcd-backups (it must exist)"),
        region=region,
        endpoint=s.text("endpoint", f"https://{region}.digitaloceanspaces.com", checks.url),
        prefix=s.text("prefix", name, key_prefix),
        every=parse_interval(every) or 3600,
        keep_hourly=s.integer("keep_hourly", 24, 1, 1000, hint="e.g. keep_hourly: 24"),
        keep_daily=s.integer("keep_daily", 14, 0, 1000, hint="e.g. keep_daily: 14"),
    )
