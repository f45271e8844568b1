"""Hostile checks of the autoscaler service against what cluster-autoscaler 1.36.1 does with
its answers (kubernetes/autoscaler tag cluster-autoscaler-1.36.1).

externalgrpc_node_group.go ``GetOptions`` builds ``config.NodeGroupAutoscalingOptions`` from
the answer's proto fields only; the proto (externalgrpc.proto ``NodeGroupAutoscalingOptions``)
has no MaxNodeStartupTime, so any answer other than Unimplemented gives the group a
MaxNodeStartupTime of 0. processors/nodegroupconfig/node_group_config_processor.go
``GetMaxNodeStartupTime`` returns that 0 (only Unimplemented or a nil answer falls back to
the defaults), and clusterstate/clusterstate.go ``updateReadinessStats`` then counts every
registered-but-not-yet-Ready node of the group as Unready instead of NotStarted (and keeps
the 0 for the nodes it looks at after it, the variable being shared across the loop).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2

from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from tests.support.autoscaler import ENV, World, running

GENERAL = f"{ENV}-general"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running(tmp_path) as started:
        yield started


def test_get_options_leaves_the_autoscaler_its_defaults(world: World) -> None:
    """The service has no per-group options: it must answer Unimplemented (the client maps
    that to ErrNotImplemented and the autoscaler keeps all its defaults), because an echoed
    answer zeroes MaxNodeStartupTime, which the proto cannot carry."""
    defaults = pb.NodeGroupAutoscalingOptions(
        scaleDownUtilizationThreshold=0.5,
        scaleDownUnneededDuration=duration_pb2.Duration(seconds=600),
        MaxNodeProvisionDuration=duration_pb2.Duration(seconds=900))
    with pytest.raises(grpc.RpcError) as caught:
        world.stub().NodeGroupGetOptions(
            pb.NodeGroupAutoscalingOptionsRequest(id=GENERAL, defaults=defaults), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_concurrent_scale_ups_never_pass_max(world: World) -> None:
    """Held: eight IncreaseSize(1) at once on a group of max 3 make exactly 3 droplets."""
    stub = world.stub()
    codes: list[grpc.StatusCode] = []

    def up() -> None:
        try:
            stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=1),
                                       timeout=60)
            codes.append(grpc.StatusCode.OK)
        except grpc.RpcError as error:
            codes.append(error.code())

    threads = [threading.Thread(target=up) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert codes.count(grpc.StatusCode.OK) == 3
    assert len([d for d in world.autoscaled()
                if f"provision:{ENV}:pool:general" in d["tags"]]) == 3
