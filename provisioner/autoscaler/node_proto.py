"""Kubernetes' v1.Node as protocol buffers, for NodeGroupTemplateNodeInfo's ``nodeBytes``.

The cluster-autoscaler decodes ``nodeBytes`` with ``apiv1.Node.Unmarshal`` (cluster-
autoscaler 1.36.1, cloudprovider/externalgrpc/externalgrpc_node_group.go,
TemplateNodeInfo), the gogo-protobuf code generated from k8s.io/api's
core/v1/generated.proto. The message class here is built from that very file (vendored in
protos/k8s.io, compiled into protos/k8s_core_v1.binpb by protos/generate.py), so the field
numbers and types are upstream's, not a copy typed by hand.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

NODE_TYPE = "k8s.io.api.core.v1.Node"
DESCRIPTORS = Path(__file__).resolve().parent / "protos" / "k8s_core_v1.binpb"


@functools.cache
def node_class() -> Any:
    """The generated message class of ``k8s.io.api.core.v1.Node``."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    files = descriptor_pb2.FileDescriptorSet.FromString(DESCRIPTORS.read_bytes())
    pool = descriptor_pool.DescriptorPool()
    for proto in files.file:  # --include_imports writes dependencies first
        pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(NODE_TYPE))


def _quantities(values: Mapping[str, str]) -> dict[str, dict[str, str]]:
    # resource.Quantity is a message with one field, ``string`` (its canonical text).
    return {name: {"string": value} for name, value in values.items()}


def encode(node: Mapping[str, Any]) -> bytes:
    """The wire bytes of a Node given in its API (JSON) shape: metadata.name and labels,
    spec.providerID and taints, status.capacity, allocatable and conditions."""
    from google.protobuf import json_format

    meta, spec, status = (node.get(k) or {} for k in ("metadata", "spec", "status"))
    message = {
        "metadata": {"name": meta.get("name", ""), "labels": dict(meta.get("labels") or {})},
        "spec": {"taints": [dict(t) for t in spec.get("taints") or []],
                 **({"providerID": spec["providerID"]} if spec.get("providerID") else {})},
        "status": {"capacity": _quantities(status.get("capacity") or {}),
                   "allocatable": _quantities(status.get("allocatable") or {}),
                   "conditions": [dict(c) for c in status.get("conditions") or []],
                   "phase": status.get("phase", "Running")},
    }
    parsed = json_format.ParseDict(message, node_class()())
    data: bytes = parsed.SerializeToString(deterministic=True)
    return data
