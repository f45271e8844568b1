"""Node groups over droplets: what each externalgrpc call means, without gRPC.

Ownership (README, "Autoscaling"): Terraform owns each autoscaled pool's first ``min``
droplets; the node group ``<env>-<pool>`` is only the droplets this service created above
them, 0 to ``max - min``, each tagged ``provision:<env>:autoscaled`` and the pool's role tag
``provision:<env>:pool:<pool>``. A droplet without both tags is in no group: the autoscaler
is never told it may delete it.

State: none that could drift from the account. A group's target size is the number of its
droplets the API lists by tag (less those this service is deleting) plus the creations the
API refused that the autoscaler has not yet cleaned up. So a service restart loses nothing
that matters, and a scale-up whose answer the autoscaler never saw (its gRPC deadline
passed) is counted at the next Refresh: the autoscaler reads the target size again before
its next decision and asks only for what is still missing. The service never re-sends a
create whose outcome it does not know (a lost answer after the droplets were made would
double them; DigitalOcean does not deduplicate names); it reports UNAVAILABLE instead and
the next listing tells. Calls that change a group hold that group's lock and re-list first,
so concurrent or repeated IncreaseSize calls can never pass the group's max.

Creation failures are reported as the cluster-autoscaler expects of a provider whose
creates fail after the size was raised (cluster-autoscaler 1.36.1, clusterstate/
clusterstate.go ``buildInstanceToErrorCodeMappings``): one instance per droplet not made,
state Creating with an error (class OutOfResources for the account's droplet limit, else
Other). The autoscaler then backs the group off and deletes those instances through
DeleteNodes (core/static_autoscaler.go ``deleteCreatedNodesWithErrors``, by fake nodes whose
providerID is the instance id), which drops them here.
"""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from provisioner import userdata
from provisioner.autoscaler import node_proto, template
from provisioner.autoscaler.doclient import DoClient, DoError
from provisioner.autoscaler.settings import PoolSettings, Settings
from provisioner.cloud import tags as tagging
from provisioner.cloud.apiref import api_ref
from provisioner.errors import ProvisionError

PROVIDER_PREFIX = "digitalocean://"  # the CCM's and kubelet's providerID (kubeadm template)
FAILED_PREFIX = "provision-failed://"  # instances standing for droplets the API refused
BATCH = 10  # droplets_create.yml: "Up to ten Droplets may be created this way at a time"
RUNNING, CREATING, DELETING = 1, 2, 3  # InstanceStatus.InstanceState
OUT_OF_RESOURCES, OTHER_ERROR = 1, 99  # cloudprovider.InstanceErrorClass
LIMIT_WORDS = "droplet limit"


class GroupError(ProvisionError):
    """A call refused; ``code`` is the gRPC status code's name."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Group:
    id: str
    min_size: int
    max_size: int
    debug: str


@dataclass(frozen=True)
class Instance:
    id: str
    state: int
    error_code: str = ""
    error_message: str = ""
    error_class: int = 0


def droplet_id(provider_id: str) -> int | None:
    """The droplet id of ``digitalocean://<id>``; None for anything else."""
    rest = provider_id.removeprefix(PROVIDER_PREFIX)
    # ASCII digits only: str.isdigit() and int() also take other scripts' digits ("١٢") and
    # superscripts, which no droplet id is written in.
    if rest == provider_id or not re.fullmatch(r"[0-9]+", rest, re.ASCII):
        return None
    return int(rest)


class Groups:
    """The service's node groups; thread-safe (gRPC serves calls on a pool of threads)."""

    def __init__(self, settings: Settings, do: DoClient, mint_token: Callable[[], str],
                 secret_values: Mapping[str, str],
                 suffix: Callable[[], str] = lambda: secrets.token_hex(4)) -> None:
        self.settings = settings
        self.do = do
        self._mint = mint_token
        self._secret_values = dict(secret_values)
        self._suffix = suffix
        self._lock = threading.Lock()
        self._group_locks = {settings.group_id(p): threading.Lock() for p in settings.pools}
        self._droplets: dict[int, dict[str, Any]] | None = None  # last listing by tag
        self._deleting: set[int] = set()
        self._failed: dict[str, dict[str, Instance]] = {g: {} for g in self._group_locks}
        self._sizes: dict[str, dict[str, Any]] | None = None

    # ---------------------------------------------------------------- reads

    def groups(self) -> list[Group]:
        return [self._group(pool) for pool in self.settings.pools]

    def refresh(self, deadline: float | None = None) -> None:
        """List the autoscaled droplets again (the autoscaler calls this every loop)."""
        listed = self.do.droplets_by_tag(self.settings.autoscaled_tag, deadline)
        with self._lock:
            self._droplets = {int(d["id"]): d for d in listed}
            self._deleting &= set(self._droplets)

    def group_for(self, provider_id: str, deadline: float | None = None) -> Group | None:
        """The group of the node with ``provider_id``; None when it is in none."""
        if provider_id.startswith(FAILED_PREFIX):
            with self._lock:
                for group_id, failed in self._failed.items():
                    if provider_id in failed:
                        return self._group(self._pool(group_id))
            return None
        did = droplet_id(provider_id)
        if did is None:
            return None
        droplet = self._listing(deadline).get(did)
        pool = None if droplet is None else self._pool_of(droplet)
        return None if pool is None else self._group(pool)

    def target_size(self, group_id: str, deadline: float | None = None) -> int:
        pool = self._pool(group_id)
        return len(self._members(pool, deadline)) + len(self._failed_of(group_id))

    def nodes(self, group_id: str, deadline: float | None = None) -> list[Instance]:
        pool = self._pool(group_id)
        listing = self._listing(deadline)
        with self._lock:
            deleting = set(self._deleting)
        instances = [
            Instance(f"{PROVIDER_PREFIX}{did}",
                     DELETING if did in deleting
                     else CREATING if droplet.get("status") == "new" else RUNNING)
            for did, droplet in sorted(listing.items()) if self._pool_of(droplet) is pool]
        return instances + self._failed_of(group_id)

    def template_node(self, group_id: str, deadline: float | None = None) -> bytes:
        pool = self._pool(group_id)
        size = self._size(pool.size, deadline)
        return node_proto.encode(template.template_node(group_id, pool, size))

    def node_price(self, labels: Mapping[str, str], hours: float,
                   deadline: float | None = None) -> float:
        """The size's hourly list price times ``hours``, from the node's instance type."""
        slug = labels.get("node.kubernetes.io/instance-type", "")
        if not slug:
            raise GroupError("NOT_FOUND", "the node has no node.kubernetes.io/instance-type "
                             "label to price it by")
        return float(self._size(slug, deadline).get("price_hourly") or 0.0) * max(hours, 0.0)

    # ---------------------------------------------------------------- changes

    def increase(self, group_id: str, delta: int, deadline: float | None = None) -> None:
        """Create ``delta`` droplets for the group (see the module's notes on failures)."""
        pool = self._pool(group_id)
        if delta <= 0:
            raise GroupError("INVALID_ARGUMENT", f"delta must be positive, not {delta}")
        with self._group_locks[group_id]:
            self.refresh(deadline)
            current = self.target_size(group_id)
            if current + delta > pool.group_max:
                raise GroupError("OUT_OF_RANGE", (
                    f"{group_id}: size {current} + {delta} is above the group's max "
                    f"{pool.group_max} (autoscale max {pool.max} less the {pool.min} "
                    "droplets Terraform keeps)"))
            values = self._values(pool)  # refused before a token or droplet is made
            values["bootstrap_token"] = self._mint()
            spec = self._spec(pool, userdata.join([dict(s) for s in pool.user_data], values))
            names = [f"{group_id}-as-{self._suffix()}" for _ in range(delta)]
            for start in range(0, len(names), BATCH):
                batch = names[start:start + BATCH]
                try:
                    made = self.do.create_droplets(batch, spec, deadline)
                except DoError as error:
                    if not error.answered:
                        raise GroupError("UNAVAILABLE", (
                            f"{group_id}: creating {len(batch)} droplets: {error}; whatever "
                            "the API made is counted at the next refresh")) from None
                    self._record_failures(group_id, names[start:], error)
                    return
                with self._lock:
                    assert self._droplets is not None  # listed above
                    self._droplets.update({int(d["id"]): d for d in made})

    def delete(self, group_id: str, provider_ids: Iterable[str],
               deadline: float | None = None) -> None:
        """Delete exactly the droplets of these nodes; all of them in the group, or none."""
        pool = self._pool(group_id)
        wanted = list(dict.fromkeys(provider_ids))
        with self._group_locks[group_id]:
            self.refresh(deadline)
            failed = [p for p in wanted if p.startswith(FAILED_PREFIX)]
            unknown = [p for p in failed if p not in self._failed_of_ids(group_id)]
            doomed: list[int] = []
            for provider_id in (p for p in wanted if p not in failed):
                did = droplet_id(provider_id)
                if did is None:
                    unknown.append(provider_id or "(no providerID)")
                    continue
                if did in self._members(pool):
                    doomed.append(did)
                elif did in self._listing() or self.do.get_droplet(did, deadline) is not None:
                    unknown.append(provider_id)  # exists, but is not this group's
            if unknown:
                raise GroupError("INVALID_ARGUMENT", (
                    f"{group_id}: not in this node group: {', '.join(sorted(unknown))}; "
                    "nothing was deleted"))
            size = self.target_size(group_id)
            if size - len(doomed) - len(failed) < 0:
                raise GroupError("FAILED_PRECONDITION", f"{group_id}: below its min size 0")
            with self._lock:
                for provider_id in failed:
                    self._failed[group_id].pop(provider_id, None)
            for did in doomed:
                self.do.delete_droplet(did, deadline)
                with self._lock:
                    self._deleting.add(did)

    def decrease_target(self, group_id: str, delta: int) -> None:
        """Give up creations not yet fulfilled: here only the refused ones; a droplet that
        exists is deleted by name (DeleteNodes), never by this call."""
        self._pool(group_id)
        if delta >= 0:
            raise GroupError("INVALID_ARGUMENT", f"delta must be negative, not {delta}")
        with self._group_locks[group_id], self._lock:
            failed = self._failed[group_id]
            if -delta > len(failed):
                raise GroupError("FAILED_PRECONDITION", (
                    f"{group_id}: only {len(failed)} requested droplets are unfulfilled; "
                    f"the other {-delta - len(failed)} exist (delete them by node)"))
            for provider_id in list(failed)[:-delta]:
                del failed[provider_id]

    # ---------------------------------------------------------------- helpers

    def _group(self, pool: PoolSettings) -> Group:
        group_id = self.settings.group_id(pool)
        return Group(group_id, 0, pool.group_max,
                     f"{group_id}: droplets of size {pool.size} in {pool.region} above the "
                     f"{pool.min} Terraform keeps (autoscale {pool.min}..{pool.max})")

    def _pool(self, group_id: str) -> PoolSettings:
        pool = self.settings.pool_for_group(group_id)
        if pool is None:
            raise GroupError("NOT_FOUND", f"no node group {group_id!r}")
        return pool

    def _pool_of(self, droplet: Mapping[str, Any]) -> PoolSettings | None:
        held = [str(t) for t in droplet.get("tags") or []]
        env = self.settings.environment
        if not tagging.is_autoscaled(env, held):
            return None
        name = tagging.pool_of(env, held)
        return next((p for p in self.settings.pools if p.name == name), None)

    def _listing(self, deadline: float | None = None) -> dict[int, dict[str, Any]]:
        with self._lock:
            listing = self._droplets
        if listing is None:
            self.refresh(deadline)
            with self._lock:
                listing = self._droplets or {}
        return dict(listing)

    def _members(self, pool: PoolSettings, deadline: float | None = None) -> set[int]:
        listing = self._listing(deadline)
        with self._lock:
            deleting = set(self._deleting)
        return {did for did, d in listing.items()
                if self._pool_of(d) is pool and did not in deleting}

    def _failed_of(self, group_id: str) -> list[Instance]:
        with self._lock:
            return list(self._failed[group_id].values())

    def _failed_of_ids(self, group_id: str) -> set[str]:
        with self._lock:
            return set(self._failed[group_id])

    def _record_failures(self, group_id: str, names: list[str], error: DoError) -> None:
        limit = LIMIT_WORDS in str(error).lower() or error.status == 403
        code = error.error_id or f"http-{error.status}"
        with self._lock:
            for name in names:
                self._failed[group_id][f"{FAILED_PREFIX}{name}"] = Instance(
                    f"{FAILED_PREFIX}{name}", CREATING, code, str(error),
                    OUT_OF_RESOURCES if limit else OTHER_ERROR)

    def _values(self, pool: PoolSettings) -> dict[str, str]:
        values = {**dict(pool.values), **self._secret_values}
        missing = sorted({s["ref"] for s in pool.user_data if "ref" in s}
                         - set(values) - {"bootstrap_token"})
        if missing:
            raise GroupError("FAILED_PRECONDITION", (
                f"pool {pool.name}: the user-data needs {', '.join(missing)}, which neither "
                "the settings' values nor the secret values file holds"))
        return values

    def _spec(self, pool: PoolSettings, user_data: str) -> dict[str, Any]:
        # As terraform/workers.tf creates the pool's workers, plus the autoscaled tag.
        # A snapshot's id and a key's id as numbers: a string is a slug (cloud/apiref.py).
        return {"region": pool.region, "size": pool.size, "image": api_ref(pool.image),
                "vpc_uuid": pool.vpc_uuid, "ssh_keys": [api_ref(k) for k in pool.ssh_keys],
                "tags": [*pool.tags, self.settings.autoscaled_tag], "user_data": user_data,
                "monitoring": True, "ipv6": False, "backups": False,
                "with_droplet_agent": False}

    def _size(self, slug: str, deadline: float | None) -> dict[str, Any]:
        with self._lock:
            sizes = self._sizes
        if sizes is None:
            sizes = {s["slug"]: s for s in self.do.sizes(deadline)}
            with self._lock:
                self._sizes = sizes
        if slug not in sizes:
            raise GroupError("FAILED_PRECONDITION", f"the account offers no size {slug!r}")
        return sizes[slug]
