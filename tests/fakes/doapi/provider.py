"""Run the fake Terraform provider's own resource code from the API side.

Creating or deleting through these functions gives exactly what `terraform apply` /
`destroy` would: the same ids, address pools, validation and delete side effects
(tests/fakes/doprovider/resources/). The API never keeps a second copy of those rules.
"""

from __future__ import annotations

from typing import Any

from tests.fakes.doprovider.cloud import Account, Cloud
from tests.fakes.doprovider.diag import Diagnostics
from tests.fakes.doprovider.resources import resource_for
from tests.fakes.doprovider.resources.base import Context
from tests.fakes.doprovider.schema import load_schema
from tests.fakes.doprovider.values import conform


def context(cloud: Cloud, token: str, type_name: str) -> Context:
    """What the provider's resource hooks expect for one operation."""
    return Context(type_name, load_schema().resources[type_name], Diagnostics(), cloud, token)


def create(cloud: Cloud, token: str, type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Plan and create one resource as the provider would; the stored object.

    `config` holds the Terraform arguments (`{"name": ..., "region": ..., ...}`).
    Raises ValueError with the provider's diagnostics if it refuses, e.g. a size slug
    it does not know. DO_SIM_FAIL / DO_SIM_LATENCY_MS apply as under Terraform.
    """
    ctx = context(cloud, token, type_name)
    behaviour = resource_for(type_name)
    config = conform(ctx.schema.block, config)
    # As sent (the state keeps a hash of user_data; the metadata service serves the text).
    ctx.config = config
    behaviour.validate(ctx, config)
    planned, _ = behaviour.plan(ctx, None, config, config)
    created = None if ctx.diags.has_errors() else behaviour.create(ctx, planned)
    if created is None:
        problems = "; ".join(f"{d.summary} {d.detail}".strip() for d in ctx.diags.items)
        raise ValueError(f"the fake provider refused to create {type_name}: {problems}")
    with cloud.transaction() as account:
        # Mark the provider's audit entry: this object was not created by Terraform.
        for event in reversed(account.data["events"]):
            if event["op"] == "create" and event["id"] == str(created["id"]):
                event["via"] = "api"
                break
    return created


def remove(
    cloud: Cloud, token: str, account: Account, type_name: str, record: dict[str, Any]
) -> None:
    """The provider's delete side effects for `record` (inside the caller's transaction).

    Raises the provider's ApiError when it would refuse (a VPC with members...).
    """
    resource_for(type_name).remove(context(cloud, token, type_name), account, record)
