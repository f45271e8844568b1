"""A work folder without the environment's state (a new machine, `git clean`, a CI runner
without it) next to the live environment: `up` and `destroy` refuse before changing anything
and say how to recover; restoring the state as the message says puts the folder back in
charge; a sweep lists what it deletes and asks.

Why a second state is dangerous on DigitalOcean: creating a tag that exists succeeds, so a
second state "creates" the live environment's role tags, and its destroy deletes them;
"Deleting a tag also untags all the resources that have previously been tagged by the Tag"
(digitalocean/openapi, specification/resources/tags/tags_delete.yml at e4a03ac), so the live
droplets would leave the firewalls that select them by those tags. The fake provider's tag
delete does exactly that (tests/contract/test_fake_doapi.py).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.doprovider.cloud import Cloud
from tests.support.rendering import set_workers
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

TABLES = ("digitalocean_droplet", "digitalocean_loadbalancer", "digitalocean_reserved_ip",
          "digitalocean_firewall", "digitalocean_tag", "digitalocean_vpc")


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Simulation]:
    """prod is up from its own work folder."""
    with simulation(tmp_path) as sim:
        sim.write_config({"deploy_policy": {}}, edit=lambda d: (
            d["control_plane"].update(count=1), set_workers(d["worker_pools"][0], 1)))
        result = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert result.code == 0, result.stderr
        yield sim


def _account(sim: Simulation) -> dict[str, Any]:
    resources = Cloud(Path(sim.env["DO_SIM_STATE"])).snapshot()["resources"]
    return {table: resources.get(table, {}) for table in TABLES}


def _tags(sim: Simulation) -> dict[str, list[str]]:
    return {d["name"]: d["tags"] for d in sim.resources("digitalocean_droplet")}


def test_up_from_an_empty_state_refuses_before_creating_anything(live: Simulation,
                                                                tmp_path: Path) -> None:
    before, tags = _account(live), _tags(live)
    empty = tmp_path / "fresh-checkout" / ".provision" / "prod"

    up = live.run("up", str(live.config), "--workdir", str(empty), "--yes", "--until", "infra")
    assert up.code == 1, up.stderr
    assert "refusing to create 'prod': this work folder's Terraform state holds nothing" in (
        up.stderr)
    assert "droplet prod-cp-1 (" in up.stderr and "Nothing was created." in up.stderr
    assert "restore it (copy terraform.tfstate from where `provision up` last ran" in up.stderr
    assert f"into {empty / 'state'}/) and run the command again." in up.stderr
    assert "Traceback" not in up.stderr
    assert _account(live) == before, "no second floating IP, VPC or tag"
    assert len(live.resources("digitalocean_reserved_ip")) == 1

    # And the empty folder's destroy cannot take the live environment's tags with it.
    down = live.run("destroy", str(live.config), "--workdir", str(empty), "--yes", "--force")
    assert down.code == 1, down.stderr
    assert _tags(live) == tags
    assert _account(live) == before


@pytest.mark.parametrize("sweep", [True, False])
def test_destroy_from_an_empty_state_deletes_nothing(live: Simulation, tmp_path: Path,
                                                     sweep: bool) -> None:
    before = _account(live)
    empty = tmp_path / "ci-runner" / "prod"
    args = ["destroy", str(live.config), "--workdir", str(empty), "--yes", "--force"]
    result = live.run(*args, *(["--sweep"] if sweep else []))
    assert result.code == 1, result.stderr
    assert ("refusing to destroy 'prod': this work folder's Terraform state holds nothing of "
            "it") in result.stderr
    assert "droplet prod-cp-1 (" in result.stderr and "Nothing was deleted." in result.stderr
    assert "nothing to destroy" not in result.stderr and "deleted droplet" not in result.stderr
    assert _account(live) == before


def test_restoring_the_state_as_told_puts_the_folder_back_in_charge(live: Simulation,
                                                                   tmp_path: Path) -> None:
    empty = tmp_path / "new-machine" / "prod"
    refused = live.run("up", str(live.config), "--workdir", str(empty), "--yes", "--until",
                       "infra")
    assert refused.code == 1
    # What the message says: copy terraform.tfstate from where `up` last ran into state/.
    (empty / "state").mkdir(mode=0o700, exist_ok=True)
    shutil.copy2(live.workdir / "state" / "terraform.tfstate", empty / "state")
    again = live.run("up", str(live.config), "--workdir", str(empty), "--yes", "--until",
                     "infra")
    assert again.code == 0, again.stderr
    assert "No changes: the infrastructure of prod matches its environment file." in (
        again.stderr)
    gone = live.run("destroy", str(live.config), "--workdir", str(empty), "--yes", "--force")
    assert gone.code == 0, gone.stderr
    assert live.droplet_names() == [] and live.resources("digitalocean_reserved_ip") == []


def _answer_prompt(sim: Simulation, args: list[str], prompt: str, answer: str) -> tuple[int, str]:
    """Run provision on a terminal, answer ``prompt``; exit code and everything it said."""
    import pty

    master, slave = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "provisioner", *args], cwd=sim.root,
                               env=sim.env, stdin=slave, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    os.close(slave)
    seen: list[str] = []
    found = threading.Event()

    def pump() -> None:
        assert process.stderr is not None
        while chunk := os.read(process.stderr.fileno(), 4096):
            seen.append(chunk.decode(errors="replace"))
            if prompt in "".join(seen):
                found.set()
        found.set()

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    assert found.wait(180), f"{prompt!r} not seen: {''.join(seen)}"
    os.write(master, f"{answer}\n".encode())
    code = process.wait(timeout=180)
    reader.join(timeout=10)
    os.close(master)
    return code, "".join(seen)


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0)])
def test_a_sweep_lists_what_it_deletes_and_asks(live: Simulation, answer: str,
                                                code: int) -> None:
    stray = live.api.add_droplet("prod-stray", tags=["provision:prod"])
    first = live.run("destroy", str(live.config), "--yes", "--force")
    assert first.code == 1 and f"droplet prod-stray ({stray})" in first.stderr
    status, said = _answer_prompt(live, ["destroy", str(live.config), "--force", "--sweep"],
                                  "Delete these 1 resources? This cannot be undone. [y/N]",
                                  answer)
    assert status == code, said
    assert f"the sweep deletes these 1 resources of prod:\n  droplet prod-stray ({stray})" in said
    if answer == "n":
        assert "not swept: the list was not confirmed; nothing was deleted" in said
        assert live.droplet_names() == ["prod-stray"]
    else:
        assert "deleted droplet prod-stray" in said
        assert live.droplet_names() == []
