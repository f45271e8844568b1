"""Failure and latency injection, driven by environment variables.

`DO_SIM_FAIL` is a comma-separated list of `TYPE:NAME[:OP]` rules:

* TYPE is a resource type (`digitalocean_droplet`) or a glob (`*`);
* NAME is matched (shell glob) against the resource's `name` attribute; resources without
  a name (reserved IPs, assignments) are matched by `id`, `ip_address` or `droplet_id`;
* OP is `create` (default), `update`, `delete`, `read` or `*`.

Example: `DO_SIM_FAIL=digitalocean_droplet:prod-cp-2` makes creating the droplet named
prod-cp-2 fail with an API-style error diagnostic naming it.

`DO_SIM_LATENCY_MS` (integer) sleeps that long in every create (and half of it in
every delete), outside the state lock, so parallel creates overlap like real API calls.
`DO_SIM_LATENCY_MS_BY_TYPE` overrides it per resource type: `TYPE=MS` or `TYPE=MIN-MAX`
(a spread, each resource getting a fixed point of it from a hash of its name), comma
separated, e.g. `digitalocean_droplet=30000-60000,digitalocean_vpc=2000`. Latencies are
simulated time: the sleep is divided by `DO_SIM_TIME_SCALE` (ratelimit.py; default 1).
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import time
from dataclasses import dataclass
from typing import Any

from .ratelimit import time_scale

FAIL_ENV = "DO_SIM_FAIL"
LATENCY_ENV = "DO_SIM_LATENCY_MS"
LATENCY_BY_TYPE_ENV = "DO_SIM_LATENCY_MS_BY_TYPE"
_OPS = ("create", "update", "delete", "read")


@dataclass(frozen=True)
class Rule:
    """One parsed `TYPE:NAME[:OP]` rule."""

    type_glob: str
    name_glob: str
    op: str = "create"

    def matches(self, type_name: str, op: str, labels: list[str]) -> bool:
        """Does this rule fire for `op` on a resource of `type_name` with these labels?"""
        if self.op not in ("*", op):
            return False
        if not fnmatch.fnmatchcase(type_name, self.type_glob):
            return False
        return any(fnmatch.fnmatchcase(label, self.name_glob) for label in labels)


def parse_rules(text: str) -> list[Rule]:
    """Parse the `DO_SIM_FAIL` syntax; malformed entries raise ValueError (loudly)."""
    rules: list[Rule] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        parts = item.split(":")
        if len(parts) == 2:
            rules.append(Rule(parts[0], parts[1]))
        elif len(parts) == 3 and parts[2] in (*_OPS, "*"):
            rules.append(Rule(parts[0], parts[1], parts[2]))
        else:
            raise ValueError(f"{FAIL_ENV}: cannot parse {item!r}; expected TYPE:NAME[:OP]")
    return rules


def labels_of(state: dict[str, Any]) -> list[str]:
    """The strings a rule's NAME glob is matched against, for one resource object."""
    keys = ("name", "id", "ip_address", "droplet_id")
    return [str(state[k]) for k in keys if isinstance(state.get(k), str | int)]


def injected_failure(type_name: str, op: str, state: dict[str, Any]) -> str | None:
    """The label that triggered an injected failure, or None if the call may proceed."""
    rules = parse_rules(os.environ.get(FAIL_ENV, ""))
    labels = labels_of(state)
    for rule in rules:
        if rule.matches(type_name, op, labels):
            return labels[0] if labels else type_name
    return None


def latency_seconds(type_name: str = "", name: str = "") -> float:
    """The configured create latency of one resource, simulated seconds (0 when unset or
    unparsable)."""
    for item in os.environ.get(LATENCY_BY_TYPE_ENV, "").split(","):
        kind, _, value = item.strip().partition("=")
        if kind != type_name or not value:
            continue
        low, _, high = value.partition("-")
        try:
            first, last = int(low), int(high or low)
        except ValueError:
            break
        spread = int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % (last - first + 1)
        return max(0, first + spread) / 1000.0
    try:
        return max(0, int(os.environ.get(LATENCY_ENV, "0"))) / 1000.0
    except ValueError:
        return 0.0


def simulate_latency(op: str, type_name: str = "", name: str = "") -> None:
    """Sleep like an API call that takes a while (creates are the slow ones)."""
    delay = latency_seconds(type_name, name)
    if op == "delete":
        delay /= 2
    elif op != "create":
        return
    if delay:
        time.sleep(delay / time_scale())
