#!/usr/bin/env python3
"""Benchmark: provision at 3, 50 and 500 workers on a simulated DigitalOcean with its
documented rate limits and modelled latencies, before (Terraform's -parallelism 10) and
after (provision's choice).

Usage: python3 bench/scale.py [--quick] [--scale S] [--sizes 3,50,500]

For each size, on a fresh simulated account (tests/support/sim.py: the simulated provider
and the fake API on one account) with the production example's pool grown to N workers:
  * plan: `provision plan` (render, preflight, Terraform plan), wall seconds on this
    machine, with no latency and no rate limit (what the machine costs);
  * infra: `provision up --until infra` with the latencies below and the API's rate limits
    enforced on the provider's and provision's requests (DO_SIM_RATE_LIMIT). The simulated
    clock runs S times faster than the real one: every simulated wait (creates, polls,
    Retry-After) sleeps 1/S of its length, and the bench multiplies back: simulated
    seconds = machine + (wall - machine) x S, where machine is the same command's wall
    time without latency or limits. 500 droplets do not take real minutes;
  * no-op plan: `provision plan` again on the built environment: on this machine (limits
    off) and with the limits (its refresh is one GET per resource at 250 a minute);
  * ready: the modelled time to a ready cluster, infra + BOOT_AND_JOIN (below): nodes
    boot and join in parallel once their droplet is active, so it is the last droplet's
    boot that counts;
  * requests: what the token spent (provider and provision), from the shared rate-limit log.
The same is done at -parallelism 10 (Terraform's default, "before") and at provision's
choice (infra/parallelism.py, "after").

Sources of every figure (simulated time):
  * rate limits: 250 requests a minute and 5,000 an hour per token, each request counted
    for an hour, 429 with Retry-After: DigitalOcean API reference "Rate Limit"
    (digitalocean/openapi specification/description.yml, commit 0a1f36f4); the provider
    retries a 429 4 times after Retry-After (terraform-provider-digitalocean v2.34.1
    provider.go http_retry_max, godo v1.107.0, go-retryablehttp v0.7.4 DefaultBackoff);
  * droplet create to active: 30-60 s, each droplet a fixed point of the range (the range
    the project's issue 18 states as observed; DigitalOcean publishes no figure); the
    provider then notices it at its next poll: POST, then GETs 10, 13, 19, 29 s after it
    and every 10 s (v2.34.1 resource_droplet.go waitForDropletAttribute, Delay 10 s,
    MinTimeout 3 s; plugin SDK helper/retry/state.go), each poll a counted request;
  * reserved IP and its assignment: the provider waits for the assign action with the
    same Delay of 10 s (reservedip/resource_reserved_ip_assignment.go), so 10 s;
  * VPC, firewalls, tags, project: one request each and no wait in the provider (their
    v2.34.1 create functions return after the POST): 1 s;
  * load balancer (not in the production example, which uses a reserved IP): the provider
    polls every 15 s for up to 10 min (loadbalancer/resource_loadbalancer.go); no
    published creation time;
  * BOOT_AND_JOIN = 150 s: no real-cloud run of tests/cloud/acceptance.py is recorded in
    this repository (it prints per-stage times; put them here when one is). Anchor:
    Typhoon measures 3 min 30 s to apply a 1 controller + 2 worker cluster on DigitalOcean
    (poseidon/typhoon docs/topics/performance.md), droplet creation (about 60 s, above)
    included: about 150 s of boot and bootstrap after it;
  * its stages (BOOT_STAGES; the split is this project's assumption, no source publishes
    one, and the total stays the anchor above): boot to cloud-init's runcmd 30 s; the apt
    work of templates/scripts/bootstrap.sh.j2 install_packages (two repository keys, apt
    update over three repositories, containerd.io, kubelet, kubeadm and kubectl) 60 s;
    image pulls (kubeadm's control-plane images on control planes; kube-proxy, the CNI's
    and the CSI node plugin's images on every node) 30 s; kubeadm init or join until the
    node is Ready 30 s. Replace them with the acceptance run's figures when one is recorded;
  * pre-baked (`provision image build`, digitalocean.image: snapshot:<name>): the same
    without the apt installs and the pulls, which the image already has (install_packages
    skips them when /etc/provision/image.json matches, and kubeadm and the kubelet pull
    only missing images): BOOT_PREBAKED = 60 s. Not modelled: whether a droplet created
    from a snapshot becomes active later than one from a distribution image (DigitalOcean
    publishes no figure either way), and the keepalived install on control planes, which
    the last node to be Ready, a worker, does not do;
  * peers: hetzner-k3s "3 masters and 3 worker nodes takes 2-3 minutes" (vitobotta/
    hetzner-k3s README.md) and "500 nodes in under 11 minutes" (as quoted in issue 18;
    not found in the stored copies of its documentation); Typhoon "In 3-6 minutes, the
    Kubernetes cluster will be ready" (poseidon/typhoon docs/fedora-coreos/digitalocean.md).

`--quick` (CI's check that the benchmark still runs): 3 and 10 workers, time scale 50.
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
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from provisioner.infra import parallelism  # noqa: E402
from tests.fakes.doprovider import ratelimit  # noqa: E402
from tests.fakes.doprovider.faults import LATENCY_BY_TYPE_ENV  # noqa: E402
from tests.support.rendering import set_workers  # noqa: E402
from tests.support.sim import TOKEN, Simulation, simulation  # noqa: E402

# Simulated create latencies in ms (sources in the module docstring).
LATENCIES = {
    "digitalocean_droplet": "30000-60000",
    "digitalocean_reserved_ip": "1000",
    "digitalocean_reserved_ip_assignment": "10000",
    "digitalocean_vpc": "1000",
    "digitalocean_firewall": "1000",
    "digitalocean_tag": "1000",
    "digitalocean_project_resources": "1000",
    "digitalocean_loadbalancer": "120000",
}
# Boot and join after the droplet is active, by stage (seconds; basis in the docstring).
BOOT_STAGES = {"boot": 30.0, "apt installs": 60.0, "image pulls": 30.0, "kubeadm": 30.0}
BAKED_STAGES = ("apt installs", "image pulls")  # what a pre-baked image already has
BOOT_AND_JOIN = sum(BOOT_STAGES.values())
BOOT_PREBAKED = sum(v for k, v in BOOT_STAGES.items() if k not in BAKED_STAGES)
PEERS = [
    ("hetzner-k3s, 3 masters + 3 workers (Hetzner Cloud)", "2-3 min",
     "vitobotta/hetzner-k3s README.md"),
    ("hetzner-k3s, 500 nodes (Hetzner Cloud)", "< 11 min", "as quoted in issue 18"),
    ("Typhoon, DigitalOcean", "3-6 min", "poseidon/typhoon docs/fedora-coreos/digitalocean.md"),
    ("Typhoon, DigitalOcean, 1 + 2 nodes measured", "3.5 min",
     "poseidon/typhoon docs/topics/performance.md"),
]
TIMEOUT = 3600


@dataclass
class Row:
    workers: int
    parallelism: int
    plan: float  # machine seconds
    infra: float  # modelled simulated seconds
    infra_run: float  # the scaled run's, multiplied back
    noop_machine: float
    noop_limited: float  # the scaled run's, multiplied back
    requests: int  # the model's droplet creates
    refused: int  # the model's 429s
    failures: int  # the model's requests refused past the provider's retries
    run_requests: int  # what the token spent in the scaled run

    @property
    def ready(self) -> float:
        return self.infra + BOOT_AND_JOIN

    @property
    def ready_prebaked(self) -> float:
        """The same with a pre-baked node image (no apt installs, no pulls)."""
        return self.infra + BOOT_PREBAKED


def run(sim: Simulation, *args: str) -> float:
    """Wall seconds of one provision command in its own process."""
    started = time.perf_counter()
    process = subprocess.run([sys.executable, "-m", "provisioner", *args], cwd=sim.root,
                             env=sim.env, capture_output=True, text=True, timeout=TIMEOUT)
    if process.returncode != 0:
        raise SystemExit(f"provision {' '.join(args)} failed:\n{process.stderr[-3000:]}")
    return time.perf_counter() - started


def sized(sim: Simulation, workers: int) -> None:
    """The production example with its one pool grown to ``workers``."""
    def grow(doc: dict[str, Any]) -> None:
        # Terraform-owned workers: the example's pool autoscales, its floor is what runs.
        set_workers(doc["worker_pools"][0], workers)
        # Every node takes a /24 of the pod network: a /16 holds 256 nodes, a /14 1,024.
        doc["kubernetes"]["pod_cidr"] = "10.244.0.0/14"
    sim.write_config(edit=grow)
    sim.api.seed(droplet_limit=workers + 50)


def machine(workers: int, chosen: int, tmp: Path) -> tuple[float, float, float]:
    """plan, up --until infra and no-op plan without latency or limits: the machine's cost."""
    with simulation(tmp, validate=False) as sim:
        sized(sim, workers)
        plan = run(sim, "plan", str(sim.config))
        up = run(sim, "up", str(sim.config), "--yes", "--until", "infra",
                 "--parallelism", str(chosen))
        noop = run(sim, "plan", str(sim.config))
    return plan, up, noop


def limited(workers: int, chosen: int, scale: float, tmp: Path) -> tuple[float, float, int]:
    """up --until infra and no-op plan with the latencies and the rate limits, in wall
    seconds at ``scale``; and the requests the token made."""
    extra = {LATENCY_BY_TYPE_ENV: ",".join(f"{k}={v}" for k, v in LATENCIES.items()),
             ratelimit.ENV: "on", ratelimit.SCALE_ENV: str(scale)}
    os.environ[ratelimit.SCALE_ENV] = str(scale)  # the fake API runs in this process
    try:
        with simulation(tmp, extra, validate=False) as sim:
            limiter = sim.api.limit_rate()
            sized(sim, workers)
            up = run(sim, "up", str(sim.config), "--yes", "--until", "infra",
                     "--parallelism", str(chosen))
            requests = len(limiter.counted(TOKEN))
            noop = run(sim, "plan", str(sim.config))
    finally:
        os.environ.pop(ratelimit.SCALE_ENV, None)
    return up, noop, requests


def modelled_creates(droplets: int, slots: int, tmp: Path) -> tuple[float, int, int, int]:
    """The droplet phase of an apply as an event simulation on a virtual clock, with the
    same parts the simulated run uses: the latency spread (faults.latency_seconds), the
    provider's polls (apicalls.droplet_polls) and the rate limiter (ratelimit.RateLimiter),
    ``slots`` creates at a time as Terraform's semaphore allows; a refused request waits
    its Retry-After, and one refused more than ``http_retry_max`` (4) times in a row is
    one the real provider gives up on: the apply fails (counted, then let through, so the
    model still ends). Returns (seconds, requests, 429s, failures); no real time passes."""
    import heapq

    from tests.fakes.doprovider import apicalls
    from tests.fakes.doprovider.faults import latency_seconds

    now = [0.0]
    # A log of its own: each model starts an hour's window at time 0.
    limiter = ratelimit.RateLimiter(tmp / f"model-{droplets}-{slots}.ratelimit",
                                    clock=lambda: now[0])
    os.environ[LATENCY_BY_TYPE_ENV] = f"digitalocean_droplet={LATENCIES['digitalocean_droplet']}"
    try:
        schedules = [apicalls.droplet_polls(latency_seconds("digitalocean_droplet", f"d{i}"))
                     for i in range(droplets)]
    finally:
        os.environ.pop(LATENCY_BY_TYPE_ENV, None)
    # Events: (time, sequence, droplet, index of the request: 0 POST, k the k-th poll).
    events: list[tuple[float, int, int, int]] = []
    sequence = 0
    started: dict[int, float] = {}
    waiting = list(range(droplets))[::-1]
    requests = refused = failures = 0
    finished = 0.0
    tries: dict[tuple[int, int], int] = {}

    def start(at: float) -> None:
        nonlocal sequence
        droplet = waiting.pop()
        started[droplet] = at
        heapq.heappush(events, (at, sequence, droplet, 0))
        sequence += 1

    for _ in range(min(slots, droplets)):
        start(0.0)
    while events:
        at, _, droplet, index = heapq.heappop(events)
        now[0] = at
        verdict = limiter.take(TOKEN)
        if not verdict.allowed:
            refused += 1
            tries[droplet, index] = tries.get((droplet, index), 0) + 1
            if tries[droplet, index] > apicalls.RETRY_MAX:
                failures += 1
                tries[droplet, index] = 0
            heapq.heappush(events, (at + max(1.0, verdict.retry_after), sequence, droplet,
                                    index))
            sequence += 1
            continue
        requests += 1
        polls = schedules[droplet]
        if index < len(polls):  # the POST or a poll that does not see it active yet
            heapq.heappush(events, (max(at, started[droplet] + polls[index]), sequence,
                                    droplet, index + 1))
            sequence += 1
        else:  # the poll that saw it active: the slot is free
            finished = max(finished, at)
            if waiting:
                start(at)
    return finished, requests, refused, failures


def simulated(wall: float, base: float, scale: float) -> float:
    """Simulated seconds of a scaled run: the machine's part once, the waits x scale."""
    return base + max(wall - base, 0.0) * scale


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=20.0,
                        help="simulated seconds per real second (default 20)")
    parser.add_argument("--sizes", default="3,50,500", help="worker counts")
    parser.add_argument("--quick", action="store_true",
                        help="3 and 10 workers, scale 200: checks that the benchmark runs")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.scale = "3,10", 50.0
    sizes = [int(s) for s in args.sizes.split(",")]
    rows: list[Row] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for n, workers in enumerate(sizes):
            chosen = parallelism.choose(3 + workers)
            plan, up_base, noop_base = machine(workers, chosen, Path(tmp) / f"m{n}")
            for p in dict.fromkeys((parallelism.TERRAFORM_DEFAULT, chosen)):
                phase, requests, refused, failures = modelled_creates(3 + workers, p,
                                                                     Path(tmp))
                # VPC and tags before the droplets, firewalls after them: 1 s each.
                infra = up_base + 1.0 + phase + 1.0
                up, noop, spent = limited(workers, p, args.scale, Path(tmp) / f"l{n}-{p}")
                rows.append(Row(workers, p, plan, infra, simulated(up, up_base, args.scale),
                                noop_base, simulated(noop, noop_base, args.scale), requests,
                                refused, failures, spent))
    print(f"simulated DigitalOcean, rate limits on (250/min, 5,000/h per token), droplets "
          f"active after 30-60 s (sources: the docstring); run at time scale {args.scale:g}")
    print(f"{'workers':>7} {'parallelism':>11} {'plan s':>7} {'infra s':>8} "
          f"{'run s':>7} {'no-op plan s':>12} {'limited s':>9} {'ready min':>9} {'baked min':>9} "
          f"{'creates':>7} {'429s':>5} {'fails':>5} {'run req':>7}")
    for row in rows:
        before = row.parallelism == parallelism.TERRAFORM_DEFAULT
        after = row.parallelism == parallelism.choose(3 + row.workers)
        mark = " (before and after)" if before and after else (
            " (before)" if before else " (after)")
        print(f"{row.workers:>7} {row.parallelism:>11} {row.plan:>7.2f} {row.infra:>8.1f} "
              f"{row.infra_run:>7.1f} {row.noop_machine:>12.2f} {row.noop_limited:>9.1f} "
              f"{row.ready / 60:>9.1f} {row.ready_prebaked / 60:>9.1f} {row.requests:>7} "
              f"{row.refused:>5} "
              f"{row.failures:>5} {row.run_requests:>7}{mark}")
    print("plan s, no-op plan s: this machine, no latency, no limits. infra s: `up --until "
          "infra` on this machine plus the droplet creates modelled on a virtual clock (P at "
          "a time, polls, rate limit; creates: their requests, 429s: refused ones, fails: "
          "refused past the provider's 4 retries, each an apply that fails). run s: "
          f"the same `up` run on the simulated account with every wait slept 1/{args.scale:g} "
          "and multiplied back (machine + (wall - machine) x scale; noisy: the machine's "
          "jitter is multiplied too); run req: the requests the token made in it. limited "
          f"s: the no-op plan there, multiplied back. ready: infra + {BOOT_AND_JOIN:.0f} s "
          "boot and join (modelled: " + ", ".join(f"{k} {v:.0f} s" for k, v in
                                                  BOOT_STAGES.items())
          + f"); baked: the same from a pre-baked image, infra + {BOOT_PREBAKED:.0f} s "
          "(no apt installs, no image pulls)")
    for name, figure, source in PEERS:
        print(f"peer: {name}: {figure} ({source})")
    largest = [r for r in rows if r.workers == max(sizes)]
    best = min(largest, key=lambda r: r.ready)
    floor = best.requests / parallelism.PER_MINUTE
    print(f"largest: {best.workers} workers ready in {best.ready / 60:.1f} min at parallelism "
          f"{best.parallelism} (target < 10 min), {best.ready_prebaked / 60:.1f} min from a "
          f"pre-baked image; the API's floor for creating its droplets "
          f"alone, at any parallelism: {floor:.1f} min ({best.requests} requests at "
          f"{parallelism.PER_MINUTE} a minute)")
    print(f"bench wall time: {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
