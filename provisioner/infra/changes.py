"""A saved plan as people review it: what is created, changed, replaced or destroyed."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# How each resource type is called in messages; types not listed are internal plumbing.
NOUNS = {
    "digitalocean_droplet": "droplet",
    "digitalocean_vpc": "VPC",
    "digitalocean_firewall": "firewall",
    "digitalocean_reserved_ip": "floating IP",
    "digitalocean_reserved_ip_assignment": "floating IP assignment",
    "digitalocean_loadbalancer": "load balancer",
    "digitalocean_tag": "tag",
    "digitalocean_project_resources": "project assignment",
    "terraform_data": "node configuration marker",
}
CONTROL_PLANE = "digitalocean_droplet.controllers"


@dataclass(frozen=True)
class Change:
    """One resource's planned change."""

    address: str
    type: str
    action: str  # create, update, delete, replace, read, no-op
    name: str
    attributes: tuple[str, ...] = ()

    @property
    def noun(self) -> str:
        """Human name of the resource type."""
        return NOUNS.get(self.type, self.type)

    @property
    def control_plane(self) -> bool:
        """Whether this is a control-plane droplet (an etcd member)."""
        return self.address.startswith(CONTROL_PLANE + "[")


@dataclass(frozen=True)
class InfraPlan:
    """Every change of a plan, plus counts."""

    changes: tuple[Change, ...]

    @property
    def pending(self) -> tuple[Change, ...]:
        """The changes that do something."""
        return tuple(c for c in self.changes if c.action not in ("no-op", "read"))

    def count(self, action: str) -> int:
        """How many changes of one action."""
        return sum(1 for c in self.pending if c.action == action)

    def summary(self) -> dict[str, int]:
        """Counts by action, as Terraform's summary line gives them."""
        return {"create": self.count("create"), "update": self.count("update"),
                "replace": self.count("replace"), "delete": self.count("delete")}

    def as_json(self) -> dict[str, Any]:
        """The machine-readable summary ``--output json`` prints."""
        return {"summary": self.summary(), "changes_pending": bool(self.pending),
                "changes": [{"address": c.address, "type": c.type, "action": c.action,
                             "name": c.name, "attributes": list(c.attributes)}
                            for c in self.pending]}


def _action(actions: list[str]) -> str:
    if actions == ["no-op"] or not actions:
        return "no-op"
    if "delete" in actions and "create" in actions:
        return "replace"
    return actions[0]


def _changed(before: Any, after: Any) -> tuple[str, ...]:
    """Attributes whose known values differ (values computed later are not news)."""
    if not isinstance(before, dict) or not isinstance(after, dict):
        return ()
    return tuple(k for k in sorted(set(before) & set(after)) if before[k] != after[k])


def parse_plan(document: dict[str, Any]) -> InfraPlan:
    """Read ``terraform show -json PLANFILE``."""
    changes = []
    for rc in document.get("resource_changes", []):
        if rc.get("mode") != "managed":
            continue
        change = rc.get("change", {})
        before, after = change.get("before") or {}, change.get("after") or {}
        name = str(after.get("name") or before.get("name") or rc.get("index") or rc["name"])
        action = _action(list(change.get("actions", [])))
        attributes = _changed(before, after) if action in (
            "update", "replace") else ()
        changes.append(Change(rc["address"], rc["type"], action, name, attributes))
    return InfraPlan(tuple(changes))


_EVENT_ACTIONS = {"create": "create", "update": "update", "delete": "delete",
                  "replace": "replace", "read": "read", "noop": "no-op", "move": "no-op",
                  "remove": "delete", "import": "no-op"}


def plan_from_events(events: list[dict[str, Any]], names: dict[str, str]) -> InfraPlan:
    """The plan as ``plan -json`` streamed it (no extra Terraform run, no attribute detail)."""
    changes = []
    for event in events:
        if event.get("type") != "planned_change":
            continue
        change = event.get("change", {})
        resource = change.get("resource", {})
        address = resource.get("addr", "")
        if address.startswith("data.") or resource.get("module"):
            continue
        changes.append(Change(address, resource.get("resource_type", ""),
                              _EVENT_ACTIONS.get(change.get("action", ""), "update"),
                              names.get(address, address)))
    return InfraPlan(tuple(changes))


def names_by_address(plan: InfraPlan) -> dict[str, str]:
    """Resource address -> cloud name, for progress messages."""
    return {c.address: c.name for c in plan.changes}
