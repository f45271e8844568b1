"""Topology analysis: availability against figures computed by hand, and the findings."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from provisioner.analysis import Finding, findings, format_report, report
from provisioner.analysis.availability import (
    MINUTES_PER_YEAR,
    api_availability,
    app_availability,
    downtime_minutes,
    nines,
    quorum_unavailability,
    spread,
)
from provisioner.analysis.spof import SEVERITIES, schedulable_workers
from provisioner.config import Environment, load_environment
from provisioner.config.model import App, Autoscale, Strategy, Taint, Volume

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STAGING = load_environment(EXAMPLES / "staging.yaml")
PROD = load_environment(EXAMPLES / "production.yaml")
P = 0.999
Q = 1 - P
YEAR = 365.25 * 24 * 60  # 525,960 minutes


def topology(base: Environment, control_plane: int, workers: int, *apps: App) -> Environment:
    """``base`` with its first pool resized, the other pools dropped, and only ``apps``."""
    return replace(base, control_plane=replace(base.control_plane, count=control_plane),
                   worker_pools=(replace(base.worker_pools[0], count=workers),), apps=apps)


def plain(app: App, replicas: int) -> App:
    """``app`` as a Deployment with a fixed replica count."""
    return replace(app, replicas=replicas, autoscale=None, volumes=(), strategy=Strategy())


def by_subject(found: list[Finding], subject: str) -> list[Finding]:
    return [f for f in found if f.subject == subject]


# The three topologies, by hand.


def test_a_one_control_plane_node_one_replica_on_one_worker() -> None:
    env = topology(STAGING, 1, 1, plain(STAGING.apps[0], 1))
    result = report(env, P)
    api, app = result["api"], result["apps"][0]
    assert api["availability"] == pytest.approx(P, abs=1e-12)
    assert app["availability"] == pytest.approx(P, abs=1e-12)
    for figures in (api, app):
        assert figures["unavailability"] == pytest.approx(0.001, abs=1e-15)
        assert figures["nines"] == pytest.approx(3.0, abs=1e-9)
        assert figures["downtime_minutes_per_year"] == pytest.approx(525.96, abs=1e-9)  # 8.77 h


def test_b_three_control_plane_nodes_three_replicas_on_three_workers() -> None:
    env = topology(PROD, 3, 3, plain(PROD.apps[0], 3))
    result = report(env, P)
    api, app = result["api"], result["apps"][0]
    # Quorum 2 of 3: all three up, or exactly two.
    assert api["availability"] == pytest.approx(P**3 + 3 * P**2 * Q, abs=1e-12)
    assert api["availability"] == pytest.approx(0.999997002, abs=1e-12)
    # Down: at most one up, 3p(1-p)^2 + (1-p)^3 = 2.997e-6 + 1e-9.
    assert api["unavailability"] == pytest.approx(2.998e-6, rel=1e-9)
    assert api["nines"] == pytest.approx(-math.log10(2.998e-6), rel=1e-9)  # 5.5232
    assert api["nines"] == pytest.approx(5.523168, abs=1e-6)
    assert api["downtime_minutes_per_year"] == pytest.approx(2.998e-6 * YEAR, rel=1e-9)
    assert api["downtime_minutes_per_year"] == pytest.approx(1.576828, abs=1e-6)
    # Three replicas on three nodes: down only when all three are.
    assert app["nodes"] == 3
    assert app["availability"] == pytest.approx(1 - Q**3, abs=1e-12)
    assert app["availability"] == pytest.approx(0.999999999, abs=1e-12)
    assert app["unavailability"] == pytest.approx(1e-9, rel=1e-9)
    assert app["nines"] == pytest.approx(9.0, abs=1e-9)
    assert app["downtime_minutes_per_year"] == pytest.approx(5.2596e-4, rel=1e-9)  # 31.6 ms


def test_c_five_control_plane_nodes_four_replicas_on_two_workers() -> None:
    env = topology(PROD, 5, 2, plain(PROD.apps[0], 4))
    result = report(env, P)
    api, app = result["api"], result["apps"][0]
    # Quorum 3 of 5.
    by_hand = sum(math.comb(5, k) * P**k * Q ** (5 - k) for k in (3, 4, 5))
    explicit = P**5 + 5 * P**4 * Q + 10 * P**3 * Q**2
    assert by_hand == pytest.approx(explicit, abs=1e-15)
    assert api["availability"] == pytest.approx(explicit, abs=1e-12)
    # Down: q^5 + 5pq^4 + 10p^2q^3 = 1e-15 + 4.995e-12 + 9.98001e-9.
    assert api["unavailability"] == pytest.approx(9.985006e-9, rel=1e-9)
    assert api["availability"] == pytest.approx(0.999999990014994, abs=1e-12)
    assert api["nines"] == pytest.approx(8.000652, abs=1e-6)
    assert api["downtime_minutes_per_year"] == pytest.approx(9.985006e-9 * YEAR, rel=1e-9)
    # Four replicas spread over two nodes, two on each: down when both nodes are.
    assert (app["nodes"], app["most_per_node"]) == (2, 2)
    assert app["availability"] == pytest.approx(1 - Q**2, abs=1e-12)
    assert app["availability"] == pytest.approx(0.999999, abs=1e-12)
    assert app["nines"] == pytest.approx(6.0, abs=1e-9)
    assert app["downtime_minutes_per_year"] == pytest.approx(0.52596, rel=1e-9)  # 31.6 s


def test_functions_match_the_formulas() -> None:
    assert MINUTES_PER_YEAR == YEAR == 525_960
    assert api_availability(1, P) == pytest.approx(P, abs=1e-15)
    assert api_availability(3, P) == pytest.approx(P**3 + 3 * P**2 * Q, abs=1e-15)
    assert app_availability(3, 3, P) == pytest.approx(1 - Q**3, abs=1e-15)
    assert app_availability(4, 2, P) == app_availability(2, 2, P)
    assert app_availability(0, 3, P) == 0.0 and app_availability(3, 0, P) == 0.0
    assert nines(0.999) == pytest.approx(3.0) and nines(1.0) == math.inf
    assert downtime_minutes(0.999) == pytest.approx(525.96)
    # The endpoint's availability multiplies the quorum's.
    assert api_availability(3, P, 0.9999) == pytest.approx((P**3 + 3 * P**2 * Q) * 0.9999,
                                                           abs=1e-15)


def test_quorum_of_a_stateful_app() -> None:
    assert spread(4, 3) == [2, 1, 1] and spread(2, 5) == [1, 1] and spread(3, 0) == []
    # Three members on three nodes need two: the same as a 3-node control plane.
    assert 1 - quorum_unavailability([1, 1, 1], P) == pytest.approx(api_availability(3, P),
                                                                   abs=1e-15)
    # Three members on two nodes (2 + 1): a majority needs the node holding two.
    assert quorum_unavailability([2, 1], P) == pytest.approx(Q, abs=1e-15)
    prod = report(PROD, P)
    elastic = next(a for a in prod["apps"] if a["name"] == "elasticsearch")
    assert elastic["quorum"]["availability"] == pytest.approx(0.999997002, abs=1e-12)
    assert next(a for a in prod["apps"] if a["name"] == "api")["quorum"] is None


def test_higher_nines_do_not_round_to_one() -> None:
    env = topology(PROD, 5, 8, plain(PROD.apps[0], 8))
    app = report(env, P)["apps"][0]
    assert app["unavailability"] == pytest.approx(1e-24, rel=1e-9)
    assert app["nines"] == pytest.approx(24.0)


# Marginal value.


def test_api_options_show_what_each_step_buys() -> None:
    options = report(STAGING, P)["api"]["options"]
    assert [(o["nodes"], o["tolerated_failures"], o["current"]) for o in options] == [
        (1, 0, True), (3, 1, False), (5, 2, False)]
    assert options[0]["minutes_saved_per_year"] is None
    assert options[1]["minutes_saved_per_year"] == pytest.approx((0.001 - 2.998e-6) * YEAR)
    assert options[2]["minutes_saved_per_year"] == pytest.approx((2.998e-6 - 9.985006e-9)
                                                                 * YEAR)
    # Diminishing returns: 1 -> 3 saves hours, 3 -> 5 under two minutes.
    assert options[1]["minutes_saved_per_year"] > 500 > 2 > options[2]["minutes_saved_per_year"]


def test_app_options_are_bounded_by_the_workers() -> None:
    options = report(STAGING, P)["apps"][0]["options"]  # api: 2 replicas on 2 workers
    table = {(o["replicas"], o["workers"]): o for o in options}
    assert sorted(table) == [(2, 2), (2, 3), (3, 2), (3, 3), (4, 2), (4, 3)]
    assert table[(2, 2)]["current"] and table[(2, 2)]["minutes_saved_per_year"] == 0
    # More replicas on the same two workers buy nothing; a third worker makes the third count.
    for key in ((3, 2), (4, 2), (2, 3)):
        assert table[key]["availability"] == table[(2, 2)]["availability"]
    assert table[(3, 3)]["availability"] == pytest.approx(1 - Q**3, abs=1e-12)
    assert table[(4, 3)]["availability"] == table[(3, 3)]["availability"]
    assert table[(3, 3)]["minutes_saved_per_year"] == pytest.approx((Q**2 - Q**3) * YEAR)


# The report.


def test_report_is_strict_json_and_reads_well() -> None:
    for env in (STAGING, PROD):
        result = report(env)
        assert json.loads(json.dumps(result, allow_nan=False)) == result
    perfect = report(STAGING, 1.0)
    json.dumps(perfect, allow_nan=False)
    assert perfect["api"]["nines"] is None and perfect["api"]["downtime_minutes_per_year"] == 0
    text = format_report(report(STAGING, P))
    assert "API: 1 control-plane node(s), etcd quorum 1" in text
    assert "99.9%, 3.0 nines, 8.8 h down a year" in text
    assert "99.9999%, 6.0 nines, 31.6 s down a year" in text
    assert "[high] control plane:" in text and "nowhere to fail over to" in text
    assert "modelled from its nodes only" in text
    text = format_report(report(PROD, P))
    assert "if its members need a majority: 99.9997%" in text
    assert "nothing: only 3 node(s) to spread over" in text


def test_bad_probabilities_are_refused() -> None:
    for p in (-0.1, 1.5, math.nan):
        with pytest.raises(ValueError, match="between 0 and 1"):
            report(STAGING, p)
    with pytest.raises(ValueError, match="endpoint_availability"):
        report(STAGING, P, endpoint_availability=2.0)


# Findings on the examples.


def test_staging_single_control_plane_node_is_high() -> None:
    found = findings(STAGING)
    cp = by_subject(found, "control plane")
    assert [f.severity for f in cp] == ["high"]
    assert "etcd" in cp[0].problem and "count: 3" in cp[0].fix
    endpoint = by_subject(found, "API endpoint")
    assert len(endpoint) == 1 and "the floating IP has nowhere to fail over to" in (
        endpoint[0].problem)
    assert found[0] == cp[0]
    # api: two replicas on two workers, each on its own node, with a PDB: nothing about
    # replicas, budgets or spreading; only its NodePort exposure is noted.
    api = by_subject(found, "app api")
    assert [(f.severity, "NodePort" in f.problem) for f in api] == [("low", True)]


def test_production_has_no_single_point_of_failure() -> None:
    found = findings(PROD)
    assert not [f for f in found if f.severity in ("high", "medium")]
    assert not by_subject(found, "control plane") and not by_subject(found, "API endpoint")
    assert not by_subject(found, "app api")
    elastic = by_subject(found, "app elasticsearch")
    assert len(elastic) == 1 and elastic[0].severity == "low"
    assert "do not pin replicas to a node" in elastic[0].problem
    assert "fra1" in elastic[0].problem and "minutes" in elastic[0].problem


# Findings on synthetic environments.


def test_findings_are_ordered_by_severity() -> None:
    env = replace(STAGING, apps=(plain(STAGING.apps[0], 1), STAGING.apps[0]))
    found = findings(env)
    ranks = [SEVERITIES.index(f.severity) for f in found]
    assert ranks == sorted(ranks) and {f.severity for f in found} == {"high", "medium", "low"}


def test_one_replica_is_high_and_has_no_disruption_budget() -> None:
    env = replace(PROD, apps=(plain(PROD.apps[0], 1),))
    found = by_subject(findings(env), "app api")
    assert [f.severity for f in found] == ["high", "medium"]
    assert "one replica" in found[0].problem and found[0].fix == "replicas: 2"
    assert "no PodDisruptionBudget" in found[1].problem and "drain" in found[1].problem


def test_autoscale_min_one_is_a_single_replica() -> None:
    app = replace(PROD.apps[0], autoscale=Autoscale(min=1, max=10))
    found = by_subject(findings(replace(PROD, apps=(app,))), "app api")
    assert found[0].severity == "high" and "autoscale min 1" in found[0].problem
    assert found[0].fix == "autoscale.min: 2"
    assert any("no PodDisruptionBudget" in f.problem for f in found)
    assert report(replace(PROD, apps=(app,)), P)["apps"][0]["availability"] == pytest.approx(P)


def test_replicas_on_a_single_worker_share_its_fate() -> None:
    env = topology(STAGING, 3, 1, STAGING.apps[0])
    found = findings(env)
    pool = by_subject(found, "pool general")
    assert [f.severity for f in pool] == ["high"]
    assert "all apps' schedulable capacity is one droplet" in pool[0].problem
    app = [f for f in by_subject(found, "app api") if f.severity == "high"]
    assert len(app) == 1 and "2 replicas, all on the one node" in app[0].problem
    assert report(env, P)["apps"][0]["availability"] == pytest.approx(P, abs=1e-12)


def test_more_replicas_than_workers_is_quantified() -> None:
    env = topology(PROD, 3, 2, plain(PROD.apps[0], 5))
    found = by_subject(findings(env), "app api")
    assert len(found) == 1 and found[0].severity == "low"
    assert "5 replicas on 2 worker nodes" in found[0].problem
    assert "up to 3 replicas on one node" in found[0].problem and "3 of 5 (60%)" in (
        found[0].problem)


def test_tainted_pools_run_no_apps() -> None:
    dedicated = replace(PROD.worker_pools[0], name="gpu", count=1,
                        taints=(Taint("gpu", "true", "NoSchedule"),))
    soft = replace(PROD.worker_pools[0], name="spare", count=2,
                   taints=(Taint("spare", "true", "PreferNoSchedule"),))
    env = replace(PROD, worker_pools=(*PROD.worker_pools, dedicated, soft))
    assert schedulable_workers(env) == 5  # general 3 + spare 2; gpu is off limits
    gpu = by_subject(findings(env), "pool gpu")
    assert len(gpu) == 1 and gpu[0].severity == "low" and "taints" in gpu[0].problem
    # Only tainted pools: the apps cannot run anywhere.
    noexec = replace(dedicated, taints=(Taint("gpu", "true", "NoExecute"),), count=3)
    blocked = replace(PROD, worker_pools=(dedicated, noexec))
    assert schedulable_workers(blocked) == 0
    workers = by_subject(findings(blocked), "workers")
    assert len(workers) == 1 and workers[0].severity == "high"
    assert report(blocked, P)["apps"][0]["availability"] == 0.0


def test_one_node_pool_beside_others_is_low() -> None:
    small = replace(PROD.worker_pools[0], name="small", count=1)
    found = by_subject(findings(replace(PROD, worker_pools=(*PROD.worker_pools, small))),
                      "pool small")
    assert [f.severity for f in found] == ["low"]


def test_load_balancer_with_one_control_plane_node() -> None:
    env = replace(STAGING, control_plane=replace(STAGING.control_plane,
                                                 endpoint="load_balancer"))
    endpoint = by_subject(findings(env), "API endpoint")
    assert len(endpoint) == 1 and "single backend" in endpoint[0].problem


def test_even_control_plane_counts_buy_nothing() -> None:
    env = replace(PROD, control_plane=replace(PROD.control_plane, count=2))
    cp = by_subject(findings(env), "control plane")
    assert len(cp) == 1 and cp[0].severity == "medium" and "1 or 3" in cp[0].fix
    # Two nodes, quorum two: worse than one.
    assert report(env, P)["api"]["availability"] == pytest.approx(P**2, abs=1e-12)


def test_single_replica_stateful_app() -> None:
    elastic = replace(PROD.apps[1], replicas=1)
    found = by_subject(findings(replace(PROD, apps=(elastic,))), "app elasticsearch")
    assert [f.severity for f in found] == ["high", "medium", "medium", "medium"]
    assert any("never surge" in f.problem for f in found)
    volume = next(f for f in found if "do not pin" in f.problem)
    assert volume.severity == "medium" and "down all that time" in volume.problem
    local = replace(elastic, volumes=(Volume("data", "/data", "1Gi", "local-path"),))
    found = by_subject(findings(replace(PROD, apps=(local,))), "app elasticsearch")
    assert any(f.severity == "high" and "local-path" in f.problem for f in found)


def test_rollout_that_can_stop_every_replica() -> None:
    app = replace(plain(PROD.apps[0], 2), strategy=Strategy(max_surge=0, max_unavailable="100%"))
    found = by_subject(findings(replace(PROD, apps=(app,))), "app api")
    assert [f.severity for f in found] == ["medium"]
    assert "may stop all 2 replicas at once" in found[0].problem
    # Surge first, nothing stopped: fine; blue/green starts a full second colour.
    for strategy in (Strategy(max_surge=1, max_unavailable=0), Strategy(kind="blue_green")):
        ok = replace(app, strategy=strategy)
        assert not by_subject(findings(replace(PROD, apps=(ok,))), "app api")


def test_scaled_to_zero() -> None:
    env = replace(PROD, apps=(plain(PROD.apps[0], 0),))
    found = by_subject(findings(env), "app api")
    assert [(f.severity, f.problem) for f in found] == [("low", "scaled to zero: no replica runs")]
    assert report(env, P)["apps"][0]["availability"] == 0.0
