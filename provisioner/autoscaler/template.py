"""The node a pool's next droplet becomes, for the autoscaler's scale-from-zero simulation.

A node group of size 0 has no node to copy, so the autoscaler asks for a template
(NodeGroupTemplateNodeInfo) and schedules pending pods on it in simulation. What it must
get right is what scheduling reads: allocatable cpu, memory and pods, labels (node
selectors, affinity) and taints (tolerations).

* capacity: the size's vCPUs and disk (GiB) as /v2/sizes reports them; pods 110, the
  kubelet's default maxPods (provision sets no other); memory: the size's, less what the
  Linux kernel keeps before the kubelet sees it (a Node's capacity is MemTotal, not the
  droplet's nominal memory). provision's nodes run Ubuntu, so the estimate is the one the
  cluster-autoscaler's own GCE provider makes for Ubuntu nodes (kubernetes/autoscaler
  cluster-autoscaler/cloudprovider/gce/gce_reserved.go ``CalculateKernelReserved`` at
  cluster-autoscaler-1.36.1): memory/64 + 16 MiB, + 64 MiB of software IO TLB above
  3 GiB, + 8 MiB up to 8 GiB, + min(0.175 % of memory, 248 MiB), + 4 MiB for Ubuntu;
  rounded up to whole MiB;
* allocatable: capacity less what the kubelet holds back. provision's KubeletConfiguration
  (templates/kubeadm/cluster.yaml.j2) sets no kubeReserved, systemReserved or evictionHard,
  so that is the kubelet's default hard eviction threshold for memory,
  ``memory.available<100Mi`` (kubelet config v1beta1 defaults), and nothing else; the
  simulation never packs a node fuller than the kubelet would admit;
* labels: the pool's labels (the kubelet's --node-labels, render/cloudinit.py), the
  kubelet's own well-known ones (kubernetes.io/os, arch, hostname) and the DigitalOcean
  cloud controller manager's (node.kubernetes.io/instance-type = size slug,
  topology.kubernetes.io/region = region slug);
* taints: the pool's (kubeadm's nodeRegistration.taints, same file).
"""

from __future__ import annotations

import math
from typing import Any

from provisioner.autoscaler.settings import PoolSettings

MAX_PODS = 110
EVICTION_MEMORY_MIB = 100


def kernel_reserved_mib(memory_mib: int) -> int:
    """What Linux (Ubuntu) keeps of ``memory_mib`` (gce_reserved.go, module docstring)."""
    reserved = memory_mib / 64 + 16
    if memory_mib > 3 * 1024:
        reserved += 64  # software IO TLB
    if memory_mib <= 8 * 1024:
        reserved += 8  # low-memory offset
    reserved += min(0.00175 * memory_mib, 248) + 4  # measured correction, Ubuntu offset
    return math.ceil(reserved)


def template_node(group_id: str, pool: PoolSettings, size: dict[str, Any]) -> dict[str, Any]:
    """The template Node (API shape) of ``pool``, from its size's /v2/sizes entry."""
    name = f"{group_id}-template"
    memory_mib = int(size["memory"])
    memory_mib = max(memory_mib - kernel_reserved_mib(memory_mib), 0)
    capacity = {"cpu": str(int(size["vcpus"])), "memory": f"{memory_mib}Mi",
                "ephemeral-storage": f"{int(size['disk'])}Gi", "pods": str(MAX_PODS)}
    allocatable = dict(capacity, memory=f"{max(memory_mib - EVICTION_MEMORY_MIB, 0)}Mi")
    labels = {
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",  # every DigitalOcean droplet size is x86-64
        "kubernetes.io/hostname": name,
        "node.kubernetes.io/instance-type": pool.size,
        "topology.kubernetes.io/region": pool.region,
        **dict(pool.labels),
    }
    taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"taints": taints},
        "status": {"capacity": capacity, "allocatable": allocatable, "phase": "Running",
                   "conditions": [{"type": "Ready", "status": "True"}]},
    }
