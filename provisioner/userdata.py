"""User-data as segments: literal text and references to late values, joined as Terraform
joins them (``user_data = join("", [...])`` in terraform/controllers.tf and workers.tf).

Kept apart from :mod:`provisioner.render` and free of third-party imports because the
autoscaler service joins a pool's segments itself, in a pod that has only the standard
library, grpcio and protobuf (render/autoscaler_code.py); render/markers.py cuts them.
"""

from __future__ import annotations

Segment = dict[str, str]


def join(parts: list[Segment], values: dict[str, str]) -> str:
    """What Terraform's ``join`` of the segments yields."""
    return "".join(p["text"] if "text" in p else values[p["ref"]] for p in parts)
