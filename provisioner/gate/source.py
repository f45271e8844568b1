"""What a rollout gate reads (a source) and what it read (a reading).

The fleet file's ``gate`` section names where the error rate comes from; the fleet's
config reader builds a :class:`GateSource` from it and the rollout hands it, with the
region's load balancer ids and the window, to :func:`provisioner.gate.read_error_rate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from provisioner.errors import ProvisionError

DIGITALOCEAN = "digitalocean-monitoring"
PROMETHEUS = "prometheus"


class GateError(ProvisionError):
    """The error rate could not be read (exit 1): the API refused or failed, or there is
    no data for a load balancer (as opposed to data that shows no traffic)."""


@dataclass(frozen=True)
class GateSource:
    """Where the 5xx ratio is read.

    ``kind="digitalocean"``: DigitalOcean's monitoring API for load balancers at ``api_url``
    (``https://api.digitalocean.com``; a trailing ``/v2/`` is accepted) with ``token``
    (a token with the ``monitoring:read`` scope).

    ``kind="prometheus"``: the Prometheus HTTP API at ``url``; ``query`` counts the 5xx
    responses in the window and ``total_query`` all responses (two instant queries: one
    ratio query cannot say how many requests it saw, and the gate's minimum request
    count needs that). ``$window`` in either query is replaced by the window, e.g.
    ``sum(increase(http_requests_total{code=~"5.."}[$window]))``.
    """

    kind: Literal["digitalocean", "prometheus"]
    api_url: str = "https://api.digitalocean.com"
    token: str = ""
    url: str = ""
    query: str = ""
    total_query: str = ""

    def __repr__(self) -> str:  # the token never reaches a log or a traceback
        secret = "***" if self.token else ""
        return (f"GateSource(kind={self.kind!r}, api_url={self.api_url!r}, token={secret!r}, "
                f"url={self.url!r}, query={self.query!r}, total_query={self.total_query!r})")


@dataclass(frozen=True)
class GateReading:
    """HTTP responses counted in a window and the 5xx among them."""

    requests: int  # HTTP responses counted in the window
    errors: int  # 5xx among them
    window_seconds: int
    source: str  # "digitalocean-monitoring" | "prometheus"
    detail: str  # e.g. load balancer ids / the queries, for the user

    @property
    def ratio(self) -> float | None:
        """errors / requests; None when nothing was counted (no traffic is not 0 %)."""
        return None if self.requests == 0 else self.errors / self.requests
