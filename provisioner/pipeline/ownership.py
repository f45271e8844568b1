"""A work folder's state against the account: who may create, destroy and sweep what.

Terraform only knows what its state holds. A work folder whose state is empty (a new
machine, ``git clean``, a CI runner without it) next to a live environment of the same name
would, unchecked, create a second floating IP and a second VPC, "create" the tags the live
droplets already carry, and later destroy those tags, which untags every live droplet (they
leave their firewalls). And a sweep with nothing to compare against would delete the live
environment. So:

* ``up`` whose plan creates the environment's identity (its tag and its VPC) refuses when
  the account already holds anything that provably belongs to the environment;
* ``destroy`` with an empty state deletes nothing it cannot explain: only what a destroy
  from this work folder left behind (recorded in ``leftovers.json``) may be swept;
* every sweep lists what it will delete and asks (``--yes`` answers for the user).
"""

from __future__ import annotations

import json
from collections.abc import Callable

from provisioner.bootstrap.readiness import Report
from provisioner.cloud import sweep as cloud_sweep
from provisioner.errors import ProvisionError
from provisioner.infra.changes import InfraPlan
from provisioner.pipeline import infra_stage
from provisioner.pipeline.prepare import Prepared
from provisioner.render.writer import write_file

ConfirmSweep = Callable[[list[str]], bool]

# Both are created first and held by every live environment: a plan that creates them
# comes from a state that holds nothing of the environment.
IDENTITY = ("digitalocean_tag.cluster", "digitalocean_vpc.network")


class OwnershipError(ProvisionError):
    """The state and the account disagree about who owns the environment; nothing changed."""


def _lines(found: cloud_sweep.Leftovers) -> str:
    return "\n".join(f"  {line}" for line in found.describe())


def _restore_hint(prepared: Prepared, creating: bool) -> str:
    env = prepared.env
    if env.state.backend == "local":
        where = (f"copy terraform.tfstate from where `provision up` last ran (that machine, a "
                 f"backup or a CI artefact) into {prepared.work.root / 'state'}/")
    else:
        key = env.state.key or f"{env.name}/terraform.tfstate"
        where = (f"check that state.bucket ({env.state.bucket}) and state.key ({key}) name "
                 "the state `provision up` wrote")
    hint = (f"If this work folder lost its state, restore it ({where}) and run the command "
            "again.")
    return hint + (" If that environment is not yours, give this one another name."
                   if creating else "")


def holds_identity(destroy_plan: InfraPlan) -> bool:
    """Whether a destroy plan deletes the environment's VPC, which only the state that
    created the environment can hold: a VPC's name is unique in the account, and the
    module creates it before anything else (and so destroys it last). A tag proves
    nothing: creating one that exists succeeds, so a second state may hold it too."""
    return any(c.address == IDENTITY[1] and c.action == "delete" for c in destroy_plan.pending)


def refuse_second_state(plan: InfraPlan, prepared: Prepared, token: str) -> None:
    """Before an apply: a state that holds nothing of the environment must find nothing."""
    creates = {c.address for c in plan.pending if c.action == "create"}
    if not all(address in creates for address in IDENTITY):
        return
    found = cloud_sweep.leftovers(prepared.env, token)
    # An image build's droplet is no node and holds no state: a second state needs none.
    found.image_builders.clear()
    if found.empty():
        return
    raise OwnershipError(
        f"refusing to create {prepared.env.name!r}: this work folder's Terraform state holds "
        "nothing of it, but the account already does:\n" + _lines(found) + "\nA second state "
        "would create a second floating IP and take over the environment's tags (its destroy "
        "would delete them, taking the live droplets out of their firewalls). Nothing was "
        "created. " + _restore_hint(prepared, creating=True))


def _record(prepared: Prepared) -> set[str]:
    path = prepared.work.root / "leftovers.json"
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {str(k) for k in value} if isinstance(value, list) else set()


def _remember(prepared: Prepared, found: cloud_sweep.Leftovers) -> None:
    path = prepared.work.root / "leftovers.json"
    if found.empty():
        path.unlink(missing_ok=True)
    else:
        write_file(path, json.dumps(sorted(found.keys()), indent=1) + "\n")


def recorded_floating_ip(prepared: Prepared, say: Report | None = None) -> str | None:
    """The floating IP the last apply recorded, if any; a damaged record must not stop a
    destroy that already happened, but the user hears that the address was not read."""
    recorded = infra_stage.infrastructure_file(prepared)
    if not recorded.is_file():
        return None
    value = infra_stage.recorded_outputs(prepared)
    if value is None:
        if say is not None:
            say(f"warning: {recorded} is not the JSON provision writes; looking for leftovers "
                "by tag and name only (a floating IP has neither: check the control panel)")
        return None
    ip = value.get("reserved_ip")
    return str(ip) if ip else None


def before_destroy(prepared: Prepared, token: str) -> frozenset[str]:
    """What is provably ours while our tag and droplets still exist to prove it with.

    Recorded in ``leftovers.json`` (with what an earlier, interrupted destroy recorded)
    before Terraform runs: once Terraform has deleted the tag, the untagged volumes and
    strays can be known only by these ids, and a run stopped half-way must not forget them.
    """
    known = _record(prepared)
    found = cloud_sweep.leftovers(prepared.env, token, recorded_floating_ip(prepared),
                                  frozenset(known))
    keys = frozenset(found.keys())
    if keys:
        write_file(prepared.work.root / "leftovers.json",
                   json.dumps(sorted(keys), indent=1) + "\n")
    return keys


def account_for_leftovers(prepared: Prepared, token: str, sweep: bool, confirm: ConfirmSweep,
                          say: Report, destroyed: bool, known: frozenset[str] = frozenset()
                          ) -> None:
    """After Terraform (``destroyed``) or with an empty state: report, or sweep on request."""
    recorded = set() if destroyed else _record(prepared)
    found = cloud_sweep.leftovers(prepared.env, token, recorded_floating_ip(prepared, say),
                                  known | recorded)
    for line in found.unproven:
        say(f"left alone (named like this environment's, but not provably its own): {line}")
    if destroyed:
        # What the outputs described is gone; a stale address must never match later.
        infra_stage.infrastructure_file(prepared).unlink(missing_ok=True)
        _remember(prepared, found)
    elif not found.empty():
        unexplained = found.keys() - recorded
        if unexplained:
            raise OwnershipError(
                f"refusing to destroy {prepared.env.name!r}: this work folder's Terraform state "
                "holds nothing of it, but the account holds these, which no destroy from this "
                "work folder left behind:\n" + _lines(found) + "\nNothing was deleted. "
                + _restore_hint(prepared, creating=False)
                + " `provision destroy` then destroys what the state holds and sweeps the rest.")
    if found.empty():
        _remember(prepared, found)
        say("nothing of the environment is left in the account")
        return
    state = "destroyed, but these are" if destroyed else "these are"
    if not sweep:
        raise ProvisionError(f"{state} still in the account (billed):\n" + _lines(found)
                             + "\nrun `provision destroy --sweep` to delete them")
    say(f"the sweep deletes these {len(found.describe())} resources of {prepared.env.name}:")
    for line in found.describe():
        say(f"  {line}")
    if not confirm(found.describe()):
        raise ProvisionError("not swept: the list was not confirmed; nothing was deleted")
    cloud_sweep.sweep(token, found, say)
    _remember(prepared, cloud_sweep.Leftovers())
