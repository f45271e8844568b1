"""Control-plane droplets an apply replaces or deletes on a running cluster: one at a time.

Each control-plane droplet holds an etcd member, and etcd stays available only while a
majority of its members answer: a cluster of n tolerates (n-1)/2 down, one of three.
Terraform replaces a controller by destroying it and then creating the new one (the module
gives controllers no create_before_destroy), so every controller a plan replaces or deletes
is a member down at once. More than one is refused before anything changes. For exactly
one, its member is removed (and its Node deleted) before the apply, while every other
member answers (etcd_members.remove_leaving); otherwise etcd would count the dead member
and refuse the replacement's join.

A single controller can be picked with ``provision up --replace NAME`` (Terraform's
``-replace``): nothing in the environment file replaces one controller alone (image and
user_data changes are ignored for controllers, the region moves them all).
"""

from __future__ import annotations

from collections.abc import Sequence

from provisioner.bootstrap.readiness import Report
from provisioner.errors import UsageError
from provisioner.infra.changes import CONTROL_PLANE, Change, InfraPlan
from provisioner.pipeline import cluster_stage
from provisioner.pipeline.infra_stage import PolicyError
from provisioner.pipeline.prepare import Prepared
from provisioner.render.names import controller_names

LEAVING = ("replace", "delete")


def addresses(prepared: Prepared, names: Sequence[str]) -> tuple[str, ...]:
    """The Terraform addresses of the control-plane droplets ``--replace`` names."""
    controllers = controller_names(prepared.env)
    found = []
    for name in names:
        if name not in controllers:
            raise UsageError(f"--replace {name}: not a control-plane droplet of "
                             f"{prepared.env.name} (those are {', '.join(controllers)})")
        found.append(f"{CONTROL_PLANE}[{controllers.index(name)}]")
    if found and len(controllers) == 1 and initialised(prepared, None):
        # No other member holds etcd's data: the new droplet would `kubeadm init` an empty
        # cluster (terraform/controllers.tf: a lone control plane always initialises).
        raise PolicyError(f"--replace {controllers[0]}: it is the only control-plane node, "
                          "so the cluster's etcd (every object in it) would be lost and "
                          "the new droplet would start an empty cluster; nothing was "
                          "changed. Grow control_plane.count to 3 first, or rebuild it "
                          "from a snapshot: `provision backup CONFIG`, then `provision "
                          "restore CONFIG --snapshot latest` (README: Restoring from a "
                          "snapshot)")
    return tuple(dict.fromkeys(found))


def leaving(plan: InfraPlan) -> list[Change]:
    """The control-plane droplets the plan replaces or deletes."""
    return [c for c in plan.pending if c.control_plane and c.action in LEAVING]


def initialised(prepared: Prepared, running: object | None) -> bool:
    """Whether the environment's cluster exists (answering now, or reached before)."""
    return running is not None or cluster_stage.kubeconfig_path(prepared).is_file()


def refuse_several(plan: InfraPlan, prepared: Prepared, running: object | None) -> None:
    """Refuse (exit 3, nothing changed) a plan that takes down more than one etcd member
    of a running cluster, whatever --allow-control-plane-changes says."""
    going = leaving(plan)
    if len(going) < 2 or not initialised(prepared, running):
        return
    names = ", ".join(f"{c.name} ({c.action})" for c in going)
    count = len(controller_names(prepared.env))
    raise PolicyError(
        f"this plan replaces or deletes {len(going)} control-plane droplets at once: "
        f"{names}. Each holds an etcd member and Terraform destroys them before their "
        f"replacements exist; etcd with {count} members survives only {(count - 1) // 2} "
        "down. Change them one at a time: `provision up CONFIG --replace NAME` for one "
        "node, then the next once it is back; a change that moves every control-plane "
        "droplet (the region) cannot be applied to a running cluster. Nothing was applied")


def before_apply(prepared: Prepared, plan: InfraPlan, say: Report) -> None:
    """Remove the etcd member and Node of the one control-plane droplet the plan replaces
    or deletes, once every other member answers (refused otherwise, nothing changed)."""
    going = leaving(plan)
    path = cluster_stage.kubeconfig_path(prepared)
    # A single control plane has no other member to keep: its replacement starts anew.
    if len(going) != 1 or not path.is_file() or len(controller_names(prepared.env)) < 2:
        return
    change = going[0]
    from provisioner.cluster import etcd_members

    api = cluster_stage.api_client(path)
    what = "replaced" if change.action == "replace" else "deleted"
    if etcd_members.remove_leaving(api, change.name, what, say) is None:
        say(f"{change.name} holds no etcd member; nothing to remove before it is {what}")
