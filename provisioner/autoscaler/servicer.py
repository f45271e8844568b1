"""The externalgrpc CloudProvider service: gRPC in, :class:`Groups` calls, gRPC out.

What the cluster-autoscaler's client does with each answer (cluster-autoscaler 1.36.1,
cloudprovider/externalgrpc/externalgrpc_cloud_provider.go and externalgrpc_node_group.go):

* it caches NodeGroups and NodeGroupForNode until the next Refresh (called at the start of
  every loop), GPULabel and GetAvailableGPUTypes for its whole life, a group's template
  (NodeGroupTemplateNodeInfo) for the group's life;
* NodeGroupForNode with an empty id means "not autoscaled" (and is not cached);
* only for the optional calls (PricingNodePrice, PricingPodPrice, NodeGroupTemplateNodeInfo,
  NodeGroupGetOptions) is Unimplemented special: it means "use the default". Any other
  error code is a failure of that call (a failed IncreaseSize is a failed scale-up, the
  group backed off): the codes here are chosen to tell an operator why;
* every call has a deadline, ``grpc_timeout`` in its cloud-config (5 s by default): the
  service passes it down, so an IncreaseSize whose deadline passes creates nothing more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

import grpc

from provisioner.autoscaler.doclient import DoError
from provisioner.autoscaler.groups import Group, GroupError, Groups
from provisioner.autoscaler.kubeclient import KubeApiError
from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc

log = logging.getLogger("provisioner.autoscaler")
T = TypeVar("T")


def _deadline(context: Any) -> float | None:
    remaining = context.time_remaining()
    return None if remaining is None else time.monotonic() + remaining


def _group(group: Group | None) -> Any:
    if group is None:
        return pb.NodeGroup()  # id "": not autoscaled
    return pb.NodeGroup(id=group.id, minSize=group.min_size, maxSize=group.max_size,
                        debug=group.debug)


class CloudProvider(pb_grpc.CloudProviderServicer):
    """One servicer over the service's :class:`Groups`."""

    def __init__(self, groups: Groups) -> None:
        self.groups = groups

    def _call(self, context: Any, what: str, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except GroupError as error:
            log.warning("%s refused: %s", what, error)
            context.abort(grpc.StatusCode[error.code], str(error))
        except DoError as error:
            code = grpc.StatusCode.RESOURCE_EXHAUSTED if error.status == 429 \
                else grpc.StatusCode.UNAVAILABLE
            log.warning("%s failed: %s", what, error)
            context.abort(code, f"DigitalOcean API: {error}")
        except KubeApiError as error:
            log.warning("%s failed: %s", what, error)
            context.abort(grpc.StatusCode.UNAVAILABLE, f"Kubernetes API: {error}")
        raise AssertionError("context.abort raises")

    # ------------------------------------------------------------ provider

    def NodeGroups(self, request: Any, context: Any) -> Any:
        groups = self._call(context, "NodeGroups", self.groups.groups)
        return pb.NodeGroupsResponse(nodeGroups=[_group(g) for g in groups])

    def NodeGroupForNode(self, request: Any, context: Any) -> Any:
        provider_id = request.node.providerID
        group = self._call(context, "NodeGroupForNode",
                           lambda: self.groups.group_for(provider_id, _deadline(context)))
        return pb.NodeGroupForNodeResponse(nodeGroup=_group(group))

    def PricingNodePrice(self, request: Any, context: Any) -> Any:
        hours = (request.endTimestamp.ToDatetime() - request.startTimestamp.ToDatetime()
                 ).total_seconds() / 3600
        labels = dict(request.node.labels)
        price = self._call(context, "PricingNodePrice",
                           lambda: self.groups.node_price(labels, hours, _deadline(context)))
        return pb.PricingNodePriceResponse(price=price)

    def PricingPodPrice(self, request: Any, context: Any) -> Any:
        # Optional; the autoscaler prices pods itself when this is Unimplemented.
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "pod prices are not offered")

    def GPULabel(self, request: Any, context: Any) -> Any:
        # No GPU sizes in provision's pools: no label marks a GPU node.
        return pb.GPULabelResponse(label="")

    def GetAvailableGPUTypes(self, request: Any, context: Any) -> Any:
        return pb.GetAvailableGPUTypesResponse()

    def Cleanup(self, request: Any, context: Any) -> Any:
        return pb.CleanupResponse()

    def Refresh(self, request: Any, context: Any) -> Any:
        self._call(context, "Refresh", lambda: self.groups.refresh(_deadline(context)))
        return pb.RefreshResponse()

    # ------------------------------------------------------------ node group

    def NodeGroupTargetSize(self, request: Any, context: Any) -> Any:
        size = self._call(context, "NodeGroupTargetSize",
                          lambda: self.groups.target_size(request.id, _deadline(context)))
        return pb.NodeGroupTargetSizeResponse(targetSize=size)

    def NodeGroupIncreaseSize(self, request: Any, context: Any) -> Any:
        log.info("IncreaseSize %s by %d", request.id, request.delta)
        self._call(context, "NodeGroupIncreaseSize",
                   lambda: self.groups.increase(request.id, request.delta, _deadline(context)))
        return pb.NodeGroupIncreaseSizeResponse()

    def NodeGroupDeleteNodes(self, request: Any, context: Any) -> Any:
        ids = [node.providerID for node in request.nodes]
        log.info("DeleteNodes %s: %s", request.id, ", ".join(ids))
        self._call(context, "NodeGroupDeleteNodes",
                   lambda: self.groups.delete(request.id, ids, _deadline(context)))
        return pb.NodeGroupDeleteNodesResponse()

    def NodeGroupDecreaseTargetSize(self, request: Any, context: Any) -> Any:
        self._call(context, "NodeGroupDecreaseTargetSize",
                   lambda: self.groups.decrease_target(request.id, request.delta))
        return pb.NodeGroupDecreaseTargetSizeResponse()

    def NodeGroupNodes(self, request: Any, context: Any) -> Any:
        instances = self._call(context, "NodeGroupNodes",
                               lambda: self.groups.nodes(request.id, _deadline(context)))
        return pb.NodeGroupNodesResponse(instances=[
            pb.Instance(id=i.id, status=pb.InstanceStatus(
                instanceState=cast(Any, i.state),
                errorInfo=pb.InstanceErrorInfo(errorCode=i.error_code,
                                               errorMessage=i.error_message,
                                               instanceErrorClass=i.error_class)))
            for i in instances])

    def NodeGroupTemplateNodeInfo(self, request: Any, context: Any) -> Any:
        data = self._call(context, "NodeGroupTemplateNodeInfo",
                          lambda: self.groups.template_node(request.id, _deadline(context)))
        return pb.NodeGroupTemplateNodeInfoResponse(nodeBytes=data)

    def NodeGroupGetOptions(self, request: Any, context: Any) -> Any:
        # No per-group options. Unimplemented, never an echo of request.defaults: the
        # client builds the group's options from the answer's proto fields alone, which
        # cannot carry MaxNodeStartupTime, so an echo zeroes it; only Unimplemented makes
        # the autoscaler keep all its defaults (cluster-autoscaler 1.36.1
        # externalgrpc_node_group.go GetOptions, processors/nodegroupconfig/
        # node_group_config_processor.go).
        self._call(context, "NodeGroupGetOptions", lambda: self.groups._pool(request.id))
        context.abort(grpc.StatusCode.UNIMPLEMENTED, "no per-node-group options: the "
                      "autoscaler's defaults apply")
