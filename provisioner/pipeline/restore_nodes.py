"""The Nodes of a restored cluster: each must be its current droplet's.

The restored etcd holds the Node objects as the snapshot had them, Ready, each with the
``spec.providerID`` (``digitalocean://<droplet id>``) of the droplet it was then. The first
control-plane node's bootstrap deletes every control-plane Node whose providerID is not
its own before it lets the others join (templates/scripts/bootstrap.sh.j2 restore_nodes;
README "What the first control-plane node does in a restore"), so a control-plane Node
counts only once it carries its new droplet's ID: a stale one, Ready from the snapshot,
would otherwise pass the wait before its droplet has joined.

Workers keep their droplets, and their Nodes come back with them, except a worker created
after the snapshot (a scale-up, a rolling replacement): its Node is missing (or carries the
ID of the droplet it replaced), and a kubelet registers its Node only once, when it starts.
Those are named, with the way back, and not waited for.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from provisioner.bootstrap.readiness import Report
from provisioner.errors import ProvisionError

INTERVAL = 2.0
# Recovering a worker the restored cluster does not know: Terraform creates the missing
# droplet again under the same key, and `up` gives it join credentials of the restored
# cluster (a scale-up of one); its kubelet registers anew.
RECOVER = ("delete its droplet (`doctl compute droplet delete {names}` or the control "
           "panel), then run `provision up {config}`: it creates the droplet again, which "
           "joins the restored cluster")


def provider_id(droplet_id: object) -> str:
    """The providerID the kubelet on droplet ``droplet_id`` registers with."""
    return f"digitalocean://{droplet_id}"


@dataclass(frozen=True)
class Seen:
    """One Node as the API reports it (``found`` false: there is none)."""

    name: str
    found: bool
    provider: str
    ready: bool

    def why_not(self, wanted: str) -> str | None:
        """Why this Node is not yet its droplet's Ready Node (None: it is)."""
        if not self.found:
            return f"{self.name}: no Node yet"
        if self.provider != wanted:
            return (f"{self.name}: its Node has providerID {self.provider or '(none)'} (a "
                    f"replaced droplet's, restored from the snapshot), not {wanted}")
        if not self.ready:
            return f"{self.name}: not Ready"
        return None


def nodes(api: Any, names: list[str]) -> dict[str, Seen]:
    """The Nodes of ``names`` (one list call)."""
    from provisioner.kube import Kube

    listed = Kube(api, timeout=15).request("GET", "/api/v1/nodes", verb="list nodes")
    by_name = {str((n.get("metadata") or {}).get("name")): n
               for n in listed.get("items") or [] if isinstance(n, dict)}
    seen = {}
    for name in names:
        node = by_name.get(name)
        if node is None:
            seen[name] = Seen(name, False, "", False)
            continue
        conditions = (node.get("status") or {}).get("conditions") or []
        ready = any(c.get("type") == "Ready" and c.get("status") == "True"
                    for c in conditions if isinstance(c, dict))
        seen[name] = Seen(name, True, str((node.get("spec") or {}).get("providerID") or ""),
                          ready)
    return seen


def wait_current(api: Any, wanted: dict[str, str], deadline: float, say: Report,
                 what: str = "nodes") -> None:
    """Until every Node of ``wanted`` (name -> providerID) is Ready with that providerID;
    at ``deadline`` exit 1 naming each that is not (a stale one by its old ID)."""
    from provisioner.kube import KubeError

    names = sorted(wanted)
    last: tuple[str, ...] | None = None
    while True:
        try:
            seen = nodes(api, names)
        except KubeError as e:  # a failover or restart of the API is not an answer
            waiting: tuple[str, ...] = (f"the nodes could not be listed: {e}",)
        else:
            waiting = tuple(why for name in names
                            if (why := seen[name].why_not(wanted[name])) is not None)
        if not waiting:
            say(f"{len(names)}/{len(names)} {what} Ready, each its current droplet's")
            return
        if waiting != last:
            say(f"{len(names) - len(waiting)}/{len(names)} {what} Ready; waiting for "
                + "; ".join(waiting[:5]))
            last = waiting
        if time.monotonic() >= deadline:
            raise ProvisionError(
                f"{len(waiting)} of {len(names)} {what} did not come back:\n"
                + "\n".join(f"  {why}" for why in waiting)
                + "\n  A control-plane Node with a replaced droplet's providerID is one the "
                "first control-plane node's bootstrap did not delete (its cloud-init log "
                "says why); run the same `provision restore` command again to keep waiting")
        time.sleep(INTERVAL)


def unknown_workers(api: Any, wanted: dict[str, str]) -> dict[str, str]:
    """The workers of ``wanted`` (name -> providerID) the restored cluster has no Node of
    theirs for: name -> why. Their kubelets registered once, with the cluster before."""
    seen = nodes(api, sorted(wanted))
    lost = {}
    for name, node in seen.items():
        if not node.found:
            lost[name] = "no Node in the snapshot (created after it)"
        elif node.provider != wanted[name]:
            lost[name] = (f"its Node has providerID {node.provider or '(none)'} of the droplet "
                          "it replaced")
    return lost


def recovery(names: list[str], config: object) -> str:
    """How to bring back workers the restored cluster does not know."""
    return RECOVER.format(names=" ".join(names), config=config)


def workers_created_after(env: Any, token: str, taken_at: str) -> list[str]:
    """The worker droplets DigitalOcean says were created at or after ``taken_at`` (the
    snapshot's RFC 3339 time): the snapshot has no Node of theirs. Empty when the time is
    unknown (then the Nodes tell, once the restored API answers)."""
    from provisioner.cloud.inventory import inventory

    if not taken_at:
        return []
    droplets = inventory(env, token)["droplets"]["workers"]
    # RFC 3339 UTC with seconds, as both write it: text order is time order. The same
    # second counts as after: which came first is not known.
    return sorted(str(d["name"]) for d in droplets
                  if str(d.get("created_at") or "") >= taken_at)
