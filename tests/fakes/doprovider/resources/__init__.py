"""Resource and data source behaviours, by type name.

Types without a dedicated class get the generic, schema-driven behaviour of
`base.Resource` / `base.DataSource`, so every type of the real schema can be planned and
applied; the dedicated classes compute what DigitalOcean would (ids, addresses, URNs).
"""

from __future__ import annotations

from .base import DataSource, Resource
from .compute import Droplet, SshKey, Tag
from .images import DropletSnapshot
from .network import (
    Firewall,
    FloatingIp,
    FloatingIpAssignment,
    LoadBalancer,
    ReservedIp,
    ReservedIpAssignment,
    Vpc,
)
from .projects import Project, ProjectData, ProjectResources

_RESOURCES: dict[str, type[Resource]] = {
    cls.type_name: cls
    for cls in (
        Droplet,
        SshKey,
        Tag,
        Vpc,
        Firewall,
        ReservedIp,
        FloatingIp,
        ReservedIpAssignment,
        FloatingIpAssignment,
        LoadBalancer,
        Project,
        ProjectResources,
    )
}
_DATA_SOURCES: dict[str, type[DataSource]] = {
    cls.type_name: cls for cls in (ProjectData, DropletSnapshot)
}


def resource_for(type_name: str) -> Resource:
    """The behaviour of a resource type (generic when not simulated specifically)."""
    return _RESOURCES.get(type_name, Resource)(type_name)


def data_source_for(type_name: str) -> DataSource:
    """The behaviour of a data source (generic lookup when not simulated specifically)."""
    return _DATA_SOURCES.get(type_name, DataSource)(type_name)
