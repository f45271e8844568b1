"""Terraform plans as people read them."""

from __future__ import annotations

from provisioner.infra.changes import InfraPlan

_SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


def format_infra_plan(plan: InfraPlan, env_name: str) -> str:
    """One line per change, then the counts."""
    if not plan.pending:
        return f"No changes: the infrastructure of {env_name} matches its environment file.\n"
    lines = [f"Infrastructure changes for {env_name}:"]
    order = {"delete": 0, "replace": 1, "update": 2, "create": 3}
    for change in sorted(plan.pending, key=lambda c: (order.get(c.action, 9), c.address)):
        extra = f": {', '.join(change.attributes)}" if change.attributes else ""
        lines.append(f"  {_SYMBOLS.get(change.action, change.action):>3} {change.noun} "
                     f"{change.name}{extra}  ({change.address})")
    s = plan.summary()
    lines.append(f"Plan: {s['create']} to create, {s['update']} to change, {s['replace']} to "
                 f"replace, {s['delete']} to destroy.")
    return "\n".join(lines) + "\n"
