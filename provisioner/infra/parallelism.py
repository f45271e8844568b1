"""How many operations Terraform runs at once (``-parallelism``), from DigitalOcean's rate
limit and the number of droplets.

Terraform walks the graph 10 operations at a time unless told otherwise (``-parallelism``,
default 10). A droplet takes 30-60 s to become active, so 500 workers at 10 at a time wait
about 50 rounds. More at once only helps until the API's limit binds: 250 requests a minute
per token (the API reference's "Rate Limit" section, digitalocean/openapi
``specification/description.yml``); past it the provider's requests are answered 429 and
retried after ``Retry-After`` (godo with go-retryablehttp, ``http_retry_max`` 4), and an
apply whose request is still refused after the last retry fails.

What a droplet create costs, read in terraform-provider-digitalocean v2.34.1 (the release
terraform/provider.lock.hcl pins), ``digitalocean/droplet/resource_droplet.go``: one
``POST /v2/droplets``, then ``waitForDropletAttribute`` polls ``GET /v2/droplets/{id}``
(``StateChangeConf`` with ``Delay`` 10 s and ``MinTimeout`` 3 s; the plugin SDK's
``helper/retry/state.go`` then doubles its wait up to 10 s): polls 10, 13, 19, 29, 39 s
after the POST for a droplet active after 30 s, the fast end of the range. That is
``CREATE_CALLS`` = 6 requests in ``CREATE_SECONDS`` = 39 s, 9.2 requests a minute for each
droplet in flight (tests/fakes/doprovider/apicalls.py plays the same schedule, and
tests/contract/test_rate_limits.py checks it). The slower a droplet, the fewer requests a
minute it costs, so the fast end is the safe one.

So the limit sustains 250 / 9.2 = 27 droplets in flight; provision takes ``SHARE`` (80 %)
of the minute for Terraform, leaving the rest to what shares the token (provision's own
reads, the cloud controller manager, the CSI driver): 21. Never below Terraform's own 10
(a small environment gains nothing from less), never above what the limit sustains.
``--parallelism`` (or ``PROVISION_PARALLELISM``) overrides it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the simulated provider imports this module: keep its start light
    from provisioner.config.model import Environment

PER_MINUTE = 250  # requests a minute per token (API reference, "Rate Limit")
TERRAFORM_DEFAULT = 10  # terraform plan/apply/destroy -parallelism's default
# The droplet create's poll schedule, terraform-provider-digitalocean v2.34.1; the one
# place both provision and the simulated provider (tests/fakes/doprovider/apicalls.py) read.
POLL_DELAY = 10.0  # digitalocean/droplet/resource_droplet.go:750 "Delay: 10 * time.Second"
POLL_MIN = 3.0  # resource_droplet.go:751 "MinTimeout: 3 * time.Second"
POLL_FIRST_WAIT = 0.1  # vendor/.../helper/retry/state.go:106 "wait = 100 * time.Millisecond"
POLL_MAX = 10.0  # state.go:195-196 "else if wait > 10*time.Second" (after "wait *= 2", :185)
FAST_ACTIVE = 30.0  # seconds to active at the fast end of DigitalOcean's 30-60 s
SHARE = 0.8  # of the minute's requests left to Terraform
ENV_VAR = "PROVISION_PARALLELISM"
MAXIMUM = 256  # what an override may ask for: far past any account's limit


def droplet_polls(active_after: float) -> list[float]:
    """Seconds after the POST at which the provider polls a droplet that becomes active
    ``active_after`` seconds after it: the last poll is the one that sees it active."""
    polls = [POLL_DELAY]  # state.go: the first refresh after Delay
    wait = POLL_FIRST_WAIT
    while polls[-1] < active_after:
        wait = min(max(wait * 2, POLL_MIN), POLL_MAX)
        polls.append(polls[-1] + wait)
    return polls


CREATE_CALLS = 1 + len(droplet_polls(FAST_ACTIVE))  # POST + polls at 10, 13, 19, 29, 39 s
CREATE_SECONDS = droplet_polls(FAST_ACTIVE)[-1]  # the POST to the poll that sees it active


def sustained(per_minute: int = PER_MINUTE) -> int:
    """Droplet creates in flight that Terraform's share of ``per_minute`` sustains."""
    per_create = CREATE_CALLS / CREATE_SECONDS * 60.0
    return max(TERRAFORM_DEFAULT, math.floor(per_minute * SHARE / per_create))


def choose(droplets: int, per_minute: int = PER_MINUTE) -> int:
    """``-parallelism`` for an environment of ``droplets`` droplets."""
    return min(max(droplets, TERRAFORM_DEFAULT), sustained(per_minute))


def droplets_of(env: Environment) -> int:
    """Every droplet the environment has: a first ``up`` creates them all."""
    return env.control_plane.count + sum(pool.count for pool in env.worker_pools)


def for_environment(env: Environment, override: int | None = None) -> int:
    """The override if given, else the choice for the environment's droplets."""
    return override if override is not None else choose(droplets_of(env))
