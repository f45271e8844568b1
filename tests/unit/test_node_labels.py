"""Worker pool labels: exactly what a kubelet may set on its own Node.

Upstream rules (kubernetes/kubernetes, read at commit 1c7b3d91):

* staging/src/k8s.io/kubelet/pkg/apis/well_known_labels.go, ``IsKubeletLabel``: a key in
  ``kubeletLabels`` (kubernetes.io/hostname, topology.kubernetes.io/zone and /region,
  failure-domain.beta.kubernetes.io/zone and /region, beta.kubernetes.io/instance-type,
  node.kubernetes.io/instance-type, kubernetes.io/os and /arch, beta.kubernetes.io/os and
  /arch), or a namespace that is or ends in ``.kubelet.kubernetes.io`` /
  ``.node.kubernetes.io``. The kubelet refuses to start with other kubernetes.io or k8s.io
  labels in --node-labels.
* plugin/pkg/admission/noderestriction/admission.go, ``getForbiddenCreateLabels``: a
  kubelet may never set a label whose namespace is or ends in
  ``node-restriction.kubernetes.io`` (core/v1 ``LabelNamespaceNodeRestriction``: "a
  forbidden label namespace that kubelets may not self-set"), so a node registering with
  one is refused. These labels pass Kubernetes' label syntax, so only this rule stops them.
"""

from __future__ import annotations

import pytest

from provisioner.config.checks import node_label_key


@pytest.mark.parametrize("key", [
    "tier", "example.com/role", "node.kubernetes.io/pool", "x.node.kubernetes.io/pool",
    "kubelet.kubernetes.io/thing", "topology.kubernetes.io/zone", "kubernetes.io/arch",
    "beta.kubernetes.io/instance-type", "failure-domain.beta.kubernetes.io/zone",
    "kubernetes.io.example.com/fine",
])
def test_labels_the_kubelet_sets(key: str) -> None:
    assert node_label_key(key) is None


@pytest.mark.parametrize(("key", "fragment"), [
    ("node-restriction.kubernetes.io/team", "cannot be set by the kubelet"),
    ("a.node-restriction.kubernetes.io/team", "cannot be set by the kubelet"),
    ("kubernetes.io/role", "reserved for Kubernetes"),
    ("node-role.kubernetes.io/worker", "reserved for Kubernetes"),
    ("k8s.io/x", "reserved for Kubernetes"),
    ("team.k8s.io/x", "reserved for Kubernetes"),
    ("topology.kubernetes.io/rack", "reserved for Kubernetes"),
])
def test_labels_the_kubelet_refuses(key: str, fragment: str) -> None:
    problem = node_label_key(key)
    assert problem is not None and fragment in problem[0]
