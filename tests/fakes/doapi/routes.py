"""The endpoints: request -> account transaction -> API JSON response.

Every handler works inside one `Cloud.transaction()`, the same file lock the fake
Terraform provider takes, so an API change is atomic with respect to a concurrent
`terraform apply` and visible to the provider's next refresh. Deletions run the fake
provider's own delete side effects (a deleted droplet leaves its reserved IPs,
firewalls and load balancers), so both ways of deleting leave the same account.
"""

from __future__ import annotations

import ipaddress
import itertools
import math
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from tests.fakes.doprovider.cloud import Account, Cloud, now_rfc3339
from tests.fakes.doprovider.resources.base import ApiError
from tests.fakes.doprovider.resources.compute import USER_DATA

from . import provider
from .faults import Faults
from .monitoring import Monitoring
from .seeding import DROPLETS, LOAD_BALANCERS, SSH_KEYS, VOLUMES, log_api_event
from .views import Json, View

RESERVED_IPS = "digitalocean_reserved_ip"  # floating IPs are the same objects
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 200
NOT_FOUND_MESSAGE = "The resource you were accessing could not be found."

_ERROR_IDS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    422: "unprocessable_entity",
    429: "too_many_requests",
}


@dataclass(frozen=True)
class Request:
    """A parsed request: normalised path (no query, no trailing slash), query, JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any


@dataclass
class Response:
    """What to send back; `body` None means no content (204)."""

    status: int
    body: Json | None = None
    headers: dict[str, str] = field(default_factory=dict)


def error(status: int, message: str, error_id: str | None = None) -> Response:
    """An error in the API's shape: {"id": "...", "message": "..."} (+ request_id later)."""
    return Response(status, {"id": error_id or _ERROR_IDS.get(status, "error"), "message": message})


def not_found() -> Response:
    """404 with the real API's wording."""
    return error(404, NOT_FOUND_MESSAGE)


Handler = Callable[["Api", Request, "re.Match[str]"], Response]
_ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []
_IPS = r"/v2/(?P<kind>floating_ips|reserved_ips)"


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler for `method` and a full-match path regex."""

    def register(fn: Handler) -> Handler:
        _ROUTES.append((method, re.compile(pattern), fn))
        return fn

    return register


class Api:
    """The endpoint implementations over one account file."""

    def __init__(self, cloud: Cloud, faults: Faults, origin: Callable[[], str], token: str) -> None:
        self.cloud = cloud
        self.faults = faults
        self._origin = origin
        self._token = token  # handed to the provider's hooks, which want an API token
        self._actions: dict[int, Json] = {}
        self._action_ids = itertools.count(2_000_000_001)
        self._lock = threading.Lock()
        self.monitoring = Monitoring()  # load balancer metrics the test injects

    def handle(self, req: Request) -> Response:
        """Dispatch; unknown paths and methods get the API's 404."""
        for method, pattern, handler in _ROUTES:
            match = pattern.fullmatch(req.path)
            if match and method == req.method:
                try:
                    return handler(self, req, match)
                except ApiError as err:
                    return error(err.status, err.message)
        return not_found()

    # ------------------------------------------------------------------- helpers

    def view(self, account: Account) -> View:
        """A renderer for this request's snapshot of the account."""
        return View(account, self.faults, self._origin())

    def page(self, req: Request, key: str, items: list[Json]) -> Response:
        """A list response with DigitalOcean's `links.pages` / `meta.total` pagination."""
        try:
            per_page = min(max(int(req.query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
            number = max(int(req.query.get("page", 1)), 1)
        except ValueError:
            return error(400, "page and per_page must be integers")
        last = max(1, math.ceil(len(items) / per_page))
        others = {k: v for k, v in req.query.items() if k not in ("page", "per_page")}

        def link(n: int) -> str:
            query = urlencode({**others, "page": n, "per_page": per_page})
            return f"{self._origin()}{req.path}?{query}"

        pages: dict[str, str] = {}
        if number > 1:
            pages.update(first=link(1), prev=link(min(number - 1, last)))
        if number < last:
            pages.update(next=link(number + 1), last=link(last))
        chunk = items[(number - 1) * per_page : number * per_page]
        return Response(
            200,
            {key: chunk, "links": {"pages": pages} if pages else {}, "meta": {"total": len(items)}},
        )

    def remove(self, account: Account, type_name: str, rid: str) -> bool:
        """Delete an object the way the provider's delete does; False if it is not there."""
        record = account.get(type_name, rid)
        if record is None:
            return False
        provider.remove(self.cloud, self._token, account, type_name, record)  # may raise
        if type_name == DROPLETS:
            # A deleted droplet's volumes are detached (the provider has no volumes).
            for volume in account.table(VOLUMES).values():
                ids = volume.get("droplet_ids") or []
                volume["droplet_ids"] = [d for d in ids if int(d) != int(rid)]
        if type_name == VOLUMES:
            for droplet in account.table(DROPLETS).values():
                droplet["volume_ids"] = [v for v in droplet.get("volume_ids") or [] if v != rid]
        account.delete(type_name, rid)
        account.forget_urn(record.get("urn"))
        log_api_event(account, "delete", type_name, rid, record.get("name"))
        return True

    def new_action(self, kind: str, resource_id: int, resource_type: str, region: Json) -> Json:
        """A finished action (the fake applies changes at once), kept for GET .../actions/ID."""
        now = now_rfc3339()
        with self._lock:
            action = {
                "id": next(self._action_ids),
                "status": "completed",
                "type": kind,
                "started_at": now,
                "completed_at": now,
                "resource_id": resource_id,
                "resource_type": resource_type,
                "region": region,
                "region_slug": region["slug"],
            }
            self._actions[action["id"]] = action
        return action

    def action(self, action_id: int) -> Json | None:
        """A recorded action by id."""
        with self._lock:
            return self._actions.get(action_id)


def _by_creation(records: Iterable[Json]) -> list[Json]:
    # The account file sorts tables by key; the API lists objects oldest first.
    return sorted(records, key=lambda r: (str(r.get("created_at") or ""), str(r["id"])))


def _by_numeric_id(records: Iterable[Json]) -> list[Json]:
    return sorted(records, key=lambda r: int(r["id"]))


# ------------------------------------------------------------------ account, catalogue


@route("GET", r"/v2/account")
def get_account(api: Api, req: Request, m: re.Match[str]) -> Response:
    """The account profile (limits, status)."""
    with api.cloud.transaction() as account:
        return Response(200, {"account": api.view(account).account_info()})


@route("GET", r"/v2/regions")
def list_regions(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All regions, available or not."""
    with api.cloud.transaction() as account:
        return api.page(req, "regions", api.view(account).regions())


@route("GET", r"/v2/sizes")
def list_sizes(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All droplet sizes with the regions offering them."""
    with api.cloud.transaction() as account:
        return api.page(req, "sizes", api.view(account).sizes())


@route("GET", r"/v2/account/keys")
def list_keys(api: Api, req: Request, m: re.Match[str]) -> Response:
    """The account's SSH keys."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        keys = [view.ssh_key(k) for k in _by_numeric_id(account.table(SSH_KEYS).values())]
        return api.page(req, "ssh_keys", keys)


@route("GET", r"/v2/account/keys/(?P<key>[^/]+)")
def get_key(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One SSH key, by numeric id or by MD5 fingerprint."""
    key = m["key"]
    with api.cloud.transaction() as account:
        for record in account.table(SSH_KEYS).values():
            if key in (str(record["id"]), record.get("fingerprint")):
                return Response(200, {"ssh_key": api.view(account).ssh_key(record)})
    return not_found()


# ---------------------------------------------------------------------------- droplets


@route("GET", r"/v2/droplets")
def list_droplets(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Droplets, optionally only those carrying `tag_name` or called `name`."""
    tag, name = req.query.get("tag_name"), req.query.get("name")
    with api.cloud.transaction() as account:
        view = api.view(account)
        droplets = [
            view.droplet(d)
            for d in _by_numeric_id(account.table(DROPLETS).values())
            if (tag is None or tag in (d.get("tags") or [])) and name in (None, d.get("name"))
        ]
        return api.page(req, "droplets", droplets)


# POST /v2/droplets takes `name` (one droplet) or `names` ("Up to ten Droplets may be
# created this way at a time") and answers 202 with `droplet` / `droplets` and one create
# action link each (digitalocean/openapi resources/droplets/droplets_create.yml and
# responses/droplet_create.yml, copied in tests/data/digitalocean-openapi/). Over the
# account's droplet limit the API refuses the whole request with 422 unprocessable_entity
# "creating this/these droplet(s) will exceed your droplet limit" (the error quoted from
# the API in OpenRouterLabs/spawn issue #2516 and pry0cc/axiom issue #422).
MULTI_CREATE_MAX = 10
_CREATE_ARGS = ("region", "size", "image", "ssh_keys", "tags", "vpc_uuid", "user_data",
                "ipv6", "monitoring", "backups")
DROPLET_LIMIT_MESSAGE = "creating this/these droplet(s) will exceed your droplet limit"


# ``image`` is "The image ID of a public or private image or the slug identifier for a
# public image", a string or an integer, and ``ssh_keys`` "the IDs or fingerprints" of keys
# added to the team (droplet_create.yml): a string is a slug or a fingerprint, never an id.
# The fake's public images are its non-numeric slugs (views.py ``image``), so a string of
# digits names no image: refused as the API refuses an image it cannot resolve, 422
# unprocessable_entity "You specified an invalid image for Droplet creation." (the answer
# clients quote from the API; no reference page lists it). A string of digits is no MD5
# fingerprint either (``aa:bb:...``), so it names no key. The simulated provider keeps both
# as strings (its attributes are strings, as Terraform's).
INVALID_IMAGE_MESSAGE = "You specified an invalid image for Droplet creation."


def _image_and_keys(config: dict[str, Any]) -> str | None:
    """Turn ``image`` and ``ssh_keys`` into the provider's strings; the refusal, if any."""
    image = config.get("image", "")
    if isinstance(image, bool) or not isinstance(image, int | str) or (
            isinstance(image, str) and (not image or image.isdigit())):
        return INVALID_IMAGE_MESSAGE
    config["image"] = str(image)
    keys = config.get("ssh_keys") or []
    if not isinstance(keys, list):
        return "ssh_keys must be an array of key ids or fingerprints"
    for key in keys:
        if isinstance(key, bool) or not isinstance(key, int | str) or (
                isinstance(key, str) and key.isdigit()):
            return (f"ssh_keys: {key!r} is neither a key id (a number) nor a fingerprint "
                    "of a key on the team")
    config["ssh_keys"] = [str(k) for k in keys]
    return None


@route("POST", r"/v2/droplets")
def create_droplets(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Create one droplet (`name`) or up to ten (`names`) through the provider's code."""
    body = req.body if isinstance(req.body, dict) else {}
    multi = "names" in body
    names = body.get("names") if multi else [body.get("name")]
    if not isinstance(names, list) or not names or not all(
            isinstance(n, str) and n for n in names):
        return error(422, "name or names is required to create droplets")
    if len(names) > MULTI_CREATE_MAX:
        return error(422, f"you can create at most {MULTI_CREATE_MAX} droplets at a time")
    with api.cloud.transaction() as account:
        limit = api.view(account).account_info().get("droplet_limit")
        if isinstance(limit, int) and len(account.table(DROPLETS)) + len(names) > limit:
            return error(422, DROPLET_LIMIT_MESSAGE)
    config = {key: body[key] for key in _CREATE_ARGS if body.get(key) is not None}
    refused = _image_and_keys(config)
    if refused:
        return error(422, refused)
    created = []
    for name in names:
        try:
            created.append(provider.create(api.cloud, api._token, DROPLETS,
                                           {**config, "name": name}))
        except ValueError as refused:
            return error(422, str(refused))
    with api.cloud.transaction() as account:
        if isinstance(body.get("user_data"), str):
            # What the droplet's metadata service serves it (the provider keeps it so too).
            kept = account.data.setdefault(USER_DATA, {})
            kept.update({str(d["id"]): body["user_data"] for d in created})
        view = api.view(account)
        droplets = [view.droplet(account.get(DROPLETS, str(d["id"])) or d) for d in created]
        actions = []
        for droplet in droplets:
            action = api.new_action("create", droplet["id"], "droplet", droplet["region"])
            actions.append({"id": action["id"], "rel": "create",
                            "href": f"{api._origin()}/v2/actions/{action['id']}"})
    links = {"actions": actions}
    if multi:
        return Response(202, {"droplets": droplets, "links": links})
    return Response(202, {"droplet": droplets[0], "links": links})


@route("DELETE", r"/v2/droplets")
def delete_droplets_by_tag(api: Api, req: Request, m: re.Match[str]) -> Response:
    """DELETE /v2/droplets?tag_name=T: every droplet carrying T (204 even if none)."""
    tag = req.query.get("tag_name")
    if not tag:
        return error(422, "tag_name is required to delete droplets in bulk")
    with api.cloud.transaction() as account:
        doomed = [i for i, d in account.table(DROPLETS).items() if tag in (d.get("tags") or [])]
        for rid in doomed:
            api.remove(account, DROPLETS, rid)
    return Response(204)


@route("GET", r"/v2/droplets/(?P<id>\d+)")
def get_droplet(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One droplet."""
    with api.cloud.transaction() as account:
        record = account.get(DROPLETS, m["id"])
        if record is None:
            return not_found()
        return Response(200, {"droplet": api.view(account).droplet(record)})


@route("DELETE", r"/v2/droplets/(?P<id>\d+)")
def delete_droplet(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Delete one droplet (detaching its reserved IPs, volumes, LB/firewall membership)."""
    with api.cloud.transaction() as account:
        return Response(204) if api.remove(account, DROPLETS, m["id"]) else not_found()


# ----------------------------------------------------------------- reserved/floating IPs


def _singular(kind: str) -> str:
    return kind.removesuffix("s")  # floating_ips -> floating_ip


@route("GET", _IPS)
def list_ips(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All reserved IPs, under the name the client asked for."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        records = sorted(
            account.table(RESERVED_IPS).values(), key=lambda r: ipaddress.IPv4Address(r["id"])
        )
        return api.page(req, m["kind"], [view.reserved_ip(r) for r in records])


@route("GET", _IPS + r"/(?P<ip>[^/]+)")
def get_ip(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One reserved IP by address."""
    with api.cloud.transaction() as account:
        record = account.get(RESERVED_IPS, m["ip"])
        if record is None:
            return not_found()
        return Response(200, {_singular(m["kind"]): api.view(account).reserved_ip(record)})


@route("DELETE", _IPS + r"/(?P<ip>[^/]+)")
def delete_ip(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Release a reserved IP (assigned or not)."""
    with api.cloud.transaction() as account:
        return Response(204) if api.remove(account, RESERVED_IPS, m["ip"]) else not_found()


@route("POST", _IPS + r"/(?P<ip>[^/]+)/actions")
def ip_action(api: Api, req: Request, m: re.Match[str]) -> Response:
    """{"type": "assign", "droplet_id": N} or {"type": "unassign"}; 201 with the action.

    Assigning moves the address from whichever droplet holds it, as on DigitalOcean;
    the droplet must exist and be in the address's region.
    """
    body = req.body if isinstance(req.body, dict) else {}
    kind = body.get("type")
    if kind not in ("assign", "unassign"):
        return error(422, f"type must be assign or unassign, not {kind!r}")
    with api.cloud.transaction() as account:
        record = account.get(RESERVED_IPS, m["ip"])
        if record is None:
            return not_found()
        view = api.view(account)
        region = view.reserved_ip(record)["region"]
        if kind == "assign":
            failure = _assign(account, record, body.get("droplet_id"), region["slug"])
            if failure is not None:
                return failure
        elif record.get("droplet_id") is None:
            return error(422, "The reserved IP is not assigned to a Droplet.")
        else:
            record["droplet_id"] = None
        log_api_event(account, kind, RESERVED_IPS, m["ip"], None)
    action = api.new_action(
        f"{kind}_ip", int(ipaddress.IPv4Address(m["ip"])), _singular(m["kind"]), region
    )
    return Response(201, {"action": action})


def _assign(account: Account, record: Json, droplet_id: Any, region: str) -> Response | None:
    try:
        did = int(droplet_id)
    except (TypeError, ValueError):
        return error(422, "droplet_id is required to assign a reserved IP")
    droplet = account.get(DROPLETS, str(did))
    if droplet is None:
        return error(422, f"Droplet {did} not found")
    if droplet.get("region") != region:
        return error(
            422, f"The Droplet is in {droplet.get('region')}, the reserved IP in {region}."
        )
    record["droplet_id"] = did
    return None


@route("GET", _IPS + r"/(?P<ip>[^/]+)/actions/(?P<action>\d+)")
@route("GET", r"/v2/actions/(?P<action>\d+)")
def get_action(api: Api, req: Request, m: re.Match[str]) -> Response:
    """An action this fake performed (for clients that poll until `completed`)."""
    action = api.action(int(m["action"]))
    return Response(200, {"action": action}) if action else not_found()


# ------------------------------------------------------------- load balancers, volumes


@route("GET", r"/v2/load_balancers")
def list_load_balancers(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All load balancers."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        lbs = _by_creation(account.table(LOAD_BALANCERS).values())
        return api.page(req, "load_balancers", [view.load_balancer(lb) for lb in lbs])


@route("GET", r"/v2/load_balancers/(?P<id>[^/]+)")
def get_load_balancer(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One load balancer."""
    with api.cloud.transaction() as account:
        record = account.get(LOAD_BALANCERS, m["id"])
        if record is None:
            return not_found()
        return Response(200, {"load_balancer": api.view(account).load_balancer(record)})


@route("DELETE", r"/v2/load_balancers/(?P<id>[^/]+)")
def delete_load_balancer(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Delete a load balancer."""
    with api.cloud.transaction() as account:
        return Response(204) if api.remove(account, LOAD_BALANCERS, m["id"]) else not_found()


@route("GET", r"/v2/volumes")
def list_volumes(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Volumes, optionally filtered by `name` and `region`."""
    name, region = req.query.get("name"), req.query.get("region")
    with api.cloud.transaction() as account:
        view = api.view(account)
        volumes = [
            view.volume(v)
            for v in _by_creation(account.table(VOLUMES).values())
            if name in (None, v.get("name")) and region in (None, v.get("region"))
        ]
        return api.page(req, "volumes", volumes)


@route("GET", r"/v2/volumes/(?P<id>[^/]+)")
def get_volume(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One volume."""
    with api.cloud.transaction() as account:
        record = account.get(VOLUMES, m["id"])
        if record is None:
            return not_found()
        return Response(200, {"volume": api.view(account).volume(record)})


@route("DELETE", r"/v2/volumes/(?P<id>[^/]+)")
def delete_volume(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Delete a volume (attachment is not checked; see the package docstring)."""
    with api.cloud.transaction() as account:
        return Response(204) if api.remove(account, VOLUMES, m["id"]) else not_found()


# --------------------------------------------------------------- tags, firewalls, VPCs


@route("GET", r"/v2/tags")
def list_tags(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All tags with their resource counts."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        return api.page(req, "tags", [view.tag(n) for n in view.tag_names()])


@route("GET", r"/v2/tags/(?P<name>[^/]+)")
def get_tag(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One tag with its resource counts."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        if m["name"] not in view.tag_names():
            return not_found()
        return Response(200, {"tag": view.tag(m["name"])})


@route("DELETE", r"/v2/tags/(?P<name>[^/]+)")
def delete_tag(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Delete a tag, which untags every resource carrying it (the provider's delete)."""
    with api.cloud.transaction() as account:
        return Response(204) if api.remove(account, "digitalocean_tag", m["name"]) else not_found()


@route("GET", r"/v2/firewalls")
def list_firewalls(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All firewalls."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        fws = _by_creation(account.table("digitalocean_firewall").values())
        return api.page(req, "firewalls", [view.firewall(fw) for fw in fws])


@route("GET", r"/v2/firewalls/(?P<id>[^/]+)")
def get_firewall(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One firewall."""
    with api.cloud.transaction() as account:
        record = account.get("digitalocean_firewall", m["id"])
        if record is None:
            return not_found()
        return Response(200, {"firewall": api.view(account).firewall(record)})


@route("DELETE", r"/v2/firewalls/(?P<id>[^/]+)")
def delete_firewall(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Delete a firewall (its droplets simply stop being filtered by it)."""
    with api.cloud.transaction() as account:
        return (Response(204) if api.remove(account, "digitalocean_firewall", m["id"])
                else not_found())


@route("GET", r"/v2/vpcs")
def list_vpcs(api: Api, req: Request, m: re.Match[str]) -> Response:
    """All VPCs, the per-region default ones included."""
    with api.cloud.transaction() as account:
        view = api.view(account)
        vpcs = _by_creation(account.table("digitalocean_vpc").values())
        return api.page(req, "vpcs", [view.vpc(v) for v in vpcs])


@route("GET", r"/v2/vpcs/(?P<id>[^/]+)")
def get_vpc(api: Api, req: Request, m: re.Match[str]) -> Response:
    """One VPC."""
    with api.cloud.transaction() as account:
        record = account.get("digitalocean_vpc", m["id"])
        if record is None:
            return not_found()
        return Response(200, {"vpc": api.view(account).vpc(record)})


# ------------------------------------------------- droplet create, actions, snapshots
# DigitalOcean API reference (digitalocean/openapi, commit 7c1300c4, copied to
# tests/data/digitalocean-openapi/): droplets_create.yml (POST /v2/droplets: 202 with the
# droplet and links.actions), dropletActions_post.yml with models/droplet_actions.yml
# (POST /v2/droplets/{id}/actions: 201 with the action; "snapshot" takes a `name`),
# dropletActions_get.yml, and snapshots_list.yml (GET /v2/snapshots with `resource_type`
# droplet|volume). The fake finishes actions at once. Only what provision sends is
# served: `provision image build` waits for the droplet to power itself off (no
# power_off action) and deletes no snapshot.

SNAPSHOTS = "digitalocean_droplet_snapshot"  # the simulated provider's data source reads it


@route("POST", r"/v2/droplets/(?P<id>\d+)/actions")
def droplet_action(api: Api, req: Request, m: re.Match[str]) -> Response:
    """snapshot: a droplet snapshot of the droplet, in its region."""
    body = req.body if isinstance(req.body, dict) else {}
    kind = body.get("type")
    if kind != "snapshot":
        return error(422, f"the fake does not perform droplet action {kind!r}")
    with api.cloud.transaction() as account:
        record = account.get(DROPLETS, m["id"])
        if record is None:
            return not_found()
        droplet = api.view(account).droplet(record)
        name = body.get("name") or f"{record.get('name')}-snapshot"
        sid = str(account.next_counter("image", 170000001))
        account.put(SNAPSHOTS, {
            "id": sid, "name": str(name), "created_at": now_rfc3339(),
            "regions": [droplet["region"]["slug"]], "resource_id": m["id"],
            "resource_type": "droplet", "min_disk_size": droplet["disk"],
            "size_gigabytes": 2.5, "tags": [],
        })
        log_api_event(account, kind, DROPLETS, m["id"], record.get("name"))
    action = api.new_action(kind, int(m["id"]), "droplet", droplet["region"])
    return Response(201, {"action": action})


@route("GET", r"/v2/droplets/(?P<id>\d+)/actions/(?P<action>\d+)")
def get_droplet_action(api: Api, req: Request, m: re.Match[str]) -> Response:
    """An action this fake performed on the droplet."""
    action = api.action(int(m["action"]))
    if action is None or action["resource_id"] != int(m["id"]):
        return not_found()
    return Response(200, {"action": action})


@route("GET", r"/v2/snapshots")
def list_snapshots(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Droplet snapshots (the fake has no volume snapshots), oldest first."""
    kind = req.query.get("resource_type")
    with api.cloud.transaction() as account:
        records = _by_creation(account.table(SNAPSHOTS).values())
        items = [dict(r) for r in records if kind in (None, "droplet")]
        return api.page(req, "snapshots", items)


# ------------------------------------------------------------------ monitoring


@route("GET", r"/v2/monitoring/metrics/load_balancer/frontend_http_responses")
def lb_frontend_http_responses(api: Api, req: Request, m: re.Match[str]) -> Response:
    """Responses per second by class over [start, end] (monitoring.py says what is cited)."""
    lb_id = req.query.get("lb_id", "")
    try:
        start, end = int(req.query["start"]), int(req.query["end"])
    except (KeyError, ValueError):
        return error(400, "start and end must be UNIX timestamps")
    if not lb_id:
        return error(400, "lb_id is required")
    if end < start:
        return error(400, "end must not be before start")
    return Response(200, {"status": "success", "data": {
        "resultType": "matrix", "result": api.monitoring.matrix(lb_id, start, end)}})
