"""Hostile review of the fleet (branch hostile2): each test is a break a fix must make pass.

Regions are recorded stand-ins as in test_fleet_rollout_core.py; the clock is pinned and
moved only by the rollout's naps."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import provisioner.clock
from provisioner.fleet import traffic
from provisioner.fleet.model import Fleet
from provisioner.fleet.reader import load_fleet
from provisioner.fleet.rollout import GateBreached, roll_out
from provisioner.lock import Busy
from tests.support.rendering import ROOT
from tests.unit.test_fleet_rollout_core import ALL_OPEN, Reading, Recorded


def _copy(tmp_path: Path, fleet_yaml: str) -> Path:
    for name in ("fra1", "ams3", "nyc3"):
        shutil.copy(ROOT / "examples" / "fleet" / f"{name}.yaml", tmp_path / f"{name}.yaml")
    (tmp_path / "fleet.yaml").write_text(fleet_yaml)
    return tmp_path / "fleet.yaml"


@pytest.fixture
def pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    now = [ALL_OPEN]
    monkeypatch.setattr(provisioner.clock, "now", lambda: now[0])

    def nap(seconds: float) -> None:
        now[0] += dt.timedelta(seconds=seconds)

    monkeypatch.setattr("provisioner.fleet.rollout.nap", nap)
    for name in ("DIGITALOCEAN_TOKEN", "DIGITALOCEAN_ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)


WIDE_WAVE = """\
fleet: acme
environments: [fra1.yaml, ams3.yaml, nyc3.yaml]
rollout: {canary: fra1, waves: [[ams3, nyc3]], bake: 10m}
gate: {source: digitalocean, max_5xx_ratio: 0.01, min_requests: 500, window: 5m, interval: 1m}
"""


def test_every_breaching_region_of_a_wave_is_rolled_back(pinned: None, tmp_path: Path
                                                         ) -> None:  # fmt: skip
    """A wave of two regions, both answering 30% 5xx with the new release: the first one
    read (ams3) is rolled back and the rollout raises at once, so nyc3 is never read again
    and keeps serving the bad release (its outcome even says 'ok'). Every region of the
    stage must be judged on that reading and every breaching one rolled back."""
    fleet = load_fleet(_copy(tmp_path, WIDE_WAVE))
    regions = Recorded({"fra1": Reading(5000, 0), "ams3": Reading(1000, 300),
                        "nyc3": Reading(1000, 300)})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert isinstance(result.error, GateBreached)
    assert ("rollback", "ams3") in regions.done
    assert ("rollback", "nyc3") in regions.done, (
        f"nyc3 breached too but kept the bad release: {regions.done}")


def test_concurrent_evacuations_leave_the_global_lb_as_recorded(
        pinned: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two operators: alice evacuates fra1; while her Terraform apply of the global load
    balancer runs (minutes), bob evacuates ams3. Neither holds a lock on the fleet's work
    folder: bob's apply computes targets from a record without fra1 (fra1 still in), alice's
    from one without ams3. Whichever apply ends last wins, so the global load balancer
    sends users to a region traffic.json and `status` call evacuated. (With two regions
    both get evacuated: the 'never the last region' check is bypassed the same way.)"""
    fleet = load_fleet(_copy(tmp_path, WIDE_WAVE))
    traffic.glb_work(fleet).joinpath("state").mkdir(parents=True)
    traffic.glb_work(fleet).joinpath("state", "terraform.tfstate").write_text(json.dumps(
        {"resources": [{"type": "digitalocean_loadbalancer", "instances": [{}]}]}))
    finished: list[set[str]] = []
    members = {m.name: m for m in fleet.members}

    def apply(fleet: Fleet, out: set[str], **_: Any) -> str:
        if not finished and "ams3" not in out:  # alice's apply is running: bob steps in
            finished.append(set())
            # Fix: alice holds the fleet's work folder (provisioner/lock.py): bob is
            # refused at once (exit 3, as for any busy work folder) and applies nothing.
            with pytest.raises(Busy) as refused:
                traffic.evacuate(fleet, members["ams3"], "bob's incident", "bob")
            assert refused.value.exit_code == 3
        finished.append(set(out))
        return "applied"

    monkeypatch.setattr(traffic, "apply_global_lb", apply)
    traffic.evacuate(fleet, members["fra1"], "alice's incident", "alice")
    last_applied = finished[-1]
    assert set(traffic.evacuated(fleet)) == {"fra1"}
    assert last_applied == {"fra1"}, (
        f"the global load balancer was last applied with out={sorted(last_applied)} while "
        f"traffic.json says {sorted(traffic.evacuated(fleet))} are evacuated")


def test_an_evacuation_that_was_not_applied_is_not_recorded(
        pinned: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The global load balancer exists, but the account lists none of the remaining
    regions' app load balancers right now (the CCM is recreating them, or a name changed):
    apply_global_lb returns 'not applied: ...' as plain text instead of failing, and
    evacuate records fra1 as out though the global load balancer still sends users there,
    against its own comment ('a failed apply leaves no record claiming the region is out
    while users still reach it'). Exit 0, status says EVACUATED."""
    fleet = load_fleet(_copy(tmp_path, WIDE_WAVE))
    traffic.glb_work(fleet).joinpath("state").mkdir(parents=True)
    traffic.glb_work(fleet).joinpath("state", "terraform.tfstate").write_text(json.dumps(
        {"resources": [{"type": "digitalocean_loadbalancer", "instances": [{}]}]}))
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_" + "0" * 64)
    monkeypatch.setattr(traffic, "regional_ids",
                        lambda fleet, out, token: ({}, ["ams3", "nyc3"]))
    member = next(m for m in fleet.members if m.name == "fra1")
    try:
        change = traffic.evacuate(fleet, member, "INC-1", "alice")
    except Exception:
        change = None  # refusing is a fine answer
    assert "fra1" not in traffic.evacuated(fleet), (
        f"recorded as evacuated although: {change.applied if change else ''}")


def test_a_canary_answering_only_5xx_under_min_requests_is_rolled_back(
        pinned: None) -> None:
    """Low traffic (night, or clients giving up): the canary answers 400 of 400 requests
    with 5xx in every reading, under min_requests 500. The gate calls it 'too few
    requests', the fleet stops with exit 1 and nothing is rolled back: the canary keeps
    serving a release that fails every request. min_requests guards against one 5xx in a
    handful being noise; it should not shield a region whose errors alone already exceed
    max_5xx_ratio * min_requests (here 400 > 5)."""
    fleet = load_fleet(ROOT / "examples" / "fleet" / "fleet.yaml")
    regions = Recorded({"fra1": Reading(400, 400)})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert result.error is not None
    assert ("rollback", "fra1") in regions.done, (
        f"a canary failing every request was left in place: {result.error}")


def test_destroy_keeps_the_global_lb_when_a_region_refuses_deletion(
        pinned: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`destroy FLEET` removes the global load balancer first (destroy_before checks only
    the windows), then each region in reverse order. nyc3 sets `deletion_protection: true`,
    so its destroy refuses (exit 3) and nothing regional is destroyed, yet the global load
    balancer, the fleet's one public entry point, is already gone: every region still runs
    and no user reaches any. Every region's refusal (deletion protection, window, a
    missing token) must be known before the global load balancer is touched."""
    from click.testing import CliRunner

    from provisioner.cli.main import cli

    path = _copy(tmp_path, WIDE_WAVE)
    nyc3 = tmp_path / "nyc3.yaml"
    nyc3.write_text(nyc3.read_text() + "\ndeletion_protection: true\n")
    fleet = load_fleet(path)
    traffic.glb_work(fleet).joinpath("state").mkdir(parents=True)
    traffic.glb_work(fleet).joinpath("state", "terraform.tfstate").write_text(json.dumps(
        {"resources": [{"type": "digitalocean_loadbalancer", "instances": [{}]}]}))
    monkeypatch.setenv("DIGITALOCEAN_TOKEN", "dop_v1_" + "0" * 64)
    destroyed: list[str] = []

    def destroy(fleet: Fleet, **_: Any) -> str:
        destroyed.append(fleet.name)
        return "destroyed"

    monkeypatch.setattr(traffic, "destroy_global_lb", destroy)
    result = CliRunner().invoke(cli, ["destroy", str(path), "--yes", "--override-window",
                                      "--reason", "test"])
    assert result.exit_code == 3, result.output
    assert "deletion_protection" in result.output or "deletion protection" in result.output
    assert destroyed == [], "the global load balancer was destroyed though nyc3 refused"


def test_a_breach_with_on_breach_evacuate_and_the_others_out_still_says_breach(
        pinned: None, tmp_path: Path) -> None:
    """ams3 and nyc3 are evacuated (an incident); the canary fra1 breaches with
    on_breach: evacuate. It is rolled back, then evacuate() refuses to take out the last
    region with a UsageError, which becomes the fleet's error: exit 2 ('bad usage') and a
    message about evacuation, the ratio and threshold lost. A breach must exit 1 naming
    region, ratio and threshold (issue 16), whatever the evacuation could do."""
    path = _copy(tmp_path, WIDE_WAVE.replace("interval: 1m}",
                                             "interval: 1m, on_breach: evacuate}"))
    fleet = load_fleet(path)
    folder = traffic.work_folder(fleet)
    folder.mkdir(parents=True)
    (folder / "traffic.json").write_text(json.dumps([
        {"action": "evacuate", "region": r, "reason": "INC", "by": "bob",
         "automatic": False, "at": "2026-03-04T13:00:00Z"} for r in ("ams3", "nyc3")]))
    regions = Recorded({"fra1": Reading(1000, 300)})
    result = roll_out(fleet, regions, report=lambda line: None)
    assert ("rollback", "fra1") in regions.done
    assert result.error is not None
    assert result.error.exit_code == 1 and "0.3000" in str(result.error), (
        f"exit {result.error.exit_code}: {result.error}")


PROMETHEUS_GATE = """\
fleet: acme
environments: [fra1.yaml, ams3.yaml, nyc3.yaml]
rollout: {canary: fra1, waves: [[ams3], [nyc3]], bake: 10m}
gate:
  source: prometheus
  url: http://127.0.0.1:PORT
  query: sum(increase(http_requests_total{code=~"5..", region="$region"}[$window]))
  total_query: sum(increase(http_requests_total{region="$region"}[$window]))
"""


def test_prometheus_gate_reads_each_region_not_the_same_query(
        pinned: None, tmp_path: Path) -> None:
    """With source: prometheus the fleet has ONE url and ONE pair of queries, and nothing
    in them names the region (only $window is replaced; gating.read is not even given the
    member). So fra1's bake and ams3's bake send the identical query: the canary is judged
    on whatever the query counts (the whole fleet, diluting a canary-only breach by the
    regions still on the old release; or one region's Prometheus for all), and a breach
    elsewhere rolls back the canary. Each region's reading must be that region's: a
    per-region url/query, or a $region placeholder (the environment's name)."""
    import http.server
    import threading
    import urllib.parse

    from provisioner.fleet.live import LiveRegions

    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                        ["query"][0])
            body = json.dumps({"status": "success", "data": {
                "resultType": "vector", "result": [{"metric": {}, "value": [0, "1000"]}]}})
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        fleet = load_fleet(_copy(tmp_path, PROMETHEUS_GATE.replace("PORT", str(port))))
        live = LiveRegions(fleet, lambda line: None)
        members = {m.name: m for m in fleet.members}
        live.read_gate(members["fra1"], ALL_OPEN)
        fra1_queries = list(seen)
        seen.clear()
        live.read_gate(members["ams3"], ALL_OPEN)
        assert seen != fra1_queries, (
            f"fra1 and ams3 are judged by the same Prometheus queries: {seen}")
    finally:
        server.shutdown()
        server.server_close()


def test_an_unreadable_traffic_record_is_not_silently_replaced(
        pinned: None, tmp_path: Path) -> None:
    """traffic.json is not only a history: it is the one record of which regions are out.
    read_list treats an unreadable file as [] ("a history never stops the run"), so after
    a hand edit with a typo (or a truncated write) ams3's evacuation is forgotten, `status`
    shows ams3 serving, and the next evacuate overwrites the file and applies the global
    load balancer with ams3 back among its targets. It must refuse (exit 2, naming the
    file and line) and leave the file as it is."""
    fleet = load_fleet(_copy(tmp_path, WIDE_WAVE))
    folder = traffic.work_folder(fleet)
    folder.mkdir(parents=True)
    damaged = ('[{"action": "evacuate", "region": "ams3", "reason": "INC-9", "by": "bob",\n'
               ' "automatic": false, "at": "2026-03-04T13:00:00Z"},]\n')  # trailing comma
    (folder / "traffic.json").write_text(damaged)
    member = next(m for m in fleet.members if m.name == "fra1")
    try:
        traffic.evacuate(fleet, member, "INC-10", "alice")
    except Exception as e:
        assert getattr(e, "exit_code", None) == 2, repr(e)
    assert (folder / "traffic.json").read_text() == damaged, (
        "the damaged record of ams3's evacuation was replaced: ams3 is back in traffic")


def test_status_survives_a_traffic_record_without_every_field(
        pinned: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A record missing "at" (hand-written, or from an older version) makes `provision
    status FLEET` end in 'internal error: KeyError' (format_status indexes r['at'],
    r['by'], r['reason']): status, the command for an incident, fails."""
    from click.testing import CliRunner

    from provisioner.cli.main import cli

    path = _copy(tmp_path, WIDE_WAVE)
    fleet = load_fleet(path)
    folder = traffic.work_folder(fleet)
    folder.mkdir(parents=True)
    (folder / "traffic.json").write_text('[{"action": "evacuate", "region": "ams3"}]\n')
    result = CliRunner().invoke(cli, ["status", str(path)])
    assert "internal error" not in result.output, result.output
    assert "ams3" in result.output


def test_a_bake_shorter_than_the_window_is_refused(tmp_path: Path) -> None:
    """bake: 2m with window: 1h validates. Every reading of that bake spans the hour
    before it, 58+ minutes of it the old release: a canary answering 20% 5xx since the
    deploy reads at most 20% * 2/60 = 0.67% and passes a 1% gate. The gate only judges
    the new release when the window ends inside the bake: validate should refuse
    bake < window (or the reading should start at the deploy)."""
    from provisioner.fleet.reader import FleetConfigError

    path = _copy(tmp_path, WIDE_WAVE.replace("bake: 10m", "bake: 2m")
                 .replace("window: 5m", "window: 1h"))
    with pytest.raises(FleetConfigError):
        load_fleet(path)
