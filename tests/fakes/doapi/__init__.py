"""A fake DigitalOcean API v2 over real HTTP, sharing the fake Terraform provider's account.

What Terraform creates through tests/fakes/doprovider is what this API lists, and what
the API changes (reserved IP assignment, deletions) the provider sees on its next
refresh: both go through `tests.fakes.doprovider.cloud.Cloud` and its file lock.

    from tests.fakes.doapi import FakeDigitalOcean, Faults

    with FakeDigitalOcean(state_file, tokens="sim-token") as fake:
        os.environ.update(fake.env())  # DIGITALOCEAN_END_POINT=http://127.0.0.1:PORT/v2/
        manager = digitalocean.Manager(token="sim-token")
        ...
        assert fake.requests("POST", "/v2/floating_ips/*/actions")

Modules: server.py (HTTP, auth, log, `FakeDigitalOcean`), routes.py (endpoints),
views.py (account records -> API JSON), catalog.py (profile, regions, sizes),
seeding.py (seed(), add_load_balancer(), add_volume()), faults.py (knobs, log records),
monitoring.py (load balancer HTTP response metrics the test injects).

Known simplifications: actions complete at once (status "completed"); the catalogue
overlays and droplet_limit are reported, not enforced on Terraform's creates (the limit is
enforced on POST /v2/droplets, the API's own create); deleting
an attached volume is allowed; only the endpoints listed in routes.py exist (404 else).
"""

from __future__ import annotations

from .faults import Faults, RequestRecord
from .seeding import generate_ssh_public_key, seed
from .server import DEFAULT_TOKEN, FakeDigitalOcean

__all__ = [
    "DEFAULT_TOKEN",
    "FakeDigitalOcean",
    "Faults",
    "RequestRecord",
    "generate_ssh_public_key",
    "seed",
]
