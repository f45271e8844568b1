"""The rollout gate read from DigitalOcean's load balancer monitoring API (the fake).

Upstream facts (digitalocean/openapi, commit in tests/data/README.md, copied to
tests/data/digitalocean-openapi): ``GET /v2/monitoring/metrics/load_balancer/
frontend_http_responses`` takes ``lb_id``, ``start`` and ``end`` (Unix seconds), all
required (``resources/monitoring/parameters.yml``), and answers a matrix of series with
``[unix_time, "value"]`` pairs (``models/metrics*.yml``); its summary calls the values a
"Rate Of Response Code", i.e. responses per second at each step. The fake serves that
shape (tests/fakes/doapi/monitoring.py) and the `fake` fixture checks every exchange
against the copied description. The class label's name is not documented (the fake calls
it ``class``; the reader accepts it under any label).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from provisioner.gate import GateError, GateReading, GateSource, judge, read_error_rate
from tests.fakes.doapi import FakeDigitalOcean
from tests.support.do_account import TOKEN

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # pinned: the test's windows never move
T = int(NOW.timestamp())
LB = "4de7ac8b-495b-4884-9a69-1050c6793cd6"
OTHER = "9b0e7c1a-2f54-4c36-8d0b-6e1f7a3c5d21"


@pytest.fixture
def monitoring(fake: FakeDigitalOcean) -> FakeDigitalOcean:
    fake.monitoring.clock = lambda: float(T)
    return fake


def source(fake: FakeDigitalOcean, token: str = TOKEN) -> GateSource:
    return GateSource(kind="digitalocean", api_url=fake.endpoint, token=token)


def read(fake: FakeDigitalOcean, *lbs: str, window: int = 300,
         token: str = TOKEN) -> GateReading:
    return read_error_rate(source(fake, token), load_balancer_ids=list(lbs) or [LB],
                           window_seconds=window, now=NOW)


def test_ratio_from_rates_over_the_window(monitoring: FakeDigitalOcean) -> None:
    """99 + 1 responses a second for ten minutes: a 5-minute window holds 30,000
    responses and 300 5xx; the request carries lb_id, start and end as documented."""
    monitoring.monitoring.traffic(LB, T - 600, T + 600, **{"2xx": 99, "5xx": 1})
    reading = read(monitoring)
    assert (reading.requests, reading.errors, reading.window_seconds) == (30_000, 300, 300)
    assert reading.ratio == pytest.approx(0.01)
    assert reading.source == "digitalocean-monitoring" and LB in reading.detail
    [request] = monitoring.requests("GET", "/v2/monitoring/metrics/load_balancer/*")
    assert request.query == {"lb_id": LB, "start": str(T - 300), "end": str(T)}


def test_values_are_rates_turned_into_counts_with_the_step(monitoring: FakeDigitalOcean) -> None:
    """The API serves responses per second; the count is rate x step whatever the step the
    API picked (15 s or 60 s give the same counts), not the sum of the raw values."""
    monitoring.monitoring.traffic(LB, T - 600, T, **{"2xx": 10, "4xx": 2, "5xx": 3})
    counts = []
    for step in (15, 60):
        monitoring.monitoring.step = step
        reading = read(monitoring)
        counts.append((reading.requests, reading.errors))
    assert counts == [(4500, 900), (4500, 900)]
    body = monitoring.requests("GET", "/v2/monitoring/metrics/load_balancer/*")[-1].response
    five = next(s for s in body["data"]["result"] if s["metric"]["class"] == "5xx")
    assert five["values"][-1] == [T, "3"]  # a rate: 3 a second, not 180 a step


def test_several_load_balancers_are_summed(monitoring: FakeDigitalOcean) -> None:
    monitoring.monitoring.traffic(LB, T - 300, T, **{"2xx": 10})
    monitoring.monitoring.traffic(OTHER, T - 300, T, **{"2xx": 5, "5xx": 5})
    reading = read(monitoring, LB, OTHER)
    assert (reading.requests, reading.errors) == (6000, 1500)


def test_window_boundaries(monitoring: FakeDigitalOcean) -> None:
    """A sample stands for the step that ends at its time: a burst in the step ending at
    the window's start is before the window, one in the last step is inside, and the
    fake serves nothing past its clock."""
    monitoring.monitoring.step = 60
    monitoring.monitoring.traffic(LB, T - 900, T + 900, **{"2xx": 1})
    monitoring.monitoring.traffic(LB, T - 360, T - 300, **{"5xx": 100})  # just before
    reading = read(monitoring)
    assert (reading.requests, reading.errors) == (300, 0)
    monitoring.monitoring.traffic(LB, T - 60, T, **{"5xx": 1})  # the last step
    reading = read(monitoring)
    assert (reading.requests, reading.errors) == (360, 60)
    body = monitoring.requests("GET", "/v2/monitoring/metrics/load_balancer/*")[-1].response
    stamps = {v[0] for s in body["data"]["result"] for v in s["values"]}
    assert min(stamps) == T - 300 and max(stamps) == T  # start's sample is served, not counted


def test_no_traffic_is_a_reading_of_zero(monitoring: FakeDigitalOcean) -> None:
    """Series of zeros: the load balancer reports HTTP codes and nobody called it."""
    monitoring.monitoring.traffic(LB, T - 600, T, **{"2xx": 0, "5xx": 0})
    reading = read(monitoring)
    assert (reading.requests, reading.errors, reading.ratio) == (0, 0, None)


def test_no_data_is_an_error_naming_the_load_balancer(monitoring: FakeDigitalOcean) -> None:
    """An empty result (a network load balancer, TCP rules, or nothing collected yet)
    cannot be told from a healthy region: the gate refuses to pass it."""
    with pytest.raises(GateError, match=f"no data: .*load balancer {LB}.*HTTP or HTTPS"):
        read(monitoring)


@pytest.mark.parametrize("status", [500, 503])
def test_api_error_is_cannot_read(monitoring: FakeDigitalOcean, status: int) -> None:
    monitoring.monitoring.traffic(LB, T - 600, T, **{"2xx": 1})
    monitoring.faults.fail(1, status=status)
    with pytest.raises(GateError, match=f"cannot read HTTP response metrics of load balancer "
                                        f"{LB}: HTTP {status}") as caught:
        read(monitoring)
    assert caught.value.exit_code == 1


def test_refused_token_is_cannot_read_and_not_printed(monitoring: FakeDigitalOcean) -> None:
    with pytest.raises(GateError, match=r"HTTP 401 \(Unable to authenticate you\)") as caught:
        read(monitoring, token="wrong-token")
    assert "wrong-token" not in str(caught.value)
    assert "wrong-token" not in repr(source(monitoring, "wrong-token"))


def test_verdict_needs_the_minimum_of_requests(monitoring: FakeDigitalOcean) -> None:
    """2 % 5xx on 300 requests is too little to judge with a minimum of 500; on 3,000 it
    is a breach naming the ratio and the threshold; 0.5 % passes."""
    monitoring.monitoring.traffic(LB, T - 300, T, **{"2xx": 0.98, "5xx": 0.02})
    verdict = judge(read(monitoring), max_ratio=0.01, min_requests=500)
    assert verdict.outcome == "too_few_requests" and "minimum of 500" in verdict.message
    monitoring.monitoring.traffic(LB, T - 300, T, **{"2xx": 8.82, "5xx": 0.18})
    verdict = judge(read(monitoring), max_ratio=0.01, min_requests=500)
    assert verdict.outcome == "breach"
    assert "60 of 3000" in verdict.message
    assert "ratio 0.0200 is above the threshold 0.01" in verdict.message
    monitoring.monitoring.traffic(LB, T - 300, T, **{"2xx": 30})
    assert judge(read(monitoring), max_ratio=0.01, min_requests=500).outcome == "pass"
