#!/usr/bin/env python3
"""Benchmark: a no-op `provision plan` and `up` at 3, 50 and 500 workers, against bare Terraform.

Usage: python3 bench/noop_plan.py [--workers 3,50,500] [--repeat N] [--profile] [--quick]

For each size, on the simulated DigitalOcean (the test provider and the fake API on one
account, every simulated latency 0), the production example scaled to that many workers (3
is the example itself; more are split over 5 pools, as bench/render.py's generator does) is
created once with `up --until infra`; then, each the best of `--repeat` runs:
  * provision: a no-op `plan`, and a no-op `up --until infra` (what `up` does before it
    finds nothing to apply);
  * the peer, bare Terraform (the same embedded Terraform) on a copy of the module and state
    provision rendered: `terraform plan -input=false -json -out=FILE`, refresh included, with
    the same variables. Its `init` is not timed (provision's is skipped when nothing it
    depends on changed, see provisioner/infra/workspace.py).
Each provision row splits its wall time (measured here, process start to exit) into
Terraform (its child processes), the fake provider answering Terraform's RPCs (every RPC's
start and end, from DO_SIM_RPC_LOG: the simulation's own cost, which the real
DigitalOcean API replaces with its own), the fake API answering provision's preflight
(its request log) and provision (the rest: start-up, rendering, preflight's client side,
output). Target (issue 18): a no-op plan and up at 500 workers under 5 s.

Then drift must still show: one worker droplet is deleted through the fake API, as someone
in the control panel would, and the next `plan` must plan to create it again; the benchmark
stops with an error if it does not.

`--quick` (CI's check that the benchmark still runs): 3 and 10 workers, one run.
`--profile` adds a cProfile of provision's own process for the largest size's no-op plan.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.pipeline import union  # noqa: E402
from tests.support.sim import TOKEN, Simulation, simulation  # noqa: E402

Interval = tuple[float, float]
TARGET = 5.0  # seconds, at 500 workers (issue 18)
PIPELINE = ROOT / "bench" / "pipeline.py"  # its child mode records Terraform's intervals


@dataclass
class Row:
    """One timed command."""

    label: str
    wall: float
    terraform: float
    fake_provider: float
    fake_api: float

    @property
    def provision(self) -> float:
        """What is neither Terraform nor a fake answering provision (None for the peer)."""
        return self.wall - self.terraform - self.fake_api


def scale(sim: Simulation, workers: int) -> None:
    """The production example with ``workers`` workers, on this account."""
    def edit(doc: dict[str, Any]) -> None:
        if workers == 3:
            return  # the example itself: one pool of 3
        size = doc["worker_pools"][0]["size"]
        doc["worker_pools"] = [{"name": f"pool{i}", "count": workers // 5, "size": size,
                                "labels": {"pool": f"pool{i}"}} for i in range(5)]
        if workers > 200:
            # Every node takes a /24 of the pod network (the example's /16 holds 256).
            doc["kubernetes"]["pod_cidr"] = "10.128.0.0/14"

    sim.write_config(edit=edit)
    sim.api.seed(droplet_limit=workers + 50)


def rpc_intervals(log: Path, window: Interval) -> list[Interval]:
    """The fake provider's RPCs (start, end) that began inside ``window``."""
    found = []
    for line in log.read_text().splitlines() if log.exists() else []:
        _, start, end = line.split()
        if window[0] <= float(start) <= window[1]:
            found.append((float(start), float(end)))
    return found


def run_provision(sim: Simulation, label: str, args: list[str], work: Path,
                  profile: Path | None = None) -> Row:
    """``provision ARGS`` as its own process, as an operator runs it; measured."""
    stats = work / "stats.json"
    cmd = [sys.executable, str(PIPELINE), "--child", str(stats)]
    if profile is not None:
        cmd += ["--profile-to", str(profile)]
    start = time.time()
    process = subprocess.run([*cmd, "--", *args], cwd=sim.root, env=sim.env,
                             capture_output=True, text=True)
    end = time.time()
    if process.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed ({process.returncode}):\n"
                         f"{process.stdout[-3000:]}{process.stderr[-3000:]}")
    record = json.loads(stats.read_text())
    window = (start, end)
    terraform = [(s, e) for s, e, _ in record["terraform"]]
    api = [(r.at, r.at + r.duration) for r in sim.api.request_log if start <= r.at <= end]
    return Row(label, end - start, union(terraform, window),
               union(rpc_intervals(Path(sim.env["DO_SIM_RPC_LOG"]), window), window),
               union(api, window))


def bare_terraform(sim: Simulation, work: Path) -> tuple[Path, dict[str, str]]:
    """A copy of provision's module and state, initialised, and the environment to plan it
    with (the variables provision passes, computed by provision's own code)."""
    from bench.terraform import bootstrap_secrets

    bare = work / "bare"
    shutil.rmtree(bare, ignore_errors=True)
    shutil.copytree(sim.workdir / "terraform", bare / "terraform",
                    ignore=shutil.ignore_patterns(".terraform"))
    (bare / "state").mkdir()
    # The backend is the local file ../state/terraform.tfstate, as in the work folder.
    shutil.copy(sim.workdir / "state" / "terraform.tfstate", bare / "state")
    env = {**sim.env, "TF_VAR_bootstrap_secrets": bootstrap_secrets(sim),
           "TF_VAR_cluster_initialised": "false", "CHECKPOINT_DISABLE": "1",
           "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"}
    terraform(bare / "terraform", env, "init", "-input=false")
    return bare / "terraform", env


def terraform(module: Path, env: dict[str, str], *args: str) -> None:
    process = subprocess.run([sys.executable, "-m", "provisioner.infra.embedded", *args],
                             cwd=module, env=env, capture_output=True, text=True)
    if process.returncode != 0:
        raise SystemExit(f"terraform {' '.join(args)} failed:\n{process.stdout[-2000:]}"
                         f"{process.stderr[-2000:]}")


def run_bare_plan(sim: Simulation, module: Path, env: dict[str, str]) -> Row:
    start = time.time()
    terraform(module, env, "plan", "-input=false", "-json", "-out=bare.tfplan")
    end = time.time()
    window = (start, end)
    return Row("bare terraform plan", end - start, end - start,
               union(rpc_intervals(Path(sim.env["DO_SIM_RPC_LOG"]), window), window), 0.0)


def drift_shows(sim: Simulation, work: Path) -> str:
    """Delete a worker through the fake API; the next `plan` must create it again."""
    victim = next(d for d in sim.resources("digitalocean_droplet")
                  if "-cp-" not in d["name"])
    request = urllib.request.Request(f"{sim.api.endpoint}droplets/{victim['id']}",
                                     method="DELETE",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 204, response.status
    process = subprocess.run([sys.executable, "-m", "provisioner", "plan", str(sim.config),
                              "--output", "json"], cwd=sim.root, env=sim.env,
                             capture_output=True, text=True)
    if process.returncode != 0:
        raise SystemExit(f"plan after the deletion failed:\n{process.stderr[-3000:]}")
    changes = json.loads(process.stdout)["changes"]
    created = [c["name"] for c in changes if c["action"] == "create"
               and c["type"] == "digitalocean_droplet"]
    if victim["name"] not in created:
        raise SystemExit(f"DRIFT HIDDEN: {victim['name']} was deleted out of band and the "
                         f"no-op plan does not create it again: {changes}")
    return str(victim["name"])


def measure(workers: int, repeat: int, tmp: Path,
            profile: Path | None) -> tuple[list[Row], int, float, str]:
    """Build one environment, then time its no-op commands and the peer."""
    # The fake API's check of every exchange against DigitalOcean's OpenAPI description is
    # the tests' business (tests/contract/test_fake_doapi.py) and costs the fake, not
    # provision, a good part of each preflight answer at 500 droplets.
    with simulation(tmp / f"w{workers}", validate=False) as sim:
        sim.env["DO_SIM_LATENCY_MS"] = "0"
        sim.env["DO_SIM_RPC_LOG"] = str(tmp / f"w{workers}" / "rpc.log")
        scale(sim, workers)
        config = str(sim.config)
        work = tmp / f"w{workers}-bench"
        work.mkdir()
        started = time.perf_counter()
        up = ["up", config, "--yes", "--until", "infra", "--override-window", "--reason",
              "bench"]
        run_provision(sim, "build", up, work)
        built = time.perf_counter() - started
        state = json.loads((sim.workdir / "state" / "terraform.tfstate").read_text())
        instances = sum(len(r.get("instances", [])) for r in state["resources"]
                        if r.get("mode") == "managed")  # what a refresh reads, one each
        module, env = bare_terraform(sim, work)
        best: dict[str, Row] = {}
        for _ in range(repeat):
            for row in (run_provision(sim, "no-op plan", ["plan", config], work),
                        run_provision(sim, "no-op up", up, work),
                        run_bare_plan(sim, module, env)):
                if row.label not in best or row.wall < best[row.label].wall:
                    best[row.label] = row
        if profile is not None:
            run_provision(sim, "no-op plan", ["plan", config], work, profile)
        victim = drift_shows(sim, work)
    return list(best.values()), instances, built, victim


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", default="3,50,500",
                        help="comma-separated sizes [default: 3,50,500]")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--profile", action="store_true",
                        help="then print where provision's own process spends the largest "
                             "size's no-op plan (cProfile)")
    parser.add_argument("--quick", action="store_true",
                        help="3 and 10 workers, one run: checks that the benchmark runs")
    args = parser.parse_args()
    sizes = [3, 10] if args.quick else [int(w) for w in args.workers.split(",")]
    repeat = 1 if args.quick else args.repeat
    print(f"no-op plan and up --until infra of the production example scaled, simulated "
          f"latencies 0, best of {repeat}")
    print(f"{'workers':>7} {'resources':>9}  {'command':<20} {'wall s':>7} {'terraform':>9} "
          f"{'fake tf':>7} {'fake api':>8} {'provision':>9}")
    verdicts = []
    with tempfile.TemporaryDirectory() as tmp:
        for workers in sizes:
            profile = Path(tmp) / "plan.prof" if args.profile and workers == max(sizes) else None
            rows, instances, built, victim = measure(workers, repeat, Path(tmp), profile)
            for r in rows:
                own = f"{r.provision:9.2f}" if r.label != "bare terraform plan" else f"{'':>9}"
                api = f"{r.fake_api:8.2f}" if r.label != "bare terraform plan" else f"{'':>8}"
                print(f"{workers:7d} {instances:9d}  {r.label:<20} {r.wall:7.2f} "
                      f"{r.terraform:9.2f} {r.fake_provider:7.2f} {api} {own}")
            plan, up, bare = rows
            verdicts.append(
                f"{workers} workers: no-op plan {plan.wall:.2f} s, no-op up {up.wall:.2f} s, "
                f"bare terraform plan {bare.wall:.2f} s ({plan.wall / bare.wall:.2f}x); "
                f"of the plan, the fakes answering {plan.fake_provider + plan.fake_api:.2f} s; "
                f"built in {built:.1f} s; {victim} deleted out of band: the next plan "
                "creates it again")
            if workers == 500:
                met = max(plan.wall, up.wall) < TARGET
                verdicts.append(f"500 workers: no-op plan {plan.wall:.2f} s and up "
                                f"{up.wall:.2f} s (target < {TARGET:g} s): "
                                f"{'met' if met else 'NOT met'}")
            if profile is not None:
                import pstats

                print(f"\ncProfile of provision's process, no-op plan at {workers} workers:")
                stats = pstats.Stats(str(profile), stream=sys.stdout)
                stats.sort_stats("cumulative").print_stats(30)
    print()
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    main()
