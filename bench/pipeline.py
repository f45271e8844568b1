#!/usr/bin/env python3
"""Benchmark: the whole pipeline, stage by stage, and provision's own overhead in it.

Usage: python3 bench/pipeline.py [--only production|large] [--profile] [--quick]

In the simulated world of the end-to-end tests (tests/e2e/world.py: the fake DigitalOcean
provider and API on one account, and a fake Kubernetes API server on the floating IP), one
run times, with every simulated latency at zero (DO_SIM_LATENCY_MS=0, fake API latency 0):
`provision up` stage by stage (infra, cluster, apps), then `deploy` (a new image for every
app), `status`, `rollback` (every app) and `destroy`, for the production example and for
a generated environment of 50 workers (5 pools) and 100 apps (bench/render.py's generator).
Targets (issue): provision's own overhead under 5 s for production and under 15 s for
50 workers / 100 apps, over the whole run. `--quick` (CI's check that the benchmark still
runs) runs only the generated environment, with 5 workers and 5 apps (the production example
takes the same code paths); its verdict is not the target's.

Method. Every command runs as its own process, as a user runs it (interpreter start-up and
imports are part of its cost), started by this script in child mode, which wraps, before
provision imports them: `provisioner.infra.runner.run` (each Terraform child process),
the three stages of `up` (`lifecycle._infrastructure`, `cluster_stage.bring_up`,
`deploy_stage.deploy`) and the waits for the cluster (`readiness.wait_for_api`,
`readiness.wait_for_nodes`, `rollout.wait`), recording wall-clock intervals. The fakes run
in this process, not in provision's, so that neither competes with the other for a GIL.
For each command:
  * wall: from starting the process to its exit, measured here;
  * terraform: the time inside Terraform child processes (the fake provider they run
    included);
  * servers: the time the fake APIs spent answering provision's requests, from their request
    logs (arrival to answer, per request; overlapping requests counted once);
  * cluster: the time the simulated cluster itself needed while provision waited for it:
    from the start of a wait until the cluster was actually ready, known from a listener
    on the fake API server's store that records when each Deployment or StatefulSet became
    rolled out (kubectl's rules) and each node Ready; provision's delay in noticing
    afterwards is provision's;
  * overhead = wall - the union of the terraform, servers and cluster intervals: the time
    in which provision was the only party at work (start-up, imports, rendering, polling
    intervals, output). It is provision's time on the critical path, not all its work:
    client-side JSON, TLS and HTTP done while another of its requests is being answered
    are hidden under "servers" (16 requests in flight at a time);
  * cpu: the provision process's own CPU time, every thread, whole commands only
    (Terraform's child processes not included): all of provision's work, overlapped or not.
The fake Kubernetes API server's controllers reconcile only what changed (their work
queues), so a quiet simulated cluster costs nothing. `--profile` runs each command once
more under cProfile (main thread) and prints where the overhead goes; the table's figures
always come from the unprofiled run.
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
Interval = tuple[float, float]
COMMAND_TIMEOUT = 900  # seconds; every wait in this benchmark is bounded

# ----------------------------------------------------------------------------------------------
# child mode: one provision command with its intervals recorded


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Applies a patch to a module right after it is first imported, so that the command
    imports exactly what it would without the benchmark, when it would."""

    def __init__(self, patches: dict[str, Callable[[ModuleType], None]]) -> None:
        self.patches = patches

    def find_spec(self, name: str, path: Sequence[str] | None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        patch = self.patches.get(name)
        if patch is None:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        loader: Any = spec.loader if spec else None
        if loader is None:
            return spec
        execute = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            execute(module)
            patch(module)

        loader.exec_module = exec_module
        return spec


def child(stats: Path, args: list[str], profile: Path | None) -> int:
    """Run ``provision ARGS`` here, recording intervals into ``stats`` (JSON)."""
    record: dict[str, Any] = {"terraform": [], "stages": {}, "waits": []}

    def timing(func: Callable[..., Any], done: Callable[[float, float, tuple[Any, ...]],
                                                          None]) -> Callable[..., Any]:
        def wrapper(*a: Any, **kw: Any) -> Any:
            start = time.time()
            try:
                return func(*a, **kw)
            finally:
                done(start, time.time(), a)
        return wrapper

    def wrap(module: ModuleType, attribute: str,
             done: Callable[[float, float, tuple[Any, ...]], None]) -> None:
        setattr(module, attribute, timing(getattr(module, attribute), done))

    def terraform(module: ModuleType) -> None:
        wrap(module, "run", lambda s, e, a: record["terraform"].append(
            [s, e, str(a[1][0]) if len(a) > 1 and a[1] else "?"]))

    def stage(name: str, attribute: str) -> Callable[[ModuleType], None]:
        def patch(module: ModuleType) -> None:
            wrap(module, attribute, lambda s, e, a: record["stages"].setdefault(name, [s, e]))
        return patch

    def readiness(module: ModuleType) -> None:
        wrap(module, "wait_for_api", lambda s, e, a: record["waits"].append(
            {"kind": "api", "start": s, "end": e}))
        wrap(module, "wait_for_nodes", lambda s, e, a: record["waits"].append(
            {"kind": "nodes", "start": s, "end": e, "keys": [["Node", "", n] for n in a[1]]}))

    def rollout(module: ModuleType) -> None:
        wrap(module, "wait", lambda s, e, a: record["waits"].append(
            {"kind": "rollout", "start": s, "end": e,
             "keys": [[t.kind, a[1], t.name] for t in a[2]]}))

    sys.meta_path.insert(0, _PatchOnImport({
        "provisioner.infra.runner": terraform,
        "provisioner.pipeline.lifecycle": stage("infra", "_infrastructure"),
        "provisioner.pipeline.cluster_stage": stage("cluster", "bring_up"),
        "provisioner.pipeline.deploy_stage": stage("apps", "deploy"),
        "provisioner.bootstrap.readiness": readiness,
        "provisioner.workloads.rollout": rollout,
    }))
    profiler = None
    if profile is not None:
        import cProfile

        profiler = cProfile.Profile()
    code: Any = 0
    try:
        from provisioner.cli.main import cli

        if profiler is not None:
            profiler.enable()
        cli.main(args=args, prog_name="provision")
    except SystemExit as e:
        code = e.code
    finally:
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        import resource

        own = resource.getrusage(resource.RUSAGE_SELF)  # every thread; not Terraform's
        record["cpu"] = own.ru_utime + own.ru_stime
        stats.write_text(json.dumps(record))
    return code if isinstance(code, int) else 1


# ----------------------------------------------------------------------------------------------
# intervals


def union(intervals: Iterable[Interval], window: Interval) -> float:
    """Seconds of ``window`` covered by at least one of ``intervals``."""
    clipped = sorted((max(s, window[0]), min(e, window[1])) for s, e in intervals)
    total, end = 0.0, window[0]
    for start, stop in clipped:
        if stop <= max(start, end):
            continue
        total += stop - max(start, end)
        end = stop
    return total


class ClusterClock:
    """When each workload was rolled out and each node Ready, from the fake's store events."""

    def __init__(self) -> None:
        from provisioner.workloads import rollout

        self.rollout = rollout  # imported here: the listener runs under the store's lock
        self.api_started = 0.0
        self.transitions: dict[tuple[str, str, str], list[tuple[float, bool]]] = {}
        self.errors: list[str] = []

    def attach(self, kube: Any) -> None:
        self.api_started = time.time()
        kube.store.subscribe(self.on_event, None)

    def on_event(self, event: Any) -> None:
        try:
            self._record(event)
        except Exception as e:  # never break the fake; reported after the run
            self.errors.append(repr(e))

    def _record(self, event: Any) -> None:
        rollout = self.rollout
        kind = event.rt.kind
        if kind not in ("Deployment", "StatefulSet", "Node"):
            return
        obj = event.obj
        meta = obj.get("metadata") or {}
        key = (kind, meta.get("namespace", "") if kind != "Node" else "", meta.get("name", ""))
        if event.type == "DELETED":
            done = False
        elif kind == "Node":
            done = any(c.get("type") == "Ready" and c.get("status") == "True"
                       for c in (obj.get("status") or {}).get("conditions") or [])
        elif kind == "Deployment":
            done = rollout.deployment_status(obj).done
        else:
            done = rollout.statefulset_status(obj).done
        history = self.transitions.setdefault(key, [])
        if not history or history[-1][1] != done:
            history.append((time.time(), done))

    def _done(self, key: tuple[str, str, str], at: float) -> bool:
        state = False
        for when, done in self.transitions.get(key, []):
            if when > at:
                break
            state = done
        return state

    def ready_at(self, wait: dict[str, Any]) -> float:
        """When the cluster was ready for this wait (its start if it already was)."""
        start, end = float(wait["start"]), float(wait["end"])
        if wait["kind"] == "api":
            return min(max(start, self.api_started), end)
        keys = [tuple(k) for k in wait["keys"]]
        moments = sorted({start} | {when for k in keys for when, _ in
                                    self.transitions.get(k, []) if start < when <= end})
        for moment in moments:
            if all(self._done(k, moment) for k in keys):
                return moment
        return end


# ----------------------------------------------------------------------------------------------
# measuring commands


@dataclass
class Row:
    """One command (or one stage of `up`), raw and derived figures."""

    label: str
    wall: float
    terraform: float
    servers: float
    cluster: float
    overhead: float
    requests: int = 0
    terraform_runs: int = 0
    cpu: float | None = None  # the provision process's own CPU seconds (whole commands)


@dataclass
class Command:
    """A finished command and everything measured about it."""

    label: str
    window: Interval
    record: dict[str, Any]
    terraform: list[Interval] = field(default_factory=list)
    servers: list[Interval] = field(default_factory=list)
    cluster: list[Interval] = field(default_factory=list)

    def row(self, label: str, window: Interval | None = None) -> Row:
        w = window or self.window
        external = self.terraform + self.servers + self.cluster
        wall = w[1] - w[0]
        return Row(label, wall, union(self.terraform, w), union(self.servers, w),
                   union(self.cluster, w), wall - union(external, w),
                   sum(1 for s, e in self.servers if w[0] <= s <= w[1]),
                   sum(1 for s, e in self.terraform if w[0] <= s <= w[1]))


def run_command(w: Any, clock: ClusterClock, label: str, args: Sequence[str], work: Path,
                profile: Path | None = None) -> Command:
    """Run provision ARGS as a child process of this script; measure it."""
    sim = w.sim
    stats = work / f"{label}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(stats)]
    if profile is not None:
        cmd += ["--profile-to", str(profile)]
    with (work / f"{label}.out").open("w+") as out:
        start = time.time()
        process = subprocess.Popen([*cmd, "--", *args], cwd=sim.root, env=sim.env,
                                   stdout=out, stderr=subprocess.STDOUT, text=True)
        problem: list[str] = []
        finished = threading.Event()

        def watchdog() -> None:  # the world failing, or a command hanging, ends the run
            while not finished.wait(0.1):
                if w.boot.error is not None or time.time() - start > COMMAND_TIMEOUT:
                    problem.append(_world_failure(w.boot.error) if w.boot.error
                                   else f"still running after {COMMAND_TIMEOUT} s")
                    process.kill()
                    return

        guard = threading.Thread(target=watchdog, daemon=True)
        guard.start()
        code = process.wait()  # returns the moment the process exits
        end = time.time()
        finished.set()
        guard.join()
        out.seek(0)
        if problem:
            raise SystemExit(f"provision {' '.join(args)}: {problem[0]}\n{out.read()[-4000:]}")
        if code != 0:
            raise SystemExit(f"provision {' '.join(args)} failed ({code}):\n"
                             f"{out.read()[-4000:]}")
    record = json.loads(stats.read_text())
    command = Command(label, (start, end), record)
    command.terraform = [(s, e) for s, e, _ in record["terraform"]]
    command.servers = [(r.at, r.at + r.duration) for r in sim.api.request_log
                       if start <= r.at <= end]
    kube = w.boot.kube
    if kube is not None:
        command.servers += [(r.started, r.started + r.duration) for r in kube.request_log
                            if start <= r.started <= end]
    command.cluster = [(wait["start"], clock.ready_at(wait)) for wait in record["waits"]]
    return command


def _world_failure(error: BaseException) -> str:
    import traceback

    return "the simulated world failed:\n" + "".join(traceback.format_exception(error))


def large_config(sim: Any, workers: int, apps: int) -> None:
    """bench/render.py's generated environment, on this simulation's account."""
    import yaml

    from bench.render import large_environment

    large_environment(sim.config, workers=workers, apps=apps)
    doc = yaml.safe_load(sim.config.read_text())
    doc["digitalocean"]["ssh_keys"] = sim.fingerprints
    # The simulation has no Spaces bucket (`up` checks the backups' one), as for the
    # production run (tests/support/sim.py writes the example without backups).
    doc.pop("backups", None)
    sim.config.write_text(yaml.safe_dump(doc, sort_keys=False))
    sim.api.seed(droplet_limit=workers + 50)


def new_images(sim: Any) -> None:
    """A release: every app gets a new image tag."""
    import yaml

    doc = yaml.safe_load(sim.config.read_text())
    for app in doc["apps"]:
        app["image"] = app["image"].rsplit(":", 1)[0] + ":bench-2"
    sim.config.write_text(yaml.safe_dump(doc, sort_keys=False))


def pipeline(name: str, workers: int | None, apps: int | None,
             profile_dir: Path | None = None) -> list[Command]:
    """One whole run in a fresh world: up, deploy, status, rollback, destroy."""
    from tests.e2e.world import world
    from tests.fakes.kubeapi.server import FakeKubeAPI

    clock = ClusterClock()
    original_start = FakeKubeAPI.start

    def start(self: FakeKubeAPI) -> str:
        url = original_start(self)
        clock.attach(self)
        return url

    FakeKubeAPI.start = start  # type: ignore[method-assign]
    commands: list[Command] = []
    try:
        with tempfile.TemporaryDirectory() as tmp, world(Path(tmp)) as w:
            sim = w.sim
            sim.env["DO_SIM_LATENCY_MS"] = "0"
            if workers is not None and apps is not None:
                large_config(sim, workers, apps)
            config = str(sim.config)
            work = Path(tmp) / "bench"
            work.mkdir()
            steps: list[tuple[str, tuple[str, ...]]] = [
                ("up", ("up", config, "--yes", "--override-window", "--reason", "bench")),
                ("deploy", ("deploy", config, "--override-window", "--reason", "bench")),
                ("status", ("status", config, "--output", "json")),
                ("rollback", ("rollback", config)),
                ("destroy", ("destroy", config, "--yes", "--force", "--override-window",
                             "--reason", "bench")),
            ]
            for label, args in steps:
                if label == "deploy":
                    new_images(sim)
                profile = profile_dir / f"{name}-{label}.prof" if profile_dir else None
                commands.append(run_command(w, clock, label, args, work, profile))
            if clock.errors:
                raise SystemExit(f"recording the cluster's progress failed: {clock.errors[:3]}")
    finally:
        FakeKubeAPI.start = original_start  # type: ignore[method-assign]
    return commands


def rows(commands: list[Command]) -> list[Row]:
    """The table: `up` with its stages, then each other command, then the total."""
    result: list[Row] = []
    for command in commands:
        whole = command.row(command.label)
        whole.cpu = float(command.record.get("cpu") or 0.0)
        result.append(whole)
        if command.label == "up":
            stages = command.record["stages"]
            start, end = command.window
            bounds = [start]
            for stage in ("infra", "cluster", "apps"):
                s, e = stages[stage]
                if s - bounds[-1] >= 0.01:
                    result.append(command.row("  start-up, checks" if len(bounds) == 1
                                              else "  between stages", (bounds[-1], s)))
                result.append(command.row(f"  {stage}", (s, e)))
                bounds.append(e)
            result.append(command.row("  summary, exit", (bounds[-1], end)))
    result.append(_total(commands))
    return result


def _total(commands: list[Command]) -> Row:
    parts = [c.row(c.label) for c in commands]
    return Row("total", sum(p.wall for p in parts), sum(p.terraform for p in parts),
               sum(p.servers for p in parts), sum(p.cluster for p in parts),
               sum(p.overhead for p in parts), sum(p.requests for p in parts),
               sum(p.terraform_runs for p in parts),
               sum(float(c.record.get("cpu") or 0.0) for c in commands))


def print_table(title: str, table: list[Row]) -> None:
    print(title)
    print(f"{'command / stage':<22} {'wall s':>7} {'terraform':>9} {'servers':>8} "
          f"{'cluster':>8} {'overhead':>8} {'cpu':>6} {'requests':>8} {'tf runs':>7}")
    for r in table:
        cpu = f"{r.cpu:6.2f}" if r.cpu is not None else f"{'':>6}"
        print(f"{r.label:<22} {r.wall:7.2f} {r.terraform:9.2f} {r.servers:8.2f} "
              f"{r.cluster:8.2f} {r.overhead:8.2f} {cpu} {r.requests:8d} "
              f"{r.terraform_runs:7d}")


def print_profile(files: list[Path], limit: int = 25) -> None:
    """Where the profiled commands spent their main thread's time, summed."""
    import pstats

    stats = pstats.Stats(*(str(f) for f in files), stream=sys.stdout)
    stats.sort_stats("cumulative").print_stats(limit)
    stats.sort_stats("tottime").print_stats(limit)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=["production", "large"], default=None)
    parser.add_argument("--profile", action="store_true",
                        help="then run again under cProfile and print where time goes")
    parser.add_argument("--quick", action="store_true",
                        help="only the generated environment, with 5 workers and 5 apps: "
                             "checks that the benchmark runs")
    args = parser.parse_args()
    if args.quick and args.only is None:
        args.only = "large"
    sys.path.insert(0, str(ROOT))
    large_workers, large_apps = (5, 5) if args.quick else (50, 100)
    scenarios = [("production", None, None, 5.0), ("large", large_workers, large_apps, 15.0)]
    verdicts = []
    for name, workers, apps, target in scenarios:
        if args.only and args.only != name:
            continue
        table = rows(pipeline(name, workers, apps))
        title = ("production example" if workers is None
                 else f"generated environment: {workers} workers, {apps} apps")
        print_table(f"{title}, simulated latencies 0", table)
        total, up = table[-1], table[0]
        met = total.overhead < target
        verdicts.append(f"{name}: overhead {total.overhead:.2f} s over the whole run "
                        f"(up alone {up.overhead:.2f} s), target < {target:g} s: "
                        f"{'met' if met else 'NOT met'}")
        print()
        if args.profile:
            with tempfile.TemporaryDirectory() as tmp:
                pipeline(name, workers, apps, Path(tmp))
                print(f"cProfile of {name} (main thread of every command, summed):")
                print_profile(sorted(Path(tmp).glob("*.prof")))
    for line in verdicts:
        print(line)


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        rest = sys.argv[3:]
        profile_to = None
        if rest[:1] == ["--profile-to"]:
            profile_to, rest = Path(rest[1]), rest[2:]
        if rest[:1] == ["--"]:
            rest = rest[1:]
        if sys.path and Path(sys.path[0]).resolve() == Path(__file__).resolve().parent:
            del sys.path[0]  # bench/ itself: its terraform.py must not shadow anything
        sys.exit(child(Path(sys.argv[2]), rest, profile_to))
    main()
