"""Every benchmark runs as bench/README.md documents it, in its quick mode, and prints figures.

The benchmarks are not part of the product, so nothing else would notice them breaking: one
did (bench/terraform.py's bare-Terraform side stopped with "Invalid index" on
`failover_token`, a value the module gained after the benchmark was written). Each
benchmark has `--quick` (smallest sizes, one repetition, no simulated latency where it has
one); this test takes the command from bench/README.md's table, adds `--quick` and checks
the exit code and the lines that carry its figures. Quick figures say nothing about the
targets: they only show that every part of the benchmark still runs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys

import pytest

from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration

BENCH_README = (ROOT / "bench" / "README.md").read_text()
NUMBER = r"-?[0-9]+(?:\.[0-9]+)?"

# Lines each benchmark must print, as regular expressions matched against whole lines.
FIGURES: dict[str, list[str]] = {
    "autoscaler.py": [
        rf"peer: raw GET /v2/droplets\s+[0-9]+(\s+{NUMBER}){{3}}",
        rf"(NodeGroups|NodeGroupForNode|NodeGroupNodes|Refresh)\s+[0-9]+(\s+{NUMBER}){{3}}",
        rf"NodeGroup(IncreaseSize|DeleteNodes)\s+[0-9]+(\s+{NUMBER}){{3}}",
        rf"IncreaseSize p50 {NUMBER} ms = {NUMBER} API round trips .*",
    ],
    "terraform.py": [
        rf"up\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}%",
        rf"no-op up\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}%",
        rf"destroy\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}%",
        rf"total\s+{NUMBER}\s+{NUMBER}\s+{NUMBER}%  \(target < 10%\)",
        rf"fixed cost of provision over bare Terraform: {NUMBER} s per .*",
    ],
    "render.py": [
        rf"provision --help\s+{NUMBER}\s+{NUMBER}",
        rf"provision render production\s+{NUMBER}\s+{NUMBER}",
        rf"provision render large\s+{NUMBER}\s+{NUMBER}",
        rf"render large: {NUMBER} s \(target < 3\).*",
        rf"peak RSS of any provision command: {NUMBER} MB \(target < 150\)",
    ],
    "pipeline.py": [
        rf"(up|deploy|status|rollback|destroy|total)(\s+{NUMBER}){{5}}\s+{NUMBER}\s+[0-9]+\s+"
        r"[0-9]+",
        rf"large: overhead {NUMBER} s over the whole run \(up alone {NUMBER} s\), .*",
    ],
    "noop_plan.py": [
        rf"[0-9]+\s+[0-9]+\s+no-op plan(\s+{NUMBER}){{5}}",
        rf"[0-9]+\s+[0-9]+\s+no-op up(\s+{NUMBER}){{5}}",
        rf"[0-9]+\s+[0-9]+\s+bare terraform plan(\s+{NUMBER}){{3}}",
        rf"10 workers: no-op plan {NUMBER} s, no-op up {NUMBER} s, bare terraform plan "
        rf"{NUMBER} s \({NUMBER}x\); .* deleted out of band: the next plan creates it again",
    ],
    "scale.py": [
        rf"3\s+10(\s+{NUMBER}){{7}}\s+[0-9]+(\s+[0-9]+){{3}} \(before and after\)",
        rf"10\s+10(\s+{NUMBER}){{7}}(\s+[0-9]+){{4}} \(before\)",
        rf"10\s+13(\s+{NUMBER}){{7}}(\s+[0-9]+){{4}} \(after\)",
        r"peer: hetzner-k3s, 3 masters \+ 3 workers \(Hetzner Cloud\): 2-3 min \(.*\)",
        r"peer: Typhoon, DigitalOcean: 3-6 min \(.*\)",
        rf"largest: 10 workers ready in {NUMBER} min at parallelism 13 \(target < 10 min\), "
        rf"{NUMBER} min from a pre-baked image.*",
    ],
    "joins.py": [
        rf"(10|20)\s+{NUMBER}(\s+[0-9]+){{5}}(\s+{NUMBER}){{3}}\s+[0-9]+"
        rf"\s+{NUMBER}",
        rf"requests per node, 20 / 10 nodes: {NUMBER} \(target 1\.00\); .*",
    ],
    "apply.py": [
        rf"provision deploy\s+{NUMBER}\s+[0-9]+(\s+{NUMBER}){{3}}",
        rf"kubectl apply \+ rollout status\s+{NUMBER}\s+[0-9]+(\s+{NUMBER}){{3}}",
        rf"kubectl / provision: {NUMBER}x \(target >= 5x\).*",
        rf"concurrency bound: [0-9]+ requests x {NUMBER} ms / [0-9]+ = {NUMBER} s",
    ],
}


def documented() -> dict[str, str]:
    """bench/README.md's table: benchmark file -> the command it says to run."""
    commands: dict[str, str] = {}
    for name, run in re.findall(r"^\| `([a-z_]+\.py)` \|.*\| `([^`]+)`", BENCH_README,
                                re.MULTILINE):
        # The install step is the test environment's own; the benchmark is what follows.
        commands[name] = run.split(" && ")[-1]
    return commands


def test_every_benchmark_is_documented_and_checked() -> None:
    on_disk = {p.name for p in (ROOT / "bench").glob("*.py")}
    assert set(documented()) == on_disk
    assert set(FIGURES) == on_disk


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_benchmark_runs_in_quick_mode(name: str) -> None:
    command = documented()[name]
    assert command == f"python3 bench/{name}", command
    argv = [*shlex.split(command), "--quick"]
    argv[0] = sys.executable  # the interpreter running the tests is the README's python3
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    process = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=900)
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-3000:]
    lines = process.stdout.splitlines()
    for pattern in FIGURES[name]:
        assert any(re.fullmatch(pattern, line.strip()) for line in lines), (
            f"{name} --quick printed no line like {pattern!r}:\n{process.stdout}")
