"""Resource and data source behaviours, by type name.

Types without a dedicated class get the generic, schema-driven behaviour of
`base.Resource` / `base.DataSource`, so every type of the real schema can be planned and
applied; the dedicated classes compute what DigitalOcean would (ids, addresses, URNs).
"""

from __future__ import annotations

from .base import DataSource, Resource

_RESOURCES: dict[str, type[Resource]] = {}
_DATA_SOURCES: dict[str, type[DataSource]] = {}


def resource_for(type_name: str) -> Resource:
    """The behaviour of a resource type (generic when not simulated specifically)."""
    return _RESOURCES.get(type_name, Resource)(type_name)


def data_source_for(type_name: str) -> DataSource:
    """The behaviour of a data source (generic lookup when not simulated specifically)."""
    return _DATA_SOURCES.get(type_name, DataSource)(type_name)
