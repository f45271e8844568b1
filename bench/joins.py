#!/usr/bin/env python3
"""Benchmark: workers joining at once, 50 against 500, over real HTTPS to the fake API server.

Usage: python3 bench/joins.py [--nodes 50,500] [--spread S] [--quick]

Each node is a thread sending what a worker's `kubeadm join` and kubelet send (discovery
through the anonymous cluster-info and the bootstrap token, the kubelet's client
certificate auto-approved by kube-controller-manager's csrapproving controller, its Node
registered and Ready, its serving certificate approved by provision's approver run
through kubectl every second, as the control-plane timer runs it every 15 s), while
provision's wait for Ready (provisioner/bootstrap/readiness.py, as `up` runs it) polls.
tests/support/joins.py has the requests and their sources. Nodes start within --spread
seconds of each other (default 2: boot jitter).

It prints, per size: requests per node (mean and max), the approver's passes, LISTs (two a
pass, in kubectl's pages of 500) and PUTs (one a node), and the most passes a serving
request waited for,
when the slowest node was Ready and when provision's wait ended, the nodes' join times
added up (what a serial join would take) and the most nodes joining at one moment; then
the ratio of requests per node at the largest size to the smallest (target 1.00).
`--quick` (CI's check that it still runs): 10 and 20 nodes.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support import joins


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", default="50,500")
    parser.add_argument("--spread", type=float, default=2.0)
    parser.add_argument("--quick", action="store_true")
    options = parser.parse_args(argv)
    sizes = [10, 20] if options.quick else [int(n) for n in options.nodes.split(",")]
    print(f"{'nodes':>5} {'req/node':>8} {'max':>4} {'passes':>6} {'LISTs':>5} {'PUTs':>5} "
          f"{'needed':>6} {'slowest Ready s':>15} {'up wait s':>9} {'sum of joins s':>14} "
          f"{'peak joining':>12} {'wall s':>6}")
    results = {}
    for size in sizes:
        began = time.monotonic()
        fig = joins.run(size, spread=options.spread)
        results[size] = fig
        print(f"{size:>5} {fig.requests_per_node:>8.2f} {fig.max_requests:>4} "
              f"{fig.approver_passes:>6} {fig.approver_lists:>5} {fig.approver_puts:>5} "
              f"{fig.approver_passes_needed:>6} {fig.slowest_ready:>15.1f} "
              f"{fig.wait_ended:>9.1f} {fig.sum_of_joins:>14.1f} {fig.peak_joining:>12} "
              f"{time.monotonic() - began:>6.1f}", flush=True)
    small, large = results[sizes[0]], results[sizes[-1]]
    print(f"requests per node, {sizes[-1]} / {sizes[0]} nodes: "
          f"{large.requests_per_node / small.requests_per_node:.2f} (target 1.00); "
          f"approver at {sizes[-1]}: {large.approver_puts / sizes[-1]:.2f} PUT a node, "
          f"{large.approver_lists / large.approver_passes:.2f} LISTs a pass, "
          f"{large.approver_passes_needed} pass needed; provision's wait ended "
          f"{large.wait_ended - large.slowest_ready:.1f} s after the slowest node's Ready "
          f"(sum of joins {large.sum_of_joins:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
