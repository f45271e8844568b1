"""`provision deploy FLEET` in a simulated world: three regions, each its own fake cluster
(the fake Kubernetes API server), their load balancers on one fake DigitalOcean account.

The error-rate gate (provisioner.gate, the gate's own package) is replaced in these tests by
a scripted one with the same interface (read_error_rate(source, *, load_balancer_ids,
window_seconds, now) -> GateReading): what it is asked proves the rollout found each
region's load balancers in the account (by the names lb_names.py gives the cloud controller
manager's load balancers) and read them at the times its bake says. The clock is pinned and
moves only when the rollout sleeps (provisioner.fleet.rollout.nap), so windows in several
time zones are judged at known instants whatever day the suite runs.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import sys
import types
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

import provisioner
import provisioner.clock
from provisioner.cli.main import cli
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
REGIONS = ("fra1", "ams3", "nyc3")
# Wednesday 2026-03-04 14:10 UTC: 15:10 in Berlin and Amsterdam, 09:10 in New York: every
# region's window (Mon-Thu 09:00-16:00 Berlin, 10:00-17:00 Amsterdam, 09:00-16:00 New York)
# is open for the 30 minutes three 10-minute bakes take.
ALL_OPEN = dt.datetime(2026, 3, 4, 14, 10, tzinfo=dt.UTC)
# Wednesday 2026-03-04 08:30 UTC: 09:30 in Berlin (fra1 open), 09:30 in Amsterdam (ams3
# opens at 10:00 = 09:00 UTC), 03:30 in New York (nyc3 opens at 09:00 = 14:00 UTC).
BERLIN_MORNING = dt.datetime(2026, 3, 4, 8, 30, tzinfo=dt.UTC)


@dataclass
class Reading:
    """provisioner.gate.GateReading's fields (the contract of issue 16)."""

    requests: int
    errors: int
    window_seconds: int
    source: str
    detail: str

    @property
    def ratio(self) -> float | None:
        return self.errors / self.requests if self.requests else None


@dataclass
class Source:
    kind: str
    api_url: str | None = None
    token: str | None = None
    url: str | None = None
    query: str | None = None


@dataclass
class Time:
    """The pinned clock; the rollout's naps move it on."""

    now: dt.datetime
    naps: list[float] = field(default_factory=list)

    def nap(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class World:
    folder: Path
    fleet: Path
    kube: dict[str, FakeKubeAPI]
    lb_ids: dict[str, str]  # region -> the id of its web load balancer
    time: Time
    # region -> (requests, errors) the scripted gate answers with, at any instant
    traffic: dict[str, Callable[[dt.datetime], tuple[int, int]]]
    asked: list[tuple[str, list[str], int, dt.datetime, str]] = field(default_factory=list)

    def deploy(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(cli, ["deploy", str(self.fleet), *args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return result.exit_code, result.stdout, result.stderr

    def image(self, region: str) -> str | None:
        """The image of the web Deployment its Service sends traffic to, or None."""
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


def healthy(now: dt.datetime) -> tuple[int, int]:
    return 2400, 3


@pytest.fixture
def world(tmp_path: Path, fake: FakeDigitalOcean,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    for region in REGIONS:
        shutil.copy(ROOT / "examples" / "fleet" / f"{region}.yaml", tmp_path / f"{region}.yaml")
    fleet = yaml.safe_load((ROOT / "examples" / "fleet" / "fleet.yaml").read_text())
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(fleet, sort_keys=False))
    time = Time(ALL_OPEN)
    monkeypatch.setattr(provisioner.clock, "now", lambda: time.now)
    monkeypatch.setattr("provisioner.fleet.rollout.nap", time.nap)
    with ExitStack() as stack:
        kube = {}
        lb_ids = {}
        for region in REGIONS:
            server = stack.enter_context(FakeKubeAPI())
            for i in (1, 2, 3):
                server.add_node(f"{region}-general-{i}")
            work = tmp_path / ".provision" / region
            work.mkdir(parents=True)
            server.write_kubeconfig(work / "kubeconfig")
            kube[region] = server
            # What the cloud controller manager makes for the web Service (lb_names.py).
            lb_ids[region] = fake.add_load_balancer(f"{region}.web", region=region)
        fake.add_load_balancer("other.web", region="fra1")  # another environment's
        state = World(tmp_path, tmp_path / "fleet.yaml", kube, lb_ids, time,
                      dict.fromkeys(REGIONS, healthy))
        by_id = {v: k for k, v in lb_ids.items()}

        def read_error_rate(source: Source, *, load_balancer_ids: list[str],
                            window_seconds: int, now: dt.datetime) -> Reading:
            regions = {by_id[i] for i in load_balancer_ids}
            assert len(regions) == 1, load_balancer_ids
            region = regions.pop()
            state.asked.append((region, list(load_balancer_ids), window_seconds, now,
                                source.kind))
            requests, errors = state.traffic[region](now)
            return Reading(requests, errors, window_seconds, "digitalocean-monitoring",
                           f"load balancer {load_balancer_ids[0]}")

        gate = types.ModuleType("provisioner.gate")
        # Still a package: the evacuation imports provisioner.gate.global_lb, which must
        # load whether or not an earlier test imported it (test order decided it before).
        import provisioner.gate as real_gate
        gate.__path__ = list(real_gate.__path__)
        gate.GateSource = Source  # type: ignore[attr-defined]
        gate.GateReading = Reading  # type: ignore[attr-defined]
        gate.read_error_rate = read_error_rate  # type: ignore[attr-defined]
        monkeypatch.setitem(sys.modules, "provisioner.gate", gate)
        monkeypatch.setattr(provisioner, "gate", gate, raising=False)
        yield state


def timeline(summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(e["environment"], t["at"], t["event"]) for e in summary["environments"]
            for t in e["timeline"]]


def test_a_clean_rollout_goes_canary_bake_then_each_wave(world: World) -> None:
    code, out, err = world.deploy("--output", "json")
    assert code == 0, err
    summary = json.loads(out)
    assert [(e["environment"], e["stage"], e["status"]) for e in summary["environments"]] == [
        ("fra1", "canary", "ok"), ("ams3", "wave 1", "ok"), ("nyc3", "wave 2", "ok")]
    # Each region deployed only after the one before had baked 10 minutes, read every minute.
    events = timeline(summary)
    deployed = {r: at for r, at, e in events if e == "deployed"}
    done = {r: at for r, at, e in events if e == "bake done"}
    assert deployed == {"fra1": "2026-03-04T14:10:00Z", "ams3": "2026-03-04T14:20:00Z",
                        "nyc3": "2026-03-04T14:30:00Z"}
    assert done == {"fra1": "2026-03-04T14:20:00Z", "ams3": "2026-03-04T14:30:00Z",
                    "nyc3": "2026-03-04T14:40:00Z"}
    assert [(r, ids, w, now.strftime("%H:%M"), kind) for r, ids, w, now, kind
            in world.asked][:2] == [
        ("fra1", [world.lb_ids["fra1"]], 300, "14:11", "digitalocean"),
        ("fra1", [world.lb_ids["fra1"]], 300, "14:12", "digitalocean")]
    assert [r for r, *_ in world.asked] == ["fra1"] * 10 + ["ams3"] * 10 + ["nyc3"] * 10
    for region in REGIONS:
        assert world.image(region) == "ghcr.io/acme/web:2.3.0"
    assert "ams3 (wave 1): gate pass: 5xx ratio 0.0013 (3 of 2400 responses" in err


def test_a_breach_rolls_the_canary_back_and_leaves_the_others_untouched(world: World) -> None:
    assert world.deploy()[0] == 0  # 2.3.0 everywhere: what a rollback returns to
    world.set_image("ghcr.io/acme/web:2.4.0")
    world.time.now = ALL_OPEN + dt.timedelta(days=7)
    world.asked.clear()
    # Four minutes after the canary's deploy its load balancer starts answering 5xx.
    start = world.time.now
    world.traffic["fra1"] = lambda now: ((2000, 4) if now < start + dt.timedelta(minutes=4)
                                         else (1800, 81))
    before = {r: world.kube[r].get("apps/v1", "Deployment", "web-green", r) for r in REGIONS}
    code, out, err = world.deploy()
    assert code == 1, err
    assert ("fra1: the 5xx ratio 0.0450 (81 of 1800 responses in the last 5m) is above "
            "gate.max_5xx_ratio 0.01: fra1 was rolled back (web: traffic switched back from "
            "green to blue)") in err
    assert world.image("fra1") == "ghcr.io/acme/web:2.3.0", "serving the old release again"
    assert [r for r, *_ in world.asked] == ["fra1"] * 4, "stopped at the first breach"
    for region in ("ams3", "nyc3"):  # never deployed: no new colour, the old one serving
        assert world.kube[region].get("apps/v1", "Deployment", "web-green", region) == (
            before[region])
        assert world.image(region) == "ghcr.io/acme/web:2.3.0"
    assert "  fra1  canary  rolled back exit 1" in out
    assert "  ams3  wave 1  skipped" in out and "  nyc3  wave 2  skipped" in out
    assert "exit code 1" in out


def test_on_breach_evacuate_also_records_the_region_out(world: World) -> None:
    assert world.deploy()[0] == 0
    fleet = yaml.safe_load(world.fleet.read_text())
    fleet["gate"]["on_breach"] = "evacuate"
    world.fleet.write_text(yaml.safe_dump(fleet))
    world.set_image("ghcr.io/acme/web:2.4.0")
    world.traffic["fra1"] = lambda now: (1000, 500)
    code, _out, err = world.deploy()
    assert code == 1 and "was rolled back and evacuated" in err
    result = CliRunner().invoke(cli, ["status", str(world.fleet), "--output", "json"])
    traffic = json.loads(result.stdout)["traffic"]
    assert list(traffic["evacuated"]) == ["fra1"]
    assert traffic["evacuated"]["fra1"]["automatic"] is True
    assert list(traffic["targets"]) == ["ams3", "nyc3"]


def test_windows_in_two_time_zones_are_waited_for(world: World) -> None:
    world.time.now = BERLIN_MORNING
    code, out, err = world.deploy("--output", "json")
    assert code == 0, err
    events = timeline(json.loads(out))
    deployed = {r: at for r, at, e in events if e == "deployed"}
    # fra1 at once (09:30 Berlin); ams3 at its window's opening, 10:00 Amsterdam; nyc3 at
    # its own, 09:00 New York (14:00 UTC): each judged in its own time zone.
    assert deployed == {"fra1": "2026-03-04T08:30:00Z", "ams3": "2026-03-04T09:00:00Z",
                        "nyc3": "2026-03-04T14:00:00Z"}
    assert "ams3 (wave 1): outside the deploy windows (mon-thu 10:00-17:00 Europe/Amsterdam); " \
           "waiting until 2026-03-04T10:00+01:00" in err
    assert "nyc3 (wave 2): outside the deploy windows (mon-thu 09:00-16:00 America/New_York); " \
           "waiting until 2026-03-04T09:00-05:00" in err


def test_no_wait_refuses_a_closed_region_with_exit_3(world: World) -> None:
    world.time.now = BERLIN_MORNING
    code, out, err = world.deploy("--no-wait")
    assert code == 3, err
    assert ("ams3: deploys to ams3 are not allowed now: outside the deploy windows (mon-thu "
            "10:00-17:00 Europe/Amsterdam); next allowed 2026-03-04T10:00+01:00") in err
    assert world.image("fra1") == "ghcr.io/acme/web:2.3.0"
    assert world.image("ams3") is None and world.image("nyc3") is None
    assert "  ams3  wave 1  refused     exit 3" in out


def test_override_window_for_one_region_only(world: World) -> None:
    world.time.now = BERLIN_MORNING
    code, _out, err = world.deploy("--no-wait", "--override-window", "--reason", "INC-9",
                                  "--region", "ams3")
    assert code == 3, err  # ams3 overridden; nyc3 still refused
    assert world.image("ams3") == "ghcr.io/acme/web:2.3.0"
    deployment = world.kube["ams3"].get("apps/v1", "Deployment", "web-blue", "ams3")
    assert deployment is not None
    assert deployment["metadata"]["annotations"][
        "provision.dev/window-override-reason"] == "INC-9"
    assert "nyc3: deploys to nyc3 are not allowed now" in err
