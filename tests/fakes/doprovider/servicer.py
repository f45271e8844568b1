"""The tfplugin6 Provider service, driven by the real provider's schema.

Why not the `tf` package's `ProviderServicer`: its schema model has no list-nested blocks,
object-typed attributes or `min_items`, all of which the DigitalOcean schema uses, and its
planning cannot express SDKv2 behaviour (defaults, state functions, legacy type system).
So this module speaks the protocol directly, using `tf`'s generated protobuf stubs.

Like the real SDKv2 provider, plan and apply responses set `legacy_type_system`: Terraform
then tolerates the small plan/apply inconsistencies SDKv2 providers are known for (e.g. a
`Default` showing up in the plan) instead of failing.
"""

from __future__ import annotations

import functools
import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as rpc

from .cloud import Cloud
from .diag import Diagnostics, attribute_path
from .resources import data_source_for, resource_for
from .resources.base import Context
from .schema import ProviderSchema, block_pb, load_schema, type_schema_pb
from .values import conform, decode, encode, resolve_unknowns

_R = TypeVar("_R")

# Benchmarks separate the simulation's own cost from Terraform's and provision's: with this
# set, every RPC appends "name start end" (epoch seconds) to that file. Unset: nothing.
RPC_LOG_ENV = "DO_SIM_RPC_LOG"


def _log_rpc(name: str, start: float) -> None:
    path = os.environ.get(RPC_LOG_ENV)
    if path:
        # One short line per write: O_APPEND keeps lines from parallel RPCs whole.
        with open(path, "a", encoding="utf-8") as log:
            log.write(f"{name} {start:.6f} {time.time():.6f}\n")


def _guard(response_cls: Any) -> Callable[[Callable[..., _R]], Callable[..., _R]]:
    """Turn an exception in an RPC into an error diagnostic instead of a gRPC failure."""

    def wrap(fn: Callable[..., _R]) -> Callable[..., _R]:
        @functools.wraps(fn)
        def inner(self: ProviderServicer, request: Any, context: Any) -> _R:
            start = time.time()
            try:
                return fn(self, request, context)
            except Exception as exc:
                diags = Diagnostics()
                diags.error(
                    f"doprovider internal error in {fn.__name__}: {exc!r}",
                    traceback.format_exc(),
                )
                return response_cls(diagnostics=diags.to_pb())  # type: ignore[no-any-return]
            finally:
                _log_rpc(fn.__name__, start)

        return inner

    return wrap


class ProviderServicer(rpc.ProviderServicer):  # type: ignore[misc]
    """Answers Terraform's calls for `registry.terraform.io/digitalocean/digitalocean`."""

    def __init__(self, schema: ProviderSchema | None = None) -> None:
        self.schema = schema or load_schema()
        self.token: str | None = None
        self.cloud = Cloud()
        self._schema_response: pb.GetProviderSchema.Response | None = None

    # ----------------------------------------------------------------- metadata

    def _capabilities(self) -> pb.ServerCapabilities:
        # Same as the SDKv2 provider: no plan_destroy, schema required on every start.
        return pb.ServerCapabilities(plan_destroy=False, get_provider_schema_optional=False)

    @_guard(pb.GetMetadata.Response)
    def GetMetadata(self, request: Any, context: Any) -> pb.GetMetadata.Response:
        return pb.GetMetadata.Response(
            server_capabilities=self._capabilities(),
            resources=[pb.GetMetadata.ResourceMetadata(type_name=n) for n in self.schema.resources],
            data_sources=[
                pb.GetMetadata.DataSourceMetadata(type_name=n) for n in self.schema.data_sources
            ],
        )

    @_guard(pb.GetProviderSchema.Response)
    def GetProviderSchema(self, request: Any, context: Any) -> pb.GetProviderSchema.Response:
        if self._schema_response is None:
            self._schema_response = pb.GetProviderSchema.Response(
                provider=type_schema_pb(self.schema.provider),
                # SDKv2 declares an empty provider_meta block.
                provider_meta=pb.Schema(
                    version=0, block=block_pb(type(self.schema.provider.block)())
                ),
                resource_schemas={k: type_schema_pb(v) for k, v in self.schema.resources.items()},
                data_source_schemas={
                    k: type_schema_pb(v) for k, v in self.schema.data_sources.items()
                },
                server_capabilities=self._capabilities(),
            )
        return self._schema_response

    @_guard(pb.GetFunctions.Response)
    def GetFunctions(self, request: Any, context: Any) -> pb.GetFunctions.Response:
        return pb.GetFunctions.Response()

    # -------------------------------------------------------------- provider config

    @_guard(pb.ValidateProviderConfig.Response)
    def ValidateProviderConfig(
        self, request: Any, context: Any
    ) -> pb.ValidateProviderConfig.Response:
        return pb.ValidateProviderConfig.Response()

    @_guard(pb.ConfigureProvider.Response)
    def ConfigureProvider(self, request: Any, context: Any) -> pb.ConfigureProvider.Response:
        config = decode(request.config) or {}
        token = config.get("token")
        # Same fallbacks as the real provider's schema.EnvDefaultFunc.
        self.token = (
            token
            if isinstance(token, str) and token
            else os.environ.get("DIGITALOCEAN_TOKEN") or os.environ.get("DIGITALOCEAN_ACCESS_TOKEN")
        )
        self.cloud = Cloud()
        return pb.ConfigureProvider.Response()

    def _context(self, type_name: str, data_source: bool = False) -> Context:
        table = self.schema.data_sources if data_source else self.schema.resources
        return Context(type_name, table[type_name], Diagnostics(), self.cloud, self.token)

    # ------------------------------------------------------------------ validation

    @_guard(pb.ValidateResourceConfig.Response)
    def ValidateResourceConfig(
        self, request: Any, context: Any
    ) -> pb.ValidateResourceConfig.Response:
        ctx = self._context(request.type_name)
        config = decode(request.config)
        if isinstance(config, dict):
            resource_for(request.type_name).validate(ctx, config)
        return pb.ValidateResourceConfig.Response(diagnostics=ctx.diags.to_pb())

    @_guard(pb.ValidateDataResourceConfig.Response)
    def ValidateDataResourceConfig(
        self, request: Any, context: Any
    ) -> pb.ValidateDataResourceConfig.Response:
        ctx = self._context(request.type_name, data_source=True)
        config = decode(request.config)
        if isinstance(config, dict):
            data_source_for(request.type_name).validate(ctx, config)
        return pb.ValidateDataResourceConfig.Response(diagnostics=ctx.diags.to_pb())

    # --------------------------------------------------------------------- state

    @_guard(pb.UpgradeResourceState.Response)
    def UpgradeResourceState(self, request: Any, context: Any) -> pb.UpgradeResourceState.Response:
        ctx = self._context(request.type_name)
        if not request.raw_state.json:
            ctx.diags.error("doprovider cannot upgrade legacy flatmap state")
            return pb.UpgradeResourceState.Response(diagnostics=ctx.diags.to_pb())
        raw = json.loads(request.raw_state.json)
        # Schema versions never change here; normalising fills attributes added since.
        upgraded = conform(ctx.schema.block, raw)
        return pb.UpgradeResourceState.Response(upgraded_state=encode(upgraded))

    @_guard(pb.ReadResource.Response)
    def ReadResource(self, request: Any, context: Any) -> pb.ReadResource.Response:
        ctx = self._context(request.type_name)
        current = decode(request.current_state)
        new = resource_for(request.type_name).read(ctx, current) if current else None
        return pb.ReadResource.Response(
            new_state=encode(new), diagnostics=ctx.diags.to_pb(), private=request.private
        )

    @_guard(pb.PlanResourceChange.Response)
    def PlanResourceChange(self, request: Any, context: Any) -> pb.PlanResourceChange.Response:
        ctx = self._context(request.type_name)
        prior = decode(request.prior_state)
        proposed = decode(request.proposed_new_state)
        config = decode(request.config) or {}
        if proposed is None:  # destroy (only sent with plan_destroy, kept for safety)
            return pb.PlanResourceChange.Response(planned_state=encode(None))
        planned, replace = resource_for(request.type_name).plan(ctx, prior, proposed, config)
        return pb.PlanResourceChange.Response(
            planned_state=encode(planned),
            requires_replace=[attribute_path(p) for p in replace],
            planned_private=request.prior_private,
            diagnostics=ctx.diags.to_pb(),
            legacy_type_system=True,
        )

    @_guard(pb.ApplyResourceChange.Response)
    def ApplyResourceChange(self, request: Any, context: Any) -> pb.ApplyResourceChange.Response:
        ctx = self._context(request.type_name)
        ctx.config = decode(request.config)
        res = resource_for(request.type_name)
        prior = decode(request.prior_state)
        planned = decode(request.planned_state)
        new: dict[str, Any] | None
        if planned is None:
            new = res.delete(ctx, prior)
        elif prior is None:
            new = res.create(ctx, planned)
        else:
            new = res.update(ctx, prior, planned)
        return pb.ApplyResourceChange.Response(
            new_state=encode(new),
            private=request.planned_private,
            diagnostics=ctx.diags.to_pb(),
            legacy_type_system=True,
        )

    @_guard(pb.ImportResourceState.Response)
    def ImportResourceState(self, request: Any, context: Any) -> pb.ImportResourceState.Response:
        ctx = self._context(request.type_name)
        state = resource_for(request.type_name).import_(ctx, request.id)
        imported = (
            [
                pb.ImportResourceState.ImportedResource(
                    type_name=request.type_name, state=encode(state)
                )
            ]
            if state is not None
            else []
        )
        return pb.ImportResourceState.Response(
            imported_resources=imported, diagnostics=ctx.diags.to_pb()
        )

    @_guard(pb.MoveResourceState.Response)
    def MoveResourceState(self, request: Any, context: Any) -> pb.MoveResourceState.Response:
        diags = Diagnostics()
        diags.error("doprovider does not support moving state between resource types")
        return pb.MoveResourceState.Response(diagnostics=diags.to_pb())

    @_guard(pb.ReadDataSource.Response)
    def ReadDataSource(self, request: Any, context: Any) -> pb.ReadDataSource.Response:
        ctx = self._context(request.type_name, data_source=True)
        config = decode(request.config) or {}
        state = data_source_for(request.type_name).read(ctx, config)
        if state is None and not ctx.diags.has_errors():
            ctx.diags.error(f"{request.type_name}: nothing found")
        if state is not None:
            state = resolve_unknowns(ctx.schema.block, state)
        return pb.ReadDataSource.Response(state=encode(state), diagnostics=ctx.diags.to_pb())

    # ------------------------------------------------------------------ lifecycle

    def StopProvider(self, request: Any, context: Any) -> pb.StopProvider.Response:
        # Terraform sends this on ^C to cancel in-flight calls; ours finish quickly, and
        # the process itself exits when go-plugin's controller asks it to (server.py).
        return pb.StopProvider.Response()
