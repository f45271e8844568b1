#!/usr/bin/env python3
"""Benchmark: provision's Terraform engine against bare Terraform on the same module.

Usage: python3 bench/terraform.py [--latency-ms N] [--repeat N] [--quick]

On the simulated DigitalOcean (the test provider serving the real schema, and the fake API
for preflight), one run measures, for the production example:
  * provision: `up --yes` (render, preflight, init, plan, show, apply, outputs), a no-op
    `up --yes`, and `destroy --yes --force`;
  * the peer, bare Terraform (the same embedded Terraform 1.15) on the module provision
    rendered: `init` + `apply -auto-approve`, a no-op `apply -auto-approve`, and
    `destroy -auto-approve`, with the same variables.
The ratio provision / bare is the engine's overhead. Target (issue 3): under 10 %.
`--latency-ms` adds that much simulated API latency to every resource create (a real droplet
takes tens of seconds); 0 measures the pure fixed costs, which are the worst case.
`--quick` (CI's check that the benchmark still runs) is `--latency-ms 0 --repeat 1`.

Both sides get the same `bootstrap_secrets` the same way: provision's own
`infra_stage.terraform_env` computes them (the cluster secrets plus the failover token the
control-plane user-data references) and the peer receives them as `TF_VAR_bootstrap_secrets`
in its environment, exactly as provision passes them.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.sim import TOKEN, Simulation, simulation  # noqa: E402


def timed(label: str, func: object, results: dict[str, float]) -> None:
    start = time.perf_counter()
    func()  # type: ignore[operator]
    results[label] = time.perf_counter() - start


def provision_cycle(sim: Simulation) -> dict[str, float]:
    results: dict[str, float] = {}
    config = str(sim.config)

    def run(*args: str) -> None:
        process = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=sim.root,
                                 env=sim.env, capture_output=True, text=True)
        if process.returncode != 0:
            raise SystemExit(f"provision {' '.join(args)} failed:\n{process.stderr}")

    timed("up", lambda: run("up", config, "--yes", "--until", "infra"), results)
    timed("no-op up", lambda: run("up", config, "--yes", "--until", "infra"), results)
    # Destroying is an infrastructure change: the deploy windows hold it back (README: One
    # freeze calendar), and a benchmark runs whenever it is started.
    timed("destroy", lambda: run("destroy", config, "--yes", "--force", "--override-window",
                                 "--reason", "bench"), results)
    return results


def bootstrap_secrets(sim: Simulation) -> str:
    """The ``TF_VAR_bootstrap_secrets`` provision gave Terraform in ``sim``, computed by
    provision's own code, so that the peer cannot miss a value the module references."""
    from provisioner.pipeline.infra_stage import terraform_env
    from provisioner.pipeline.prepare import prepare

    return terraform_env(prepare(sim.config, None), TOKEN)["TF_VAR_bootstrap_secrets"]


def bare_cycle(sim: Simulation, module: Path, secrets: str) -> dict[str, float]:
    """Terraform alone on a copy of the module provision rendered, same inputs."""
    results: dict[str, float] = {}
    env = {**sim.env, "TF_VAR_bootstrap_secrets": secrets}
    (module / "backend.tf.json").unlink()  # local state in the module folder

    def tf(*args: str) -> None:
        process = subprocess.run([sys.executable, "-m", "provisioner.infra.embedded", *args],
                                 cwd=module, env=env, capture_output=True, text=True)
        if process.returncode != 0:
            raise SystemExit(f"terraform {' '.join(args)} failed:\n{process.stdout[-2000:]}"
                             f"{process.stderr[-2000:]}")

    def up() -> None:
        tf("init", "-input=false")
        tf("apply", "-auto-approve", "-input=false", "-json")

    timed("up", up, results)
    timed("no-op up", lambda: tf("apply", "-auto-approve", "-input=false", "-json"), results)
    timed("destroy", lambda: tf("destroy", "-auto-approve", "-input=false", "-json"), results)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Real droplets take 30-60 s to create; 10 s keeps the run short and the ratio honest.
    parser.add_argument("--latency-ms", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--quick", action="store_true",
                        help="no simulated latency, one run: checks that the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.latency_ms, args.repeat = 0, 1
    totals: dict[str, list[tuple[float, float]]] = {}
    for _ in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            extra = {"DO_SIM_LATENCY_MS": str(args.latency_ms)}
            with simulation(Path(tmp) / "a", extra) as sim:
                mine = provision_cycle(sim)
                secrets = bootstrap_secrets(sim)
                module = Path(tmp) / "bare"
                shutil.copytree(sim.workdir / "terraform", module,
                                ignore=shutil.ignore_patterns(".terraform*"))
            with simulation(Path(tmp) / "b", extra) as peer:
                theirs = bare_cycle(peer, module, secrets)
        for key in mine:
            totals.setdefault(key, []).append((mine[key], theirs[key]))
    print(f"production example, simulated create latency {args.latency_ms} ms, "
          f"{args.repeat} run(s), best of each")
    print(f"{'step':<10} {'provision s':>12} {'terraform s':>12} {'overhead':>9}")
    sum_mine = sum_theirs = 0.0
    for key, pairs in totals.items():
        mine_best = min(p[0] for p in pairs)
        theirs_best = min(p[1] for p in pairs)
        sum_mine += mine_best
        sum_theirs += theirs_best
        print(f"{key:<10} {mine_best:12.2f} {theirs_best:12.2f} "
              f"{(mine_best / theirs_best - 1) * 100:8.1f}%")
    print(f"{'total':<10} {sum_mine:12.2f} {sum_theirs:12.2f} "
          f"{(sum_mine / sum_theirs - 1) * 100:8.1f}%  (target < 10%)")
    print(f"fixed cost of provision over bare Terraform: {sum_mine - sum_theirs:.2f} s per "
          "up + no-op up + destroy (rendering, preflight, plan and apply as two runs)")


if __name__ == "__main__":
    main()
