"""The droplet tags provision gives and reads, each defined once.

``provision:<env>`` on every droplet of the environment, ``provision:<env>:pool:<pool>`` on
a worker pool's (terraform/workers.tf), and ``provision:<env>:autoscaled`` on each droplet
the autoscaler service creates (render/autoscaler.py says who owns which). Environment and
pool names are DNS-1123 labels (no colon), so these compare by equality, never by prefix
(cloud/ownership.py).

Standard library only: the autoscaler service imports it (render/autoscaler_code.py).
"""

from __future__ import annotations

from collections.abc import Iterable

RESERVED_PREFIX = "provision:"


def env_tag(env_name: str) -> str:
    """The tag of every droplet of the environment."""
    return f"{RESERVED_PREFIX}{env_name}"


def autoscaled_tag(env_name: str) -> str:
    """The tag the autoscaler service adds to every droplet it creates, and to no other."""
    return f"{env_tag(env_name)}:autoscaled"


def pool_tag(env_name: str, pool: str) -> str:
    """The tag of a worker pool's droplets."""
    return f"{env_tag(env_name)}:pool:{pool}"


def pool_of(env_name: str, tags: Iterable[str]) -> str | None:
    """The pool a droplet's tags name: exactly one pool tag of the environment, or None."""
    prefix = pool_tag(env_name, "")
    pools = {t[len(prefix):] for t in tags if t.startswith(prefix) and len(t) > len(prefix)}
    return pools.pop() if len(pools) == 1 else None


def is_autoscaled(env_name: str, tags: Iterable[str]) -> bool:
    """Both exact tags: the environment's and its autoscaled marker."""
    held = set(tags)
    return env_tag(env_name) in held and autoscaled_tag(env_name) in held
