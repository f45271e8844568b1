"""Offline, the pre-baked node image (``digitalocean.image: snapshot:<name>``) is priced
at a stated bound: `provision image build` snapshots a droplet with a 25 GB disk
(s-1vcpu-1gb, cloud/image_build.py), and a snapshot is never larger than its source disk
(openapi snapshots_base.yml ``min_disk_size``: "The minimum size in GB required for a
volume or Droplet to use this snapshot"). $0.06 per GB-month: prices.json snapshot_gib."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from provisioner.cost.estimate import plan_cost
from provisioner.cost.prices import list_prices
from tests.support.rendering import example

NAME = "provision-prod-k8s-1.36.2-20261201t000000z"


def test_the_image_snapshot_is_a_plan_line_with_its_assumption() -> None:
    env = example("production")
    baked = dataclasses.replace(env, digitalocean=dataclasses.replace(
        env.digitalocean, image=f"snapshot:{NAME}"))
    plain, with_image = plan_cost(env, list_prices()), plan_cost(baked, list_prices())
    [line] = [x for x in with_image.lines if x.item.startswith("node image snapshot")]
    assert line.item == f"node image snapshot {NAME}: 25 GiB"
    assert line.monthly == (Decimal("1.50"), Decimal("1.50"))  # 25 x 0.06
    assert "assumed at most 25 GiB" in line.note
    assert with_image.total[0] - plain.total[0] == Decimal("1.50")
    assert not [x for x in plain.lines if x.item.startswith("node image")]
