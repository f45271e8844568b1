"""`plan` with ``digitalocean.image: snapshot:<name>`` on the simulated account: the
snapshot is looked up through the API (GET /v2/snapshots?resource_type=droplet,
snapshots_list.yml of the copied OpenAPI description) before Terraform resolves the same
name with data.digitalocean_droplet_snapshot; a version other than the file's is warned
about, a snapshot missing from the region is the file's error with its line (exit 2).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

SNAPSHOTS = "digitalocean_droplet_snapshot"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as sim:
        yield sim


def named(sim: Simulation, name: str, region: str = "fra1") -> None:
    with sim.api.cloud.transaction() as account:
        account.put(SNAPSHOTS, {
            "id": "170000009", "name": name, "regions": [region],
            "created_at": "2026-12-01T00:00:00Z", "resource_id": "400000001",
            "resource_type": "droplet", "min_disk_size": 25, "size_gigabytes": 2.5,
            "tags": []})

    def edit(doc: dict[str, Any]) -> None:
        doc["digitalocean"]["image"] = f"snapshot:{name}"
    sim.write_config(edit=edit)


def image_line(sim: Simulation) -> int:
    lines = sim.config.read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if line.strip().startswith("image: snapshot:"))


def test_plan_warns_when_the_image_has_another_kubernetes_version(sim: Simulation) -> None:
    named(sim, "provision-prod-k8s-1.36.1-20261201t000000z")
    result = sim.run("plan", str(sim.config))
    assert result.code == 0, result.stderr
    assert ("warning: digitalocean.image: snapshot 'provision-prod-k8s-1.36.1-20261201t000000z' "
            "has Kubernetes 1.36.1, the file asks for 1.36.2") in result.stderr


def test_plan_is_quiet_when_the_image_matches(sim: Simulation) -> None:
    named(sim, "provision-prod-k8s-1.36.2-20261201t000000z")
    result = sim.run("plan", str(sim.config))
    assert result.code == 0, result.stderr
    assert "digitalocean.image" not in result.stderr


def test_a_snapshot_in_another_region_is_the_files_error(sim: Simulation) -> None:
    named(sim, "provision-prod-k8s-1.36.2-20261201t000000z", region="nyc3")
    result = sim.run("plan", str(sim.config))
    assert result.code == 2
    assert (f"{sim.config}:{image_line(sim)}: digitalocean.image: snapshot "
            "'provision-prod-k8s-1.36.2-20261201t000000z' is not in fra1 (it is in nyc3)"
            ) in result.stderr
    assert "Traceback" not in result.stderr
