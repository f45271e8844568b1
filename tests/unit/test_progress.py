"""Progress lines from Terraform's -json hook events, on a terminal and in a CI log."""

from __future__ import annotations

import io
import re
from typing import Any

from provisioner.infra.changes import parse_plan
from provisioner.ui.progress import Progress


def hook(kind: str, addr: str, action: str, elapsed: float = 0) -> dict[str, Any]:
    rtype = addr.split(".")[0]
    return {"type": kind, "hook": {"resource": {"addr": addr, "resource_type": rtype},
                                   "action": action, "elapsed_seconds": elapsed}}


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_name_the_droplet_and_the_time() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress({"digitalocean_droplet.controllers[0]": "prod-cp-1"}, stream=out,
                        live=False, clock=clock)
    progress(hook("apply_start", "digitalocean_droplet.controllers[0]", "create"))
    clock.now += 34
    progress(hook("apply_complete", "digitalocean_droplet.controllers[0]", "create", 34))
    progress(hook("apply_start", "digitalocean_vpc.network", "create"))
    progress(hook("apply_errored", "digitalocean_vpc.network", "create", 2))
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] creating droplet prod-cp-1\.\.\.", lines[0])
    assert lines[1].endswith("created droplet prod-cp-1 (34 s)")
    assert lines[3].endswith("failed creating VPC digitalocean_vpc.network after 2 s")
    assert progress.summary() == ("1 created, 0 changed, 0 replaced, 0 destroyed in 34 s; "
                                  "failed: VPC digitalocean_vpc.network")


def test_terminal_mode_redraws_a_status_line() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress({}, stream=out, live=True, clock=clock)
    progress(hook("apply_start", "digitalocean_droplet.workers[\"general-1\"]", "create"))
    clock.now += 75
    progress(hook("apply_progress", "digitalocean_droplet.workers[\"general-1\"]", "create", 75))
    text = out.getvalue()
    assert "\r\x1b[K  ... droplet digitalocean_droplet.workers[\"general-1\"] 1m 15s" in text
    progress.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_plan_parsing_names_actions_and_changed_attributes() -> None:
    document = {"resource_changes": [
        {"address": "digitalocean_droplet.controllers[0]", "mode": "managed",
         "type": "digitalocean_droplet", "name": "controllers", "index": 0,
         "change": {"actions": ["no-op"], "before": {"name": "prod-cp-1"},
                    "after": {"name": "prod-cp-1"}}},
        {"address": "digitalocean_droplet.workers[\"general-2\"]", "mode": "managed",
         "type": "digitalocean_droplet", "name": "workers", "index": "general-2",
         "change": {"actions": ["create", "delete"], "before": {"name": "prod-general-2",
                                                                "size": "s-2vcpu-4gb"},
                    "after": {"name": "prod-general-2", "size": "s-4vcpu-8gb"},
                    "after_unknown": {"id": True}}},
        {"address": "digitalocean_droplet.workers[\"general-3\"]", "mode": "managed",
         "type": "digitalocean_droplet", "name": "workers", "index": "general-3",
         "change": {"actions": ["delete"], "before": {"name": "prod-general-3"}, "after": None}},
        {"address": "data.digitalocean_project.this[0]", "mode": "data",
         "type": "digitalocean_project", "name": "this", "change": {"actions": ["read"]}},
    ]}
    plan = parse_plan(document)
    assert [(c.name, c.action) for c in plan.pending] == [("prod-general-2", "replace"),
                                                          ("prod-general-3", "delete")]
    assert plan.pending[0].attributes == ("size",)
    assert plan.summary() == {"create": 0, "update": 0, "replace": 1, "delete": 1}
    assert plan.changes[0].control_plane
