#!/usr/bin/env python3
"""Benchmark: request latencies of the autoscaler service (provisioner/autoscaler) as the
cluster-autoscaler sees them, over mutual TLS, against the fake DigitalOcean API answering
each request after a fixed latency (default 50 ms, a stand-in for the API's round trip).

Usage: python3 bench/autoscaler.py [--quick] [--latency SECONDS] [--rounds N]
(--quick: 3 rounds, no latency: shows that it runs, its figures mean nothing)

Per call, N rounds (p50 and p95 in milliseconds), and the ratio of its p50 to a peer
measured in the same run: one raw HTTP round trip to the fake API for the same data
(GET /v2/droplets?tag_name=provision:prod:autoscaled), i.e. what any client pays for one
API request. A ratio near 0 means the call is answered from the service's listing (no API
request); near 1, one request; above, several (IncreaseSize lists, mints a token through
the Kubernetes API, then creates; DeleteNodes lists, then deletes).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import requests

from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from tests.support.autoscaler import ENV, TOKEN, World, node, running

GROUP = f"{ENV}-batch"


def timed(rounds: int, call: Callable[[int], object]) -> list[float]:
    samples = []
    for i in range(rounds):
        start = time.perf_counter()
        call(i)
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def p95(samples: list[float]) -> float:
    return sorted(samples)[max(0, round(0.95 * len(samples)) - 1)]


def measure(world: World, rounds: int) -> dict[str, list[float]]:
    stub = world.stub()
    session = requests.Session()
    url = f"{world.fake.origin}/v2/droplets"

    def peer(_: int) -> None:
        answer = session.get(url, params={"tag_name": f"provision:{ENV}:autoscaled"},
                             headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
        answer.raise_for_status()

    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GROUP, delta=1), timeout=60)
    stub.Refresh(pb.RefreshRequest(), timeout=60)
    one = next(d for d in world.autoscaled())
    results = {
        "peer: raw GET /v2/droplets": timed(rounds, peer),
        "NodeGroups": timed(rounds, lambda _: stub.NodeGroups(pb.NodeGroupsRequest(),
                                                              timeout=60)),
        "NodeGroupForNode": timed(rounds, lambda _: stub.NodeGroupForNode(
            pb.NodeGroupForNodeRequest(node=node(f"digitalocean://{one['id']}")), timeout=60)),
        "NodeGroupNodes": timed(rounds, lambda _: stub.NodeGroupNodes(
            pb.NodeGroupNodesRequest(id=GROUP), timeout=60)),
        "Refresh": timed(rounds, lambda _: stub.Refresh(pb.RefreshRequest(), timeout=60)),
    }
    made: list[int] = []

    def increase(_: int) -> None:
        before = {int(d["id"]) for d in world.autoscaled()}
        stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GROUP, delta=1),
                                   timeout=60)
        made.extend({int(d["id"]) for d in world.autoscaled()} - before)

    increase_rounds = min(rounds, 10)  # the group's max is 12, one droplet made above
    results["NodeGroupIncreaseSize"] = timed(increase_rounds, increase)
    results["NodeGroupDeleteNodes"] = timed(increase_rounds, lambda i: stub.NodeGroupDeleteNodes(
        pb.NodeGroupDeleteNodesRequest(id=GROUP, nodes=[node(f"digitalocean://{made[i]}")]),
        timeout=60))
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.latency, args.rounds = 0.0, 3
    with tempfile.TemporaryDirectory() as scratch, \
            running(Path(scratch), latency=args.latency) as world:
        results = measure(world, args.rounds)
    peer = statistics.median(results["peer: raw GET /v2/droplets"])
    print(f"fake API latency {args.latency * 1000:.0f} ms; rounds {args.rounds} "
          "(IncreaseSize/DeleteNodes: up to 10, one droplet each)")
    print(f"{'call':34} {'n':>3} {'p50 ms':>8} {'p95 ms':>8} {'p50/peer':>9}")
    for name, samples in results.items():
        p50 = statistics.median(samples)
        print(f"{name:34} {len(samples):3d} {p50:8.1f} {p95(samples):8.1f} {p50 / peer:9.2f}")
    increase = statistics.median(results["NodeGroupIncreaseSize"])
    print(f"IncreaseSize p50 {increase:.0f} ms = {increase / peer:.1f} API round trips "
          "(list, create; the token through the Kubernetes API)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
