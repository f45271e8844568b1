"""DigitalOcean's per-token API rate limits, enforced by the fake API and counted by the
simulated provider on one log (tests/fakes/doprovider/ratelimit.py, apicalls.py).

The documented behaviour (digitalocean/openapi ``specification/description.yml`` at commit
0a1f36f46bdaca64359b4542b7beed2b94e130ed, "Rate Limit"; ``shared/headers.yml`` and
``shared/responses/too_many_requests.yml`` copied in tests/data/digitalocean-openapi):
5,000 requests per hour and 250 per minute per token, each request counted for one hour
after it was made; ``ratelimit-limit`` / ``-remaining`` / ``-reset`` (when the oldest
counted request expires) on every answer; 429 ``too_many_requests`` "API Rate limit
exceeded." once either limit is reached. The provider side follows terraform-provider-
digitalocean v2.34.1 (godo v1.107.0 with go-retryablehttp v0.7.4: ``http_retry_max`` 4,
``Retry-After`` honoured; the droplet create's POST then GET polls at 10, 13, 19, 29 s...).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.infra import retries
from tests.contract.test_do_provider import DROPLETS, HEADER, VPC, _write_module
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.doprovider import apicalls, ratelimit
from tests.oracles.terraform import (
    TerraformResult,
    copy_module,
    prepare_plugin_env,
    state_resources,
    terraform,
    terraform_init,
    terraform_show_state,
)

TOKEN = "limit-token"
START = 1_800_000_000.0  # simulated Unix time the pinned clock starts at


class Clock:
    """A pinned clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(tmp_path: Path, clock: Clock) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(tmp_path / "account.json", (TOKEN, "other-token"),
                          validate=True) as api:
        api.seed()
        yield api
        assert api.violations == []


def get(fake: FakeDigitalOcean, token: str = TOKEN) -> tuple[int, dict[str, str], dict[str, str]]:
    request = urllib.request.Request(f"{fake.endpoint}account",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def test_off_by_default(fake: FakeDigitalOcean) -> None:
    """Existing tests keep their behaviour: 300 requests in a moment, none refused."""
    assert {get(fake)[0] for _ in range(300)} == {200}


def test_the_minute_limit_refuses_the_251st_request_until_the_first_expires(
        fake: FakeDigitalOcean, clock: Clock) -> None:
    fake.limit_rate(clock=clock)
    for i in range(250):
        clock.now = START + i * 0.2  # 250 requests within 50 s
        status, headers, _ = get(fake)
        assert status == 200
        assert headers["ratelimit-limit"] == "5000"
        assert headers["ratelimit-remaining"] == str(5000 - i - 1)
        assert headers["ratelimit-reset"] == str(int(START + 3600))  # the oldest's expiry
    clock.now = START + 55
    status, headers, body = get(fake)
    assert status == 429
    assert body["id"] == "too_many_requests" and body["message"] == "API Rate limit exceeded."
    assert headers["Retry-After"] == "5"  # the first request leaves the minute at START + 60
    assert headers["ratelimit-remaining"] == "4750"
    assert get(fake, "other-token")[0] == 200  # limits are per token
    clock.now = START + 60.1
    assert get(fake)[0] == 200


def test_the_hour_limit_counts_each_request_for_an_hour(fake: FakeDigitalOcean,
                                                        clock: Clock) -> None:
    limiter = fake.limit_rate(clock=clock)
    # 5,000 requests spread over the last hour, 20 a minute: the minute limit is not it.
    limiter.record(TOKEN, [START - 3590 + i * 0.718 for i in range(5000)])
    status, headers, body = get(fake)
    assert (status, body["id"]) == (429, "too_many_requests")
    assert headers["ratelimit-remaining"] == "0"
    assert headers["ratelimit-reset"] == str(int(START - 3590 + 3600))
    assert headers["Retry-After"] == "10"
    clock.now = START + 10.5  # the oldest has expired: room for exactly one
    assert get(fake)[0] == 200
    assert get(fake)[0] == 429


def test_droplet_poll_schedule_of_the_pinned_provider() -> None:
    """StateChangeConf{Delay: 10 s, MinTimeout: 3 s}, waits doubling up to 10 s."""
    assert apicalls.droplet_polls(0) == [10]
    assert apicalls.droplet_polls(30) == [10, 13, 19, 29, 39]
    assert apicalls.droplet_polls(45) == [10, 13, 19, 29, 39, 49]
    assert len(apicalls.droplet_polls(60)) == 8


def _apply(tmp_path: Path, extra: dict[str, str]) -> tuple[dict[str, str], Path, TerraformResult]:
    env = prepare_plugin_env(tmp_path / "env", token=TOKEN, extra=extra)
    work = copy_module(_write_module(tmp_path / "src", HEADER + VPC + DROPLETS), tmp_path / "w")
    terraform_init(work, env).check()
    return env, work, terraform(work, env, "apply", "-auto-approve", "-input=false", "-json")


# 100 simulated seconds a real one: a droplet's 10 s poll delay takes 0.1 s.
SCALED = {ratelimit.ENV: "on", ratelimit.SCALE_ENV: "100"}


def test_the_provider_counts_its_calls_on_the_same_log(tmp_path: Path) -> None:
    """VPC: one POST; each droplet (active at once): POST + one poll after 10 s."""
    env, _, result = _apply(tmp_path, SCALED)
    assert result.returncode == 0, result.stdout[-2000:]
    limiter = ratelimit.RateLimiter(ratelimit.log_path(Path(env["DO_SIM_STATE"])),
                                    clock=ratelimit.scaled_clock(100))
    assert len(limiter.counted(TOKEN)) == 1 + 2 * 2


def test_the_provider_waits_out_a_full_minute_as_godo_does(tmp_path: Path) -> None:
    """250 requests of another client in the last minute: the provider's first calls get
    429 with Retry-After, wait, retry, and the apply succeeds."""
    state = tmp_path / "account.json"
    limiter = ratelimit.RateLimiter(ratelimit.log_path(state), clock=ratelimit.scaled_clock(100))
    now = limiter.clock()
    limiter.record(TOKEN, [now - 50 + i * 0.01 for i in range(250)])
    env, work, result = _apply(tmp_path, {**SCALED, "DO_SIM_STATE": str(state)})
    assert result.returncode == 0, result.stdout[-2000:]
    assert len(state_resources(terraform_show_state(work, env))) == 3
    # Its first request was let through only once the oldest of the 250 had expired.
    mine = [t for t in limiter.counted(TOKEN) if t > now]
    assert len(mine) == 5 and min(mine) >= now + 9.9


def test_the_provider_fails_as_the_real_one_when_the_hour_is_used_up(tmp_path: Path) -> None:
    """5,000 requests in the last hour and no retries (``DIGITALOCEAN_HTTP_RETRY_MAX=0``,
    the provider's own setting; with retries it would wait out Retry-After, 30 minutes
    here): the 429 reaches the resource as godo formats it."""
    state = tmp_path / "account.json"
    limiter = ratelimit.RateLimiter(ratelimit.log_path(state), clock=ratelimit.scaled_clock(1))
    now = limiter.clock()
    limiter.record(TOKEN, [now - 1800 + i * 0.3 for i in range(5000)])
    _, _, result = _apply(tmp_path, {ratelimit.ENV: "on", "DO_SIM_STATE": str(state),
                                         apicalls.RETRY_MAX_ENV: "0"})
    assert result.returncode == 1
    text = result.stdout
    assert "Error creating VPC: POST https://api.digitalocean.com/v2/vpcs: 429" in text
    assert "API Rate limit exceeded." in text


# 10 simulated seconds a real one: a minute's window lasts 6 s, long enough for Terraform to
# start on a loaded machine and short enough for a test.
SLOW = {ratelimit.ENV: "on", ratelimit.SCALE_ENV: "10"}


def _apply_after_a_burst(tmp_path: Path, extra: dict[str, str]) -> TerraformResult:
    """Another client has just made 250 requests (the minute's limit) with this token;
    the module (a VPC and two droplets) is applied at once."""
    state = tmp_path / "account.json"
    env = prepare_plugin_env(tmp_path / "env", token=TOKEN,
                             extra={**SLOW, "DO_SIM_STATE": str(state), **extra})
    work = copy_module(_write_module(tmp_path / "src", HEADER + VPC + DROPLETS), tmp_path / "w")
    terraform_init(work, env).check()
    limiter = ratelimit.RateLimiter(ratelimit.log_path(state), clock=ratelimit.scaled_clock(10))
    now = limiter.clock()
    limiter.record(TOKEN, [now + i * 0.01 for i in range(250)])
    return terraform(work, env, "apply", "-auto-approve", "-input=false", "-json")


@pytest.mark.parametrize("header", ["on", "off"])
def test_a_burst_past_the_minute_is_survived_with_provisions_retry_settings(
        tmp_path: Path, header: str) -> None:
    """With the settings provision gives Terraform (provisioner/infra/retries.py: 8
    retries, waits doubling from 1 s up to 60 s), the provider outlasts a full minute's
    window whether or not the 429s carry ``Retry-After`` (``DO_SIM_RETRY_AFTER``: the API
    reference, digitalocean/openapi ``shared/headers.yml``, documents only the
    ``ratelimit-*`` headers)."""
    result = _apply_after_a_burst(tmp_path, {**retries.SETTINGS,
                                             ratelimit.RETRY_AFTER_ENV: header})
    assert result.returncode == 0, result.stdout[-2000:]


def test_without_retry_after_the_providers_defaults_give_up_within_the_minute(
        tmp_path: Path) -> None:
    """terraform-provider-digitalocean v2.34.1's defaults (``provider.go`` lines 76-93:
    4 retries, 1-30 s) with go-retryablehttp v0.7.4's ``DefaultBackoff`` (``client.go``
    lines 520-537) wait 1 + 2 + 4 + 8 = 15 s without ``Retry-After``: the burst's minute
    has not turned over, and the 429 reaches the resource."""
    result = _apply_after_a_burst(tmp_path, {ratelimit.RETRY_AFTER_ENV: "off"})
    assert result.returncode == 1
    assert "Error creating VPC: POST https://api.digitalocean.com/v2/vpcs: 429" in result.stdout
    assert "API Rate limit exceeded." in result.stdout


def test_the_backoff_of_go_retryablehttp() -> None:
    """``DefaultBackoff`` (go-retryablehttp v0.7.4 ``client.go`` lines 520-537):
    Retry-After as sent, else ``min * 2^attempt`` capped at ``max``."""
    assert [apicalls.backoff(i, None, 1.0, 30.0) for i in range(4)] == [1, 2, 4, 8]
    assert [apicalls.backoff(i, None, 1.0, 60.0) for i in range(8)] == [
        1, 2, 4, 8, 16, 32, 60, 60]
    assert apicalls.backoff(0, 45.0, 1.0, 30.0) == 45.0  # Retry-After is not capped
