"""provision's own DigitalOcean calls under the API's rate limits, over real HTTP.

The fake API enforces the documented limits per token (tests/fakes/doprovider/ratelimit.py:
250 requests a minute, 5,000 an hour, each request counted for an hour; digitalocean/openapi
``specification/description.yml`` "Rate Limit", commit 0a1f36f46bdaca64359b4542b7beed2b94e130ed)
on a pinned clock that provision's waits move on, so a minute's wait takes no real time.
Before provision/cloud/throttle.py, preflight retried a 429 after 1, 2 and 4 s whatever
the API said, and a minute window that needed 20 s to drain failed the command.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from provisioner.cloud import preflight, throttle
from tests.fakes.doapi import FakeDigitalOcean
from tests.support.sim import TOKEN, Simulation, simulation

pytestmark = pytest.mark.integration


class Clock:
    """The fake API's clock, moved only by provision's waits."""

    def __init__(self) -> None:
        self.now = time.time()
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    pinned = Clock()
    monkeypatch.setattr(preflight, "_sleep", pinned.sleep, raising=False)
    return pinned


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    with FakeDigitalOcean(tmp_path / "account.json", TOKEN, validate=True) as api:
        api.seed()
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        yield api
        assert api.violations == []


def test_a_full_minute_is_waited_out_as_retry_after_says(fake: FakeDigitalOcean,
                                                         clock: Clock) -> None:
    limiter = fake.limit_rate(clock=clock)
    # Another client of the token (CI, the cloud controller manager) made 250 requests
    # 40 s ago: the minute has room again in 20 s.
    limiter.record(TOKEN, [clock.now - 40] * 250)
    view = preflight.read_account(TOKEN)
    assert view.droplet_limit == 25 and "fra1" in view.regions  # every read answered
    assert clock.slept == [20.0]
    refused = [r for r in fake.requests() if r.status == 429]
    assert len(refused) == 1 and refused[0].response_headers["Retry-After"] == "20"


def test_without_retry_after_the_minute_is_outlasted_by_backoff(fake: FakeDigitalOcean,
                                                                 clock: Clock) -> None:
    """The API reference documents only the ``ratelimit-*`` headers on a 429
    (digitalocean/openapi ``shared/headers.yml``, ``shared/responses/too_many_requests.yml``),
    so the fake can leave ``Retry-After`` out: provision then doubles its wait until the
    minute has room (here after 20 s)."""
    limiter = fake.limit_rate(clock=clock, retry_after=False)
    limiter.record(TOKEN, [clock.now - 40] * 250)
    view = preflight.read_account(TOKEN)
    assert view.droplet_limit == 25 and "fra1" in view.regions
    assert clock.slept == [1.0, 2.0, 4.0, 8.0, 16.0]
    refused = [r for r in fake.requests() if r.status == 429]
    assert len(refused) == 5
    assert all("Retry-After" not in r.response_headers for r in refused)


def test_a_used_up_hour_is_one_error_naming_the_limit(fake: FakeDigitalOcean,
                                                      clock: Clock) -> None:
    limiter = fake.limit_rate(clock=clock)
    oldest = clock.now - 1800  # expires in half an hour: longer than provision waits
    limiter.record(TOKEN, [oldest + i * 0.3 for i in range(5000)])
    with pytest.raises(preflight.PreflightError) as failed:
        preflight.read_account(TOKEN)
    at = time.strftime("%H:%M:%S UTC", time.gmtime(math.ceil(oldest + 3600)))
    assert str(failed.value) == (
        "reading the account from DigitalOcean: the API token has used up its 5,000 requests "
        f"an hour (each request counts for an hour); the oldest expires at {at} "
        "(RateLimit-Reset): run again then, or stop what else uses this token")
    assert clock.slept == []
    assert len(fake.requests()) == 1  # asked once, not hammered


def test_the_wait_is_bounded(fake: FakeDigitalOcean, clock: Clock,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A minute that never drains (another client keeps it full) ends in one error."""
    limiter = fake.limit_rate(clock=clock)

    def refill(seconds: float) -> None:
        clock.sleep(seconds)
        limiter.record(TOKEN, [clock.now - 1 + i * 0.001 for i in range(250)])

    monkeypatch.setattr(preflight, "_sleep", refill, raising=False)
    limiter.record(TOKEN, [clock.now - 1 + i * 0.001 for i in range(250)])
    with pytest.raises(preflight.PreflightError, match="250 requests a minute and 5,000 an hour"):
        preflight.read_account(TOKEN)
    assert sum(clock.slept) <= throttle.MAX_WAIT


def test_plan_through_the_cli_reports_the_limit_with_exit_1(tmp_path: Path,
                                                            clock: Clock) -> None:
    sim: Simulation
    with simulation(tmp_path) as sim:
        limiter = sim.api.limit_rate(clock=clock)
        limiter.record(TOKEN, [clock.now - 1800 + i * 0.3 for i in range(5000)])
        result = sim.run("plan", str(sim.config))
    assert result.code == 1, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "5,000 requests an hour" in lines[0], result.stderr
    assert "Traceback" not in result.stderr
