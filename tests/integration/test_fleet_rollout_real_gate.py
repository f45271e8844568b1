"""`provision deploy FLEET` with the REAL gate (provisioner.gate, no stand-in): each bake
reads the canary's app load balancer through DigitalOcean's monitoring API as the fake API
serves it (``GET /v2/monitoring/metrics/load_balancer/frontend_http_responses``, the shape
tests/fakes/doapi/monitoring.py cites from digitalocean/openapi), driven by the test's
``fake.monitoring.traffic(...)``.

Three regions, each its own fake cluster (the fake Kubernetes API server), their app load
balancers on one fake account, found by the names lb_names.py gives the cloud controller
manager's load balancers. The clock is pinned (provision's and the fake monitoring's) and
moves only when the rollout sleeps, so the bakes and windows are judged at known instants.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import provisioner.clock
from provisioner.cli.main import cli
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
REGIONS = ("fra1", "ams3", "nyc3")
# Wednesday 2026-03-04 14:10 UTC: inside every region's window for the 30 minutes three
# 10-minute bakes take (15:10 Berlin and Amsterdam, 09:10 New York).
ALL_OPEN = dt.datetime(2026, 3, 4, 14, 10, tzinfo=dt.UTC)
DAY = 86_400


@dataclass
class Time:
    now: dt.datetime
    naps: list[float] = field(default_factory=list)

    def nap(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class World:
    folder: Path
    fleet: Path
    fake: FakeDigitalOcean
    kube: dict[str, FakeKubeAPI]
    lb_ids: dict[str, str]
    time: Time

    def deploy(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["deploy", str(self.fleet), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def image(self, region: str) -> str | None:
        service = self.kube[region].get("v1", "Service", "web", region)
        if service is None:
            return None
        colour = service["spec"]["selector"]["provision.dev/colour"]
        deployment = self.kube[region].get("apps/v1", "Deployment", f"web-{colour}", region)
        assert deployment is not None
        return str(deployment["spec"]["template"]["spec"]["containers"][0]["image"])

    def set_image(self, image: str) -> None:
        for region in REGIONS:
            path = self.folder / f"{region}.yaml"
            path.write_text(path.read_text().replace("ghcr.io/acme/web:2.3.0", image))

    def gate_requests(self) -> list[dict[str, str]]:
        return [r.query for r in self.fake.requests(
            "GET", "/v2/monitoring/metrics/load_balancer/*")]


@pytest.fixture
def world(tmp_path: Path, fake: FakeDigitalOcean,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for name in ("fleet", *REGIONS):
        shutil.copy(ROOT / "examples" / "fleet" / f"{name}.yaml", tmp_path / f"{name}.yaml")
    time = Time(ALL_OPEN)
    monkeypatch.setattr(provisioner.clock, "now", lambda: time.now)
    monkeypatch.setattr("provisioner.fleet.rollout.nap", time.nap)
    fake.monitoring.clock = lambda: time.now.timestamp()
    with ExitStack() as stack:
        kube: dict[str, FakeKubeAPI] = {}
        lb_ids: dict[str, str] = {}
        for region in REGIONS:
            server = stack.enter_context(FakeKubeAPI())
            for i in (1, 2, 3):
                server.add_node(f"{region}-general-{i}")
            work = tmp_path / ".provision" / region
            work.mkdir(parents=True)
            server.write_kubeconfig(work / "kubeconfig")
            kube[region] = server
            # The web app's HTTP load balancer, as the cloud controller manager made it.
            lb_ids[region] = fake.add_load_balancer(f"{region}.web", region=region)
            # Healthy traffic all day: 8 responses a second, one 5xx every 100 s.
            start = ALL_OPEN.timestamp() - 3600
            fake.monitoring.traffic(lb_ids[region], start, start + 8 * DAY,
                                    **{"2xx": 7.99, "5xx": 0.01})
        yield World(tmp_path, tmp_path / "fleet.yaml", fake, kube, lb_ids, time)


def timeline(summary: dict[str, Any]) -> list[tuple[str, str, str, Any]]:
    return [(e["environment"], t["at"], t["event"],
             (t.get("requests"), t.get("errors"), t.get("verdict")) if t["event"] == "gate"
             else None)
            for e in summary["environments"] for t in e["timeline"]]


def show(events: list[tuple[str, str, str, Any]]) -> None:
    """The timeline, for the record (pytest -s prints it)."""
    for region, at, event, reading in events:
        print(f"{region:5} {at} {event}" + (f" {reading}" if reading else ""))


def test_a_clean_rollout_goes_canary_bake_then_each_wave(world: World) -> None:
    code, out, err = world.deploy("--output", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert [(e["environment"], e["stage"], e["status"]) for e in summary["environments"]] == [
        ("fra1", "canary", "ok"), ("ams3", "wave 1", "ok"), ("nyc3", "wave 2", "ok")]
    events = timeline(summary)
    show(events)
    deployed = {r: at for r, at, e, _ in events if e == "deployed"}
    assert deployed == {"fra1": "2026-03-04T14:10:00Z", "ams3": "2026-03-04T14:20:00Z",
                        "nyc3": "2026-03-04T14:30:00Z"}
    readings = [(r, reading) for r, _, e, reading in events if e == "gate"]
    # Ten readings a region (every minute of a 10-minute bake), each 5 minutes of 8/s:
    # 2,400 responses, 3 of them 5xx (0.0013 <= 0.01): a pass.
    assert [r for r, _ in readings] == ["fra1"] * 10 + ["ams3"] * 10 + ["nyc3"] * 10
    assert {reading for _, reading in readings} == {(2400, 3, "pass")}
    # Each read asked the API for its own region's load balancer over the last 5 minutes.
    asked = world.gate_requests()
    assert [q["lb_id"] for q in asked] == ([world.lb_ids["fra1"]] * 10
                                           + [world.lb_ids["ams3"]] * 10
                                           + [world.lb_ids["nyc3"]] * 10)
    first = int((ALL_OPEN + dt.timedelta(minutes=1)).timestamp())
    assert (asked[0]["start"], asked[0]["end"]) == (str(first - 300), str(first))
    for region in REGIONS:
        assert world.image(region) == "ghcr.io/acme/web:2.3.0"


def test_a_5xx_burst_in_the_canary_rolls_it_back_and_stops(world: World) -> None:
    assert world.deploy()[0] == 0  # 2.3.0 everywhere: what a rollback returns to
    world.set_image("ghcr.io/acme/web:2.4.0")
    world.time.now = start = ALL_OPEN + dt.timedelta(days=7)
    before = {r: world.kube[r].get("apps/v1", "Deployment", "web-green", r) for r in REGIONS}
    calls = len(world.gate_requests())
    # Three minutes after the canary's deploy its load balancer answers 0.5 5xx a second
    # more (on top of the healthy 8/s): 30 a minute.
    burst = start.timestamp() + 180
    world.fake.monitoring.traffic(world.lb_ids["fra1"], burst, burst + 3600, **{"5xx": 0.5})
    code, out, err = world.deploy("--output", "json")
    assert code == 1, err
    summary = json.loads(out)
    events = timeline(summary)
    show(events)
    readings = [reading for r, _, e, reading in events if e == "gate"]
    # Minutes 1-3 see none of it; minute 4 (14:14) sees one minute of it, 30 more 5xx:
    # 33 of 2,430 (0.0136 > 0.01).
    assert readings == [(2400, 3, "pass")] * 3 + [(2430, 33, "breach")]
    assert ("fra1: the 5xx ratio 0.0136 (33 of 2430 responses in the last 5m) is above "
            "gate.max_5xx_ratio 0.01: fra1 was rolled back (web: traffic switched back from "
            "green to blue)") in err
    assert world.image("fra1") == "ghcr.io/acme/web:2.3.0", "serving the old release again"
    assert [q["lb_id"] for q in world.gate_requests()[calls:]] == [world.lb_ids["fra1"]] * 4
    for region in ("ams3", "nyc3"):  # never deployed: no new colour, the old one serving
        assert world.kube[region].get("apps/v1", "Deployment", "web-green", region) == (
            before[region])
        assert world.image(region) == "ghcr.io/acme/web:2.3.0"
    assert [(e["environment"], e["status"], e["exit_code"]) for e in summary["environments"]
            ] == [("fra1", "rolled back", 1), ("ams3", "skipped", 0), ("nyc3", "skipped", 0)]
