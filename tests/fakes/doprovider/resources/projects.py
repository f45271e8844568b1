"""Projects: which resources (by URN) belong to which project, and the project lookup."""

from __future__ import annotations

from typing import Any, ClassVar

from ..cloud import Account
from ..values import is_unknown
from .base import ApiError, Context, DataSource, Obj, Resource
from .validators import no_zero_value

PROJECTS = "digitalocean_project"


class Project(Resource):
    """digitalocean_project: a named project; `resources` lists the URNs it holds."""

    type_name = "digitalocean_project"
    noun = "project"
    api_path = "/v2/projects"
    defaults: ClassVar[dict[str, Any]] = {"is_default": False}

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        fresh = account.add_project(str(obj["name"]))
        account.delete(PROJECTS, fresh["id"])  # add_project stored it; we store obj below
        for key, value in fresh.items():
            if key not in obj or obj[key] is None or is_unknown(obj[key]):
                obj[key] = value
        _move_resources(account, obj["id"], obj.get("resources") or [])


class ProjectResources(Resource):
    """digitalocean_project_resources: assigns URNs to a project (they leave others)."""

    type_name = "digitalocean_project_resources"
    noun = "project resources"
    api_path = "/v2/projects/resources"
    requires_replace = frozenset({"project"})
    validators: ClassVar[dict[str, Any]] = {"project": no_zero_value}

    def build(self, ctx: Context, account: Account, obj: Obj) -> None:
        project = account.get(PROJECTS, str(obj["project"]))
        if project is None:
            raise ApiError(404, f"project {obj['project']} not found")
        _move_resources(account, project["id"], obj.get("resources") or [])
        obj["id"] = project["id"]

    def modify(self, ctx: Context, account: Account, prior: Obj, obj: Obj) -> None:
        super().modify(ctx, account, prior, obj)
        dropped = set(prior.get("resources") or []) - set(obj.get("resources") or [])
        _move_resources(account, account.default_project()["id"], sorted(dropped))
        _move_resources(account, str(obj["project"]), obj.get("resources") or [])

    def read(self, ctx: Context, current: Obj) -> Obj | None:
        if not self._precheck(ctx, "read", current):
            return current
        with ctx.cloud.transaction() as account:
            project = account.get(PROJECTS, str(current.get("project")))
            if project is None:
                return None
            held = set(project.get("resources") or [])
        # Like the provider: only the URNs this resource manages, as far as still held.
        result = dict(current)
        result["resources"] = [r for r in current.get("resources") or [] if r in held]
        return result

    def remove(self, ctx: Context, account: Account, prior: Obj) -> None:
        # Unassigned resources fall back to the default project.
        _move_resources(account, account.default_project()["id"], prior.get("resources") or [])

    def table(self) -> str:
        return "digitalocean_project_resources"


class ProjectData(DataSource):
    """data.digitalocean_project: by id, by name, or the account's default project."""

    type_name = "digitalocean_project"
    noun = "project"
    api_path = "/v2/projects"

    def table(self) -> str:
        return PROJECTS

    def fallback(self, ctx: Context, account: Account) -> Obj | None:
        return account.default_project()


def _move_resources(account: Account, project_id: str, urns: list[str]) -> None:
    """Each resource is in exactly one project: assign urns to project_id."""
    wanted = set(urns)
    for project in account.table(PROJECTS).values():
        held = [r for r in project.get("resources") or [] if r not in wanted]
        if project["id"] == project_id:
            held = sorted(set(held) | wanted)
        project["resources"] = held
