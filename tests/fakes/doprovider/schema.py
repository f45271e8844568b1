"""Load the real DigitalOcean provider schema dump and turn it into tfplugin6 messages.

The dump is the output of `terraform providers schema -json` for the real provider
(see tests/data/README.md). Serving it verbatim is what makes this fake useful: Terraform
core does all the schema checks of `terraform validate` (unknown attributes, missing
required ones, type mismatches, unknown resource types) against exactly the shapes the
real provider declares, so a module that validates here validates against the real one.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tf.gen import tfplugin_pb2 as pb

PROVIDER_ADDRESS = "registry.terraform.io/digitalocean/digitalocean"
SCHEMA_FILE_NAME = "digitalocean-provider-schema-2.34.1.json"

# tests/fakes/doprovider/schema.py -> tests/data/<dump>
_DEFAULT_SCHEMA_PATH = Path(__file__).resolve().parents[2] / "data" / SCHEMA_FILE_NAME

CtyType = Any
"""A cty type in its JSON form: "string", ["list", "string"], ["object", {...}], ..."""


@dataclass(frozen=True)
class Attribute:
    """One attribute of a block, as declared by the provider."""

    name: str
    type: CtyType
    required: bool = False
    optional: bool = False
    computed: bool = False
    sensitive: bool = False
    deprecated: bool = False
    description: str = ""
    description_kind: str = "plain"


@dataclass(frozen=True)
class NestedBlock:
    """A nested block type (`nesting_mode` is single, list, set, map or group)."""

    name: str
    nesting: str
    block: Block
    min_items: int = 0
    max_items: int = 0


@dataclass(frozen=True)
class Block:
    """A configuration block: its attributes and nested block types."""

    attributes: dict[str, Attribute] = field(default_factory=dict)
    block_types: dict[str, NestedBlock] = field(default_factory=dict)
    description: str = ""
    description_kind: str = "plain"
    deprecated: bool = False


@dataclass(frozen=True)
class TypeSchema:
    """The schema of one resource type, data source or of the provider itself."""

    version: int
    block: Block


@dataclass(frozen=True)
class ProviderSchema:
    """Everything one provider declares."""

    provider: TypeSchema
    resources: dict[str, TypeSchema]
    data_sources: dict[str, TypeSchema]


def _parse_block(raw: dict[str, Any]) -> Block:
    attrs = {
        name: Attribute(
            name=name,
            type=a["type"],
            required=bool(a.get("required")),
            optional=bool(a.get("optional")),
            computed=bool(a.get("computed")),
            sensitive=bool(a.get("sensitive")),
            deprecated=bool(a.get("deprecated")),
            description=a.get("description", ""),
            description_kind=a.get("description_kind", "plain"),
        )
        for name, a in raw.get("attributes", {}).items()
    }
    blocks = {
        name: NestedBlock(
            name=name,
            nesting=b["nesting_mode"],
            block=_parse_block(b["block"]),
            min_items=int(b.get("min_items", 0)),
            max_items=int(b.get("max_items", 0)),
        )
        for name, b in raw.get("block_types", {}).items()
    }
    return Block(
        attributes=attrs,
        block_types=blocks,
        description=raw.get("description", ""),
        description_kind=raw.get("description_kind", "plain"),
        deprecated=bool(raw.get("deprecated")),
    )


def _parse_type_schema(raw: dict[str, Any]) -> TypeSchema:
    return TypeSchema(version=int(raw.get("version", 0)), block=_parse_block(raw["block"]))


def schema_path() -> Path:
    """Where the dump is read from; `DO_SIM_SCHEMA` overrides the checked-in copy."""
    override = os.environ.get("DO_SIM_SCHEMA")
    return Path(override) if override else _DEFAULT_SCHEMA_PATH


@functools.cache
def load_schema(path: Path | None = None) -> ProviderSchema:
    """Parse the `terraform providers schema -json` dump (cached per process)."""
    doc = json.loads((path or schema_path()).read_text(encoding="utf-8"))
    raw = doc["provider_schemas"][PROVIDER_ADDRESS]
    return ProviderSchema(
        provider=_parse_type_schema(raw["provider"]),
        resources={k: _parse_type_schema(v) for k, v in raw.get("resource_schemas", {}).items()},
        data_sources={
            k: _parse_type_schema(v) for k, v in raw.get("data_source_schemas", {}).items()
        },
    )


# ----------------------------------------------------------------- protobuf conversion

_NESTING = {
    "single": pb.Schema.NestedBlock.SINGLE,
    "list": pb.Schema.NestedBlock.LIST,
    "set": pb.Schema.NestedBlock.SET,
    "map": pb.Schema.NestedBlock.MAP,
    "group": pb.Schema.NestedBlock.GROUP,
}
_KIND = {"plain": pb.PLAIN, "markdown": pb.MARKDOWN}


def _attribute_pb(a: Attribute) -> pb.Schema.Attribute:
    return pb.Schema.Attribute(
        name=a.name,
        # The wire format wants the cty type as compact JSON bytes, exactly as in the dump.
        type=json.dumps(a.type, separators=(",", ":")).encode(),
        description=a.description,
        required=a.required,
        optional=a.optional,
        computed=a.computed,
        sensitive=a.sensitive,
        deprecated=a.deprecated,
        description_kind=_KIND.get(a.description_kind, pb.PLAIN),
    )


def block_pb(block: Block) -> pb.Schema.Block:
    """Convert a parsed block to its tfplugin6 message."""
    return pb.Schema.Block(
        attributes=[_attribute_pb(a) for a in block.attributes.values()],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=nb.name,
                block=block_pb(nb.block),
                nesting=_NESTING[nb.nesting],
                min_items=nb.min_items,
                max_items=nb.max_items,
            )
            for nb in block.block_types.values()
        ],
        description=block.description,
        description_kind=_KIND.get(block.description_kind, pb.PLAIN),
        deprecated=block.deprecated,
    )


def type_schema_pb(ts: TypeSchema) -> pb.Schema:
    """Convert a parsed type schema to its tfplugin6 message."""
    return pb.Schema(version=ts.version, block=block_pb(ts.block))
