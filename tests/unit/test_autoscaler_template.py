"""The scale-from-zero template's memory: what a Node of the size really offers pods.

Sources: the kernel's share is the cluster-autoscaler's own estimate for Ubuntu nodes
(kubernetes/autoscaler cluster-autoscaler/cloudprovider/gce/gce_reserved.go
``CalculateKernelReserved``, tag cluster-autoscaler-1.36.1: memory/64 + 16 MiB, + 64 MiB
above 3 GiB, + 8 MiB up to 8 GiB, + min(0.00175 x memory, 248 MiB), + 4 MiB for Ubuntu);
the kubelet's is its default ``evictionHard`` ``memory.available: 100Mi`` (kubelet config
v1beta1 defaults), since provision's KubeletConfiguration reserves nothing else.
"""

from __future__ import annotations

import pytest

from provisioner.autoscaler.settings import PoolSettings
from provisioner.autoscaler.template import template_node
from tests.contract.test_kubeadm_rendered import kubeadm_documents


def _pool() -> PoolSettings:
    return PoolSettings(name="p", min=0, max=1, size="s-x", region="fra1", image="i",
                        vpc_uuid="v", ssh_keys=(), tags=(), labels=(), taints=(),
                        user_data=(), values=())


# (size memory MiB, capacity MiB, allocatable MiB), the kernel's share by hand:
#   1024:  16 + 16 +  0 + 8 +  1.792 + 4 =  45.8 -> 46
#   4096:  64 + 16 + 64 + 8 +  7.168 + 4 = 163.2 -> 164
#   16384: 256 + 16 + 64 + 0 + 28.672 + 4 = 368.7 -> 369
@pytest.mark.parametrize(("memory", "capacity", "allocatable"), [
    (1024, 1024 - 46, 1024 - 46 - 100),
    (4096, 4096 - 164, 4096 - 164 - 100),
    (16384, 16384 - 369, 16384 - 369 - 100),
])
def test_template_memory_is_less_the_kernel_and_the_eviction_threshold(
        memory: int, capacity: int, allocatable: int) -> None:
    node = template_node("g", _pool(), {"memory": memory, "vcpus": 2, "disk": 50})
    assert node["status"]["capacity"]["memory"] == f"{capacity}Mi"
    assert node["status"]["allocatable"]["memory"] == f"{allocatable}Mi"


def test_the_kubelet_reserves_nothing_but_the_default_eviction_threshold() -> None:
    """What template.py assumes of the rendered KubeletConfiguration (every node's: kubeadm
    stores the init one in the kubelet-config ConfigMap joining nodes read)."""
    *_, kubelet = kubeadm_documents("production", "cloud-init/controller-init.yaml")
    assert kubelet["kind"] == "KubeletConfiguration"
    for key in ("kubeReserved", "systemReserved", "evictionHard", "enforceNodeAllocatable",
                "maxPods"):
        assert key not in kubelet, f"template.py must account for {key}"
