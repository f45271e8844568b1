"""The snapshot id provision looks up itself when the recorded outputs predate Terraform's
output ``image``: the rule of terraform/image.tf's data.digitalocean_droplet_snapshot
(terraform-provider-digitalocean, digitalocean/snapshot/datasource_droplet_snapshot.go:
exact ``name``, ``region`` among the snapshot's regions, ``most_recent`` = newest
``created_at``)."""

from __future__ import annotations

import dataclasses

from provisioner.cloud.node_image import snapshot_id
from tests.support.rendering import example

NAME = "provision-prod-k8s-1.36.2-20261201t000000z"


def _snap(sid: str, created: str, regions: list[str], name: str = NAME) -> dict[str, object]:
    return {"id": sid, "name": name, "regions": regions, "created_at": created}


def test_the_newest_snapshot_of_the_name_in_the_region() -> None:
    env = example("production")
    env = dataclasses.replace(env, digitalocean=dataclasses.replace(
        env.digitalocean, image=f"snapshot:{NAME}"))
    region = env.digitalocean.region
    found = [_snap("1", "2026-12-01T00:00:00Z", [region]),
             _snap("2", "2026-12-03T00:00:00Z", [region]),
             _snap("3", "2026-12-04T00:00:00Z", ["nyc3"]),  # newest, another region
             _snap("4", "2026-12-05T00:00:00Z", [region], name=NAME + "x")]
    assert snapshot_id(env, found) == "2"
    assert snapshot_id(env, found[2:]) is None
