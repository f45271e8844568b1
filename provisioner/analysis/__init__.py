"""Topology analysis behind ``provision check``: single points of failure and availability.

Reads the Environment model only (no rendering, no cloud, no cluster).
"""

from provisioner.analysis.availability import (
    DEFAULT_P,
    Figures,
    api_availability,
    app_availability,
    format_report,
    report,
)
from provisioner.analysis.spof import Finding, findings

__all__ = [
    "DEFAULT_P",
    "Figures",
    "Finding",
    "api_availability",
    "app_availability",
    "findings",
    "format_report",
    "report",
]
