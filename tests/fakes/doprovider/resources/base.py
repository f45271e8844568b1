"""Generic, schema-driven resource and data source behaviour on the simulated account.

Every resource type of the real schema works with `Resource`: create stores the object
under a fresh id, read returns the stored object (or reports it gone), update stores the
planned object, delete removes it. Types that matter to the project subclass it and fill
in their computed attributes the way DigitalOcean does (see compute.py, network.py...).

Planning follows the SDKv2 provider the schema comes from: computed attributes the
configuration leaves unset are unknown on create; `Default`s and `StateFunc`s apply at
plan time; a change of a `ForceNew` attribute requires replacement.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from .. import apicalls, ratelimit
from ..cloud import Account, Cloud, new_uuid, now_rfc3339
from ..diag import Diagnostics, Path
from ..faults import injected_failure, latency_seconds, simulate_latency
from ..schema import TypeSchema
from ..values import (
    UNKNOWN,
    carry_nested_computed,
    changed_fields,
    conform,
    is_unknown,
    mark_computed_unknown,
    resolve_unknowns,
)
from .validators import Validator, run_validators

Obj = dict[str, Any]
API = "https://api.digitalocean.com"
_NO_TOKEN = (
    "The simulated DigitalOcean API requires a token, like the real one: set the "
    "provider's `token` argument or DIGITALOCEAN_TOKEN / DIGITALOCEAN_ACCESS_TOKEN."
)


class ApiError(Exception):
    """A simulated DigitalOcean API error response."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass
class Context:
    """What one provider operation on one resource/data source works with."""

    type_name: str
    schema: TypeSchema
    diags: Diagnostics
    cloud: Cloud
    token: str | None
    # The resource's configuration as written (ApplyResourceChange's `config`): what the
    # real provider sends to the API where the state keeps only a StateFunc's hash.
    config: Obj | None = None


def _verb(op: str) -> str:
    return {"create": "POST", "update": "PUT", "delete": "DELETE"}.get(op, "GET")


class Resource:
    """Generic resource type; class attributes describe the real provider's behaviour."""

    type_name: str = ""
    noun: ClassVar[str] = "resource"  # in "Error creating <noun>"
    api_path: ClassVar[str] = "/v2/resources"
    urn_kind: ClassVar[str] = ""  # "droplet" -> urn "do:droplet:<id>"
    # ForceNew attributes: a change plans a replacement.
    requires_replace: ClassVar[frozenset[str]] = frozenset()
    # SDKv2 `Default`s of optional attributes, applied at plan time.
    defaults: ClassVar[dict[str, Any]] = {}
    # Same for attributes of nested blocks: {"block": {"attr": default}}.
    nested_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    # SDKv2 `StateFunc`s: the value stored in state is f(configured value).
    state_funcs: ClassVar[dict[str, Callable[[Any], Any]]] = {}
    # Computed attributes that become unknown when one of the keys changes in place.
    recompute_on_change: ClassVar[dict[str, tuple[str, ...]]] = {}
    # Provider-side validation (SDKv2 ValidateFunc); "block.attr" for nested blocks.
    validators: ClassVar[dict[str, Validator]] = {}
    # The real create polls GET until the object is active (apicalls.droplet_polls).
    polls_until_active: ClassVar[bool] = False

    def __init__(self, type_name: str | None = None) -> None:
        if type_name:
            self.type_name = type_name

    # ------------------------------------------------------------------ validation

    def validate(self, ctx: Context, config: Obj) -> None:
        """Run the provider-side validators on a (possibly partly unknown) config."""
        run_validators(ctx.diags, config, self.validators)

    # ---------------------------------------------------------------------- planning

    def plan(
        self, ctx: Context, prior: Obj | None, proposed: Obj, config: Obj
    ) -> tuple[Obj, list[Path]]:
        """Planned new object and the paths whose change forces a replacement."""
        block = ctx.schema.block
        planned = copy.deepcopy(proposed)
        self._apply_defaults(planned)
        for name, fn in self.state_funcs.items():
            value = planned.get(name)
            # With `ignore_changes`, Terraform proposes the prior (already hashed) state
            # value: hashing it again would invent a change.
            if prior is not None and value == prior.get(name):
                continue
            if value is not None and not is_unknown(value):
                planned[name] = fn(value)
        if prior is None:
            mark_computed_unknown(block, planned, config)
            return planned, []
        carry_nested_computed(block, prior, planned)
        changed = changed_fields(block, prior, planned)
        replace = sorted(changed & self.requires_replace)
        if replace:
            # Like SDKv2: a replacement's computed attributes are "known after apply",
            # except optional ones the configuration sets.
            for name, attr in block.attributes.items():
                if attr.computed and config.get(name) is None:
                    planned[name] = UNKNOWN
        else:
            for name in changed:
                for dep in self.recompute_on_change.get(name, ()):
                    planned[dep] = UNKNOWN
        return planned, [(name,) for name in replace]

    def _apply_defaults(self, planned: Obj) -> None:
        for name, default in self.defaults.items():
            if planned.get(name) is None:
                planned[name] = default
        for block_name, defaults in self.nested_defaults.items():
            elems = planned.get(block_name)
            if isinstance(elems, dict):
                elems = [elems]
            if not isinstance(elems, list):
                continue
            for el in elems:
                if not isinstance(el, dict):
                    continue
                for name, default in defaults.items():
                    if el.get(name) is None:
                        el[name] = default

    # ------------------------------------------------------------------- lifecycle

    def create(self, ctx: Context, planned: Obj) -> Obj | None:
        """Create the object in the account; None (with an error) if that failed."""
        if not self._precheck(ctx, "create", planned):
            return None
        name = str(planned.get("name") or "")
        limits = apicalls.limiter()
        if not self._api_call(ctx, "create", limits):
            return None
        if limits is not None and self.polls_until_active:
            return self._create_polling(ctx, planned, limits, name)
        simulate_latency("create", self.type_name, name)
        return self._store_new(ctx, planned)

    def _store_new(self, ctx: Context, planned: Obj) -> Obj | None:
        """Build the object and put it into the account (None: the API refused it)."""
        obj = copy.deepcopy(planned)
        try:
            with ctx.cloud.transaction() as account:
                self.build(ctx, account, obj)
                obj = self._finish(ctx, obj)
                account.put(self.table(), obj)
                account.log("create", self.type_name, str(obj["id"]), obj.get("name"))
        except ApiError as err:
            self._api_error(ctx, "create", err)
            return None
        return obj

    def _api_call(self, ctx: Context, op: str,
                  limits: ratelimit.RateLimiter | None = None) -> bool:
        """One request of ``op`` against the account's rate limits (apicalls.call)."""
        try:
            apicalls.call(ctx.token, limits)
        except apicalls.RateLimited:
            self._api_error(ctx, op, ApiError(429, ratelimit.MESSAGE))
            return False
        return True

    def _create_polling(self, ctx: Context, planned: Obj, limits: ratelimit.RateLimiter,
                        name: str) -> Obj | None:
        """A create that polls until active, each poll a counted GET (rate limits on)."""
        started = limits.clock()
        stored = self._store_new(ctx, planned)
        if stored is None:
            return None
        obj = stored
        for at in apicalls.droplet_polls(latency_seconds(self.type_name, name)):
            ratelimit.sleep_simulated(started + at - limits.clock())
            try:
                apicalls.call(ctx.token, limits)
            except apicalls.RateLimited:
                # As the real create: the object exists, the wait failed; Terraform keeps
                # it in state as tainted.
                ctx.diags.error(f"Error waiting for {self.noun} ({obj['id']}) to become "
                                f"ready: Error retrieving {self.noun}: GET {API}"
                                f"{self.api_path}/{obj['id']}: 429 {ratelimit.MESSAGE}")
                return obj
        return obj

    def update(self, ctx: Context, prior: Obj, planned: Obj) -> Obj:
        """Change the object in place; on failure the prior object stays."""
        if not self._precheck(ctx, "update", planned):
            return prior
        if not self._api_call(ctx, "update"):
            return prior
        obj = copy.deepcopy(planned)
        try:
            with ctx.cloud.transaction() as account:
                if account.get(self.table(), prior["id"]) is None:
                    raise ApiError(404, "The resource you were accessing could not be found.")
                self.modify(ctx, account, prior, obj)
                obj = self._finish(ctx, obj)
                account.put(self.table(), obj)
                account.log("update", self.type_name, str(obj["id"]), obj.get("name"))
        except ApiError as err:
            self._api_error(ctx, "update", err)
            return prior
        return obj

    def delete(self, ctx: Context, prior: Obj) -> Obj | None:
        """Delete the object; returns None, or the prior object if deleting failed."""
        if not self._precheck(ctx, "delete", prior):
            return prior
        if not self._api_call(ctx, "delete"):
            return prior
        simulate_latency("delete", self.type_name, str(prior.get("name") or ""))
        try:
            with ctx.cloud.transaction() as account:
                # Already gone is fine, as with the real provider's 404 handling.
                if account.get(self.table(), prior["id"]) is not None:
                    self.remove(ctx, account, prior)
                    account.delete(self.table(), prior["id"])
                    account.forget_urn(prior.get("urn"))
                    account.log("delete", self.type_name, str(prior["id"]), prior.get("name"))
        except ApiError as err:
            self._api_error(ctx, "delete", err)
            return prior
        return None

    def read(self, ctx: Context, current: Obj) -> Obj | None:
        """Refresh: the object as the account has it now, or None if it is gone."""
        if not self._precheck(ctx, "read", current):
            return current
        if not self._api_call(ctx, "read"):
            return current
        # A look, not a change: `refresh` gets a copy (`conform`) and only reads the account.
        with ctx.cloud.reading() as account:
            record = account.get(self.table(), current.get("id") or "")
            if record is None:
                return None
            return self.refresh(ctx, account, current, conform(ctx.schema.block, record))

    def import_(self, ctx: Context, rid: str) -> Obj | None:
        """`terraform import`: the stored object with that id."""
        with ctx.cloud.transaction() as account:
            record = account.get(self.table(), rid)
        if record is None:
            ctx.diags.error(f"Cannot import non-existent remote object {self.type_name} {rid!r}")
            return None
        result = conform(ctx.schema.block, record)
        return result if isinstance(result, dict) else None

    # -------------------------------------------------------------- hooks to override

    def table(self) -> str:
        """Name of the account table holding this type's objects."""
        return self.type_name

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        """Fill computed attributes of a new object (in place). Raise ApiError to fail."""
        self.fill_common(obj, new_uuid())

    def modify(self, ctx: Context, account: Account, prior: Obj, obj: Obj) -> None:
        """Fill attributes an in-place update recomputes (those planned unknown)."""
        for name, value in prior.items():
            if is_unknown(obj.get(name)):
                obj[name] = value

    def remove(self, ctx: Context, account: Account, prior: Obj) -> None:
        """Side effects of deleting (unassigning IPs, removing URNs from projects...)."""

    def refresh(self, ctx: Context, account: Account, current: Obj, record: Obj) -> Obj | None:
        """Merge the stored record into the current state (default: the record wins)."""
        return record

    # -------------------------------------------------------------------- helpers

    def fill_common(self, obj: Obj, rid: str) -> None:
        """id / urn / created_at / status, for whichever of them are unknown."""
        if is_unknown(obj.get("id")) or obj.get("id") is None:
            obj["id"] = rid
        if "urn" in obj and is_unknown(obj["urn"]) and self.urn_kind:
            obj["urn"] = f"do:{self.urn_kind}:{obj['id']}"
        if "created_at" in obj and is_unknown(obj["created_at"]):
            obj["created_at"] = now_rfc3339()
        if "status" in obj and is_unknown(obj["status"]):
            obj["status"] = "active"

    def _finish(self, ctx: Context, obj: Obj) -> Obj:
        return resolve_unknowns(ctx.schema.block, obj)

    def _precheck(self, ctx: Context, op: str, obj: Obj) -> bool:
        """Authentication and injected failures, checked before any simulated API call."""
        if not ctx.token:
            self._api_error(ctx, op, ApiError(401, "Unable to authenticate you"), _NO_TOKEN)
            return False
        label = injected_failure(self.type_name, op, obj)
        if label is not None:
            self._api_error(
                ctx,
                op,
                ApiError(
                    500,
                    f'simulated failure injected by DO_SIM_FAIL for {self.type_name} "{label}"',
                ),
            )
            return False
        return True

    def _api_error(self, ctx: Context, op: str, err: ApiError, detail: str = "") -> None:
        gerund = {"create": "creating", "update": "updating", "delete": "deleting"}.get(
            op, "retrieving"
        )
        request = uuid.uuid4()
        ctx.diags.error(
            f"Error {gerund} {self.noun}: {_verb(op)} {API}{self.api_path}: "
            f'{err.status} (request "{request}") {err.message}',
            detail,
        )


class DataSource:
    """Generic data source: looks the object up in the account table of the same name.

    Lookup is by `id`, else `name`, like most of the real data sources; `fallback` may
    supply an object when neither is set (the default project, for instance).
    """

    type_name: str = ""
    noun: ClassVar[str] = "resource"
    api_path: ClassVar[str] = "/v2/resources"
    validators: ClassVar[dict[str, Validator]] = {}

    def __init__(self, type_name: str | None = None) -> None:
        if type_name:
            self.type_name = type_name

    def validate(self, ctx: Context, config: Obj) -> None:
        """Run the provider-side validators on a (possibly partly unknown) config."""
        run_validators(ctx.diags, config, self.validators)

    def read(self, ctx: Context, config: Obj) -> Obj | None:
        """The data source's result object, or None with an error diagnostic."""
        if not ctx.token:
            ctx.diags.error(
                f"Error retrieving {self.noun}: GET {API}{self.api_path}: "
                "401 Unable to authenticate you",
                _NO_TOKEN,
            )
            return None
        try:
            apicalls.call(ctx.token)
        except apicalls.RateLimited:
            ctx.diags.error(f"Error retrieving {self.noun}: GET {API}{self.api_path}: "
                            f"429 {ratelimit.MESSAGE}")
            return None
        with ctx.cloud.transaction() as account:
            record = self.lookup(ctx, account, config)
        if record is None:
            return None
        result = conform(ctx.schema.block, {**record, **_known(config)})
        assert isinstance(result, dict)
        return resolve_unknowns(ctx.schema.block, result)

    def table(self) -> str:
        """Account table searched."""
        return self.type_name

    def fallback(self, ctx: Context, account: Account) -> Obj | None:
        """Object returned when the config names no id/name (list-style data sources...).

        Generic data sources have no catalogue to answer from: they return their
        arguments with every computed attribute null, and say so in a warning.
        """
        ctx.diags.warning(
            f"Simulated data source {self.type_name} has no data",
            "doprovider returns only the configured arguments; computed attributes are null.",
        )
        return {}

    def lookup(self, ctx: Context, account: Account, config: Obj) -> Obj | None:
        """Find the configured object in the account."""
        table = account.table(self.table())
        if config.get("id") not in (None, ""):
            found = table.get(str(config["id"]))
            if found is None:
                ctx.diags.error(
                    f"Error retrieving {self.noun}: {self.noun} {config['id']} not found"
                )
            return found
        if config.get("name") not in (None, ""):
            matches = [r for r in table.values() if r.get("name") == config["name"]]
            if not matches:
                ctx.diags.error(
                    f"Error retrieving {self.noun}: no {self.noun} found with name {config['name']}"
                )
                return None
            if len(matches) > 1:
                ctx.diags.error(
                    f"Error retrieving {self.noun}: too many {self.noun}s found with name "
                    f"{config['name']} (found {len(matches)}, expected 1)"
                )
                return None
            return matches[0]
        return self.fallback(ctx, account)


def _known(config: Obj) -> Obj:
    """The configured (non-null, known) arguments of a data source."""
    return {k: v for k, v in config.items() if v is not None and not is_unknown(v)}
