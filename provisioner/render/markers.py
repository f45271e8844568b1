"""Late-bound values in user-data: the API address and bootstrap secrets.

The floating IP exists only once Terraform creates it, and secrets must never be written to
the rendered files. Templates therefore emit markers such as ``@@provision:api_endpoint@@``;
the rendered text is then cut into literal segments and references, which Terraform joins
back together at apply time. No template language is involved in that join, so nothing in a
rendered file is ever interpreted by Terraform.
"""

from __future__ import annotations

import re

from provisioner.errors import RenderError
from provisioner.userdata import Segment as Segment
from provisioner.userdata import join as join

# What Terraform itself knows once it has created the resources: the API address and the
# environment's VPC (for the cloud controller manager's DO_CLUSTER_VPC_ID).
RESOURCE_VALUES = ("api_endpoint", "vpc_id")
# Where the first control-plane node finds the etcd snapshot it restores before `kubeadm
# init` (backup/restore_copy.py); empty except during `provision restore`.
RESTORE_VALUES = ("restore_url", "restore_key", "restore_sha256")
# What bootstrap_secrets must carry, from the work folder, never written to rendered files.
# The shared control-plane keys (bootstrap/pki.py SHARED_MARKERS) go to the first node only.
SECRET_VALUES = ("bootstrap_token", "certificate_key", "ca_cert_hash", "ca_crt_b64",
                 "ca_key_b64", "failover_token", "sa_key_b64", "sa_pub_b64",
                 "front_proxy_ca_crt_b64", "front_proxy_ca_key_b64", "etcd_ca_crt_b64",
                 "etcd_ca_key_b64", *RESTORE_VALUES)
# Every value Terraform may splice in.
LATE_VALUES = RESOURCE_VALUES + SECRET_VALUES

_MARKER = re.compile(r"@@provision:([a-z0-9_]+)@@")


def marker(name: str) -> str:
    """The placeholder text for a late-bound value."""
    if name not in LATE_VALUES:
        raise RenderError(f"template asks for unknown late value {name!r}")
    return f"@@provision:{name}@@"


def segments(text: str) -> list[Segment]:
    """Cut rendered text into ``{"text": ...}`` and ``{"ref": ...}`` segments, in order."""
    result: list[Segment] = []
    position = 0
    for match in _MARKER.finditer(text):
        if match.group(1) not in LATE_VALUES:
            raise RenderError(f"unknown marker {match.group(0)!r} in rendered user-data")
        if match.start() > position:
            result.append({"text": text[position:match.start()]})
        result.append({"ref": match.group(1)})
        position = match.end()
    if position < len(text):
        result.append({"text": text[position:]})
    return result


def has_markers(text: str) -> bool:
    """Whether ``text`` holds anything that looks like a marker (a file that does must stay
    as written in the user-data, never compressed or archived)."""
    return "@@provision:" in text
