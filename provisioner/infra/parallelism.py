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

from provisioner.config.model import Environment

PER_MINUTE = 250  # requests a minute per token (API reference, "Rate Limit")
TERRAFORM_DEFAULT = 10  # terraform plan/apply/destroy -parallelism's default
CREATE_CALLS = 6  # POST + GET polls at 10, 13, 19, 29 and 39 s (provider v2.34.1)
CREATE_SECONDS = 39.0  # from the POST to the poll that sees the droplet active at 30 s
SHARE = 0.8  # of the minute's requests left to Terraform
ENV_VAR = "PROVISION_PARALLELISM"
MAXIMUM = 256  # what an override may ask for: far past any account's limit


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
