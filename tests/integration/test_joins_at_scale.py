"""Joins stay O(1) in the number of workers (issue 18): 50 and 100 workers joining at once.

Each simulated worker sends, over real HTTPS to the fake API server, what kubeadm join and
its kubelet send (tests/support/joins.py cites kubernetes/kubernetes for each request:
discovery through the anonymous ``kube-public/cluster-info`` and the bootstrap token,
cmd/kubeadm/app/discovery/token/token.go; the TLS bootstrap request approved by the
csrapproving controller, pkg/controller/certificates/approver/sarapprove.go; the serving
request approved by provision's approver, provisioner/agents/csr_approver.py, run through
kubectl as the control-plane timer runs it), while provision's wait for Ready
(provisioner/bootstrap/readiness.py ``wait_for_nodes``, as `up` runs it) watches.

Nothing a worker does waits for another worker: each node's requests are a fixed list
(the same count at 100 nodes as at 50), the approver's requests are two LISTs a pass and
one PUT per node (with a GET per node as well before the approver took Nodes from its LIST,
this fails), one pass after the last request approves everything, provision's wait ends
within one of its polls of the slowest node's Ready, and nearly all nodes are joining at
the same moment. bench/joins.py prints the same figures at 500.
"""

from __future__ import annotations

import pytest

from provisioner.bootstrap import readiness
from tests.support import joins

pytestmark = pytest.mark.integration

POLL = 3.0  # readiness.wait_for_nodes's default interval, which `up` uses
SLACK = 10.0  # one LIST of the nodes and a loaded machine's scheduling


@pytest.fixture(scope="module")
def figures() -> dict[int, joins.Figures]:
    # Every node boots within half a second of the others: the herd at its worst.
    return {count: joins.run(count, spread=0.5) for count in (50, 100)}


def test_each_node_sends_the_same_requests_at_100_as_at_50(
        figures: dict[int, joins.Figures]) -> None:
    small, large = figures[50], figures[100]
    # Waiting for a certificate is a LIST, and a WATCH only if it was not issued yet: at
    # most one request a wait (two waits) between nodes, whatever the count.
    assert large.max_requests == small.max_requests == 13
    assert abs(large.requests_per_node - small.requests_per_node) <= 2
    for fig in (small, large):
        assert min(r.requests for r in fig.runs) >= 11
        # The server saw exactly the nodes' requests (anonymous, token, node identities).
        assert fig.server_requests == fig.client_requests


def test_the_approver_costs_one_request_per_node_and_one_pass(
        figures: dict[int, joins.Figures]) -> None:
    for count, fig in figures.items():
        assert fig.approver_puts == count, (count, fig)  # each node's, once
        # Two LISTs a pass (one page each up to 500 objects), nothing per node: with a GET
        # of each requester's Node, as before, there were `count` more.
        assert fig.approver_lists <= 2 * fig.approver_passes, (count, fig)
        assert fig.approver_passes_needed <= 1, (count, fig)


def test_provision_waits_for_the_slowest_node_not_the_sum(
        figures: dict[int, joins.Figures]) -> None:
    assert readiness.wait_for_nodes.__defaults__ is not None
    assert POLL in readiness.wait_for_nodes.__defaults__
    for count, fig in figures.items():
        assert fig.slowest_ready <= fig.wait_ended <= fig.slowest_ready + POLL + SLACK, \
            (count, fig)
        # Serialised anywhere, one node at a time would be between its first request and
        # Ready, and the joins' times added up would be the wall time.
        assert fig.peak_joining >= count // 4, (count, fig)
        assert fig.sum_of_joins > 2 * fig.slowest_ready, (count, fig)
