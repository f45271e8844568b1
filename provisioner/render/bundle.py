"""Files a node unpacks itself: one deterministic gzip-compressed tar, base64 for user-data.

The first control-plane node's user-data (CA and shared keys, add-on kustomizations, four
agents) must stay under DigitalOcean's 64 KiB. Compressed one by one (cloud-init's
``encoding: gz+b64``) each agent pays for its own dictionary; in one gzip stream they share
it (the agents repeat each other's imports, JSON and subprocess idioms) and the YAML of the
add-on kustomizations shrinks with them. cloud-init writes the archive (``encoding: b64``)
and the bootstrap script unpacks it (``unpack_bundle``) before it installs anything.

The bytes are the same on every render: members in the order given, owner root (0/0),
``mtime`` 0 in the tar headers (the node stamps extraction time: ``--touch``) and in the
gzip header.
"""

from __future__ import annotations

import base64
import gzip
import io
import tarfile
from dataclasses import dataclass

from provisioner.errors import RenderError
from provisioner.render.markers import has_markers


@dataclass(frozen=True)
class Member:
    """One file of the archive: where it lands on the node, its mode and text."""

    path: str
    mode: int
    text: str


def packed(members: list[Member]) -> str:
    """The members as one gzip-compressed tar, in base64 (cloud-init ``encoding: b64``).

    Only text without late-bound markers may be packed: Terraform splices values into the
    user-data as written, and a marker inside the archive would stay a marker.
    """
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for member in members:
            if has_markers(member.text):
                raise RenderError(f"{member.path} has late-bound values and cannot be packed")
            if not member.path.startswith("/"):
                raise RenderError(f"{member.path}: bundle paths are absolute")
            data = member.text.encode("utf-8")
            info = tarfile.TarInfo(member.path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), member.mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            try:
                tar.addfile(info, io.BytesIO(data))
            except ValueError as e:  # USTAR: a name over 100 (path over 255) characters
                raise RenderError(f"{member.path} cannot be packed for the node: {e}; use "
                                  "shorter names (an add-on's, a pool's)") from None
    return base64.b64encode(gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)).decode(
        "ascii")
