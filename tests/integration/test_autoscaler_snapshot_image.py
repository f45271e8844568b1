"""With ``digitalocean.image: snapshot:<name>`` the autoscaler service creates droplets of
the very image Terraform gave the pool: the snapshot's id, from Terraform's output
``image`` (terraform/image.tf resolves the name with data.digitalocean_droplet_snapshot).

DigitalOcean's POST /v2/droplets takes ``image`` as "The image ID of a public or private
image or the slug identifier for a public image" (tests/data/digitalocean-openapi/
resources/droplets/models/droplet_create.yml): a name is neither.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.cluster import autoscaler
from provisioner.pipeline.prepare import prepare
from tests.support.rendering import set_workers
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration
NAME = "provision-prod-k8s-1.36.2-20261201t000000z"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as sim:
        yield sim


def _snapshot(sim: Simulation, snapshot_id: str, created: str) -> None:
    with sim.api.cloud.transaction() as account:
        account.put("digitalocean_droplet_snapshot", {
            "id": snapshot_id, "name": NAME, "regions": ["fra1"], "created_at": created,
            "resource_id": "400000001", "resource_type": "droplet", "min_disk_size": 25,
            "size_gigabytes": 2.5, "tags": []})


def test_the_service_gets_the_snapshot_id_terraform_used(sim: Simulation) -> None:
    # Two snapshots share the name (image build twice): Terraform's most_recent takes the
    # newer, and so must the service.
    _snapshot(sim, "170000009", "2026-12-01T00:00:00Z")
    _snapshot(sim, "170000010", "2026-12-02T00:00:00Z")

    def edit(doc: dict[str, Any]) -> None:
        doc["digitalocean"]["image"] = f"snapshot:{NAME}"
        doc["control_plane"]["count"] = 1
        set_workers(doc["worker_pools"][0], 1)
    sim.write_config(edit=edit)
    up = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert up.code == 0, up.stderr
    outputs = json.loads((sim.workdir / "infrastructure.json").read_text())
    images = {str(d["image"]) for d in sim.resources("digitalocean_droplet")}
    assert images == {"170000010"}  # what Terraform made its droplets of
    objects = autoscaler.desired(prepare(sim.config, None), outputs, "do-token")
    settings = json.loads(next(o for o in objects if o["kind"] == "ConfigMap" and
                               "settings.json" in o.get("data", {}))["data"]["settings.json"])
    assert [p["image"] for p in settings["pools"]] == ["170000010"]
