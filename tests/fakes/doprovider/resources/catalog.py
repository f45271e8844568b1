"""What the simulated account offers: regions and droplet sizes (a subset of the real ones).

Creating a droplet with a region or size slug not listed here fails like the real API
(HTTP 422), which catches typos such as `s-2vcpu-4g` that `terraform validate` cannot.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

REGIONS = frozenset(
    {
        "nyc1", "nyc2", "nyc3", "sfo1", "sfo2", "sfo3", "ams2", "ams3", "sgp1",
        "lon1", "fra1", "tor1", "blr1", "syd1",
    }
)  # fmt: skip
DEFAULT_REGION = "nyc3"


@dataclass(frozen=True)
class Size:
    """A droplet size: what `vcpus`, `memory`, `disk` and the prices report."""

    vcpus: int
    memory_mb: int
    disk_gb: int
    price_monthly: float

    @property
    def price_hourly(self) -> float:
        """DigitalOcean bills 672 hours a month at most."""
        return round(self.price_monthly / 672, 5)


SIZES: dict[str, Size] = {
    "s-1vcpu-512mb-10gb": Size(1, 512, 10, 4.0),
    "s-1vcpu-1gb": Size(1, 1024, 25, 6.0),
    "s-1vcpu-2gb": Size(1, 2048, 50, 12.0),
    "s-2vcpu-2gb": Size(2, 2048, 60, 18.0),
    "s-2vcpu-4gb": Size(2, 4096, 80, 24.0),
    "s-4vcpu-8gb": Size(4, 8192, 160, 48.0),
    "s-8vcpu-16gb": Size(8, 16384, 320, 96.0),
    "c-2": Size(2, 4096, 25, 42.0),
    "c-4": Size(4, 8192, 50, 84.0),
    "g-2vcpu-8gb": Size(2, 8192, 25, 63.0),
    "m-2vcpu-16gb": Size(2, 16384, 50, 84.0),
}

# Other real slug families follow "<family>-<n>vcpu-<m>gb[-suffix]".
_SLUG = re.compile(r"^(?:s|c|c2|g|gd|m|m3|m6|so|so1_5)-(\d+)vcpu-(\d+)gb(?:-[a-z0-9-]+)?$")


def size_for(slug: str) -> Size | None:
    """The size of a slug, or None if the API would reject it."""
    if slug in SIZES:
        return SIZES[slug]
    m = _SLUG.match(slug)
    if not m:
        return None
    vcpus, mem_gb = int(m.group(1)), int(m.group(2))
    return Size(vcpus, mem_gb * 1024, mem_gb * 20, float(mem_gb * 6))
