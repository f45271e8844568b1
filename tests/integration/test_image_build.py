"""`provision image build` against the fake DigitalOcean API, end to end.

The droplet's side is played by a thread, as the e2e world plays user-data: it waits for
the build droplet, checks that its user-data is the image build's (the bootstrap script in
role "image", cloud-init's power_state conditioned on the image manifest), and powers it off
the way cloud-init's power_state does (the droplet's status becomes ``off``; cloud-init
cc_power_state_change: "condition ... If exit code is 0, condition is met", then the mode
``poweroff``). Everything else is the real CLI talking HTTP to the fake, whose traffic is
checked against DigitalOcean's OpenAPI description (tests/data/digitalocean-openapi:
droplets_create.yml, dropletActions_post.yml, dropletActions_get.yml, snapshots_list.yml).
"""

from __future__ import annotations

import base64
import gzip
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fakes.doprovider.resources.compute import USER_DATA
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

DROPLETS = "digitalocean_droplet"
SNAPSHOTS = "digitalocean_droplet_snapshot"
TAG = "provision:prod:image-build"


class DropletPlayer:
    """Powers the build droplet off once it exists (``power_off``) or never (False)."""

    def __init__(self, sim: Simulation, power_off: bool) -> None:
        self.sim, self.power_off = sim, power_off
        self.seen: list[dict[str, object]] = []
        self.user_data: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> DropletPlayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with self.sim.api.cloud.transaction() as account:
                for rid, record in account.table(DROPLETS).items():
                    if TAG in (record.get("tags") or []) and rid not in {
                            str(s["id"]) for s in self.seen}:
                        self.seen.append(dict(record))
                        self.user_data.append(account.data.get(USER_DATA, {}).get(rid, ""))
                    if self.power_off and TAG in (record.get("tags") or []):
                        record["status"] = "off"
            time.sleep(0.05)


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path, {"PROVISION_IMAGE_POLL_SECONDS": "0.05"}) as sim:
        yield sim


def neighbours(sim: Simulation) -> list[int]:
    """Build droplets of environments whose names share prod's prefix."""
    return [sim.api.add_droplet(name, region="fra1", tags=[tag]) for name, tag in (
        ("prod2-image-build-x", "provision:prod2:image-build"),
        ("prod-eu-image-build-x", "provision:prod-eu:image-build"),
        ("prod-image-build-x", "provision:prod-eu:image-build"))]


def droplet_ids(sim: Simulation) -> set[int]:
    with sim.api.cloud.transaction() as account:
        return {int(i) for i in account.table(DROPLETS)}


def bootstrap_of(user_data: str) -> str:
    config = yaml.safe_load(user_data)
    (script,) = [f for f in config["write_files"]
                 if f["path"] == "/usr/local/sbin/provision-bootstrap"]
    return gzip.decompress(base64.b64decode(script["content"])).decode()


def test_build_makes_a_snapshot_and_deletes_its_droplet(sim: Simulation) -> None:
    others = neighbours(sim)
    with DropletPlayer(sim, power_off=True) as player:
        result = sim.run("image", "build", str(sim.config))
    assert result.code == 0, result.stderr
    (line,) = result.stdout.splitlines()
    name = line.removeprefix("snapshot:")
    assert name.startswith("provision-prod-k8s-1.36.2-"), line
    # The droplet: the base image, the env's region, exactly the build tag, image user-data.
    (droplet,) = player.seen
    assert droplet["tags"] == [TAG]
    assert droplet["image"] == "ubuntu-24-04-x64" and droplet["region"] == "fra1"
    config = yaml.safe_load(player.user_data[0])
    assert config["power_state"]["mode"] == "poweroff"
    assert config["power_state"]["condition"] == ["test", "-s", "/etc/provision/image.json"]
    script = bootstrap_of(player.user_data[0])
    assert "readonly ROLE=image" in script and "readonly K8S_VERSION=1.36.2" in script
    assert script.rstrip().endswith("\nbake_image")  # the installs, never kubeadm init/join
    assert "BEGIN" not in player.user_data[0]  # no key or certificate in a snapshot
    # Snapshotted from that droplet, in the region, and the droplet deleted.
    with sim.api.cloud.transaction() as account:
        snapshots = list(account.table(SNAPSHOTS).values())
    assert [(s["name"], s["resource_id"], s["regions"]) for s in snapshots] == [
        (name, str(droplet["id"]), ["fra1"])]
    assert droplet_ids(sim) == set(others)
    posts = [r.path for r in sim.api.requests("POST")]
    assert posts == ["/v2/droplets", f"/v2/droplets/{droplet['id']}/actions"]


def test_a_build_that_never_powers_off_leaves_nothing(sim: Simulation) -> None:
    others = neighbours(sim)
    with DropletPlayer(sim, power_off=False) as player:
        result = sim.run("image", "build", str(sim.config), "--timeout", "1")
    assert result.code == 1
    assert "did not power off within 1 s" in result.stderr
    assert "Traceback" not in result.stderr
    assert len(player.seen) == 1
    assert droplet_ids(sim) == set(others)  # ours deleted, the neighbours' untouched
    with sim.api.cloud.transaction() as account:
        assert not account.table(SNAPSHOTS)


def test_destroy_sweep_lists_a_left_build_droplet_and_no_neighbours(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build droplet a failed cleanup left is prod's (exact tag), the neighbours' not."""
    from provisioner.cloud.sweep import leftovers
    from provisioner.config import load_environment
    from tests.support.sim import TOKEN

    for key, value in sim.env.items():
        monkeypatch.setenv(key, value)
    others = neighbours(sim)
    left = sim.api.add_droplet("prod-image-build-y", region="fra1", tags=[TAG])
    found = leftovers(load_environment(sim.config), TOKEN)
    assert found.image_builders == [(str(left), "prod-image-build-y")]
    assert found.droplets == []
    assert not {str(i) for i in others} & {rid for rid, _ in found.image_builders}


def test_a_bad_image_in_the_file_is_refused_with_its_line(sim: Simulation) -> None:
    def edit(doc: dict[str, object]) -> None:
        doc["digitalocean"]["image"] = "snapshot:"  # type: ignore[index]
    sim.write_config(edit=edit)
    result = sim.run("image", "build", str(sim.config))
    assert result.code == 2
    assert "digitalocean.image: 'snapshot:' does not name a snapshot" in result.stderr
    assert f"{sim.config}:" in result.stderr
    assert not sim.api.requests("POST")


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_ctrl_c_or_sigterm_while_waiting_deletes_the_droplet(sim: Simulation,
                                                            signal_number: int) -> None:
    """A real process stopped while it waits for the install: the droplet goes, no
    snapshot is made, the neighbours' build droplets stay."""
    others = neighbours(sim)
    process = sim.popen("image", "build", str(sim.config), stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not any(TAG in (d.get("tags") or []) for d in sim.resources(DROPLETS)):
            assert process.poll() is None and time.monotonic() < deadline, process.stderr
            time.sleep(0.1)
        time.sleep(0.5)  # in the wait for "off"
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 128 + signal_number, stderr
    assert "deleted droplet prod-image-build-" in stderr
    assert droplet_ids(sim) == set(others)
    with sim.api.cloud.transaction() as account:
        assert not account.table(SNAPSHOTS)


def test_builds_in_the_same_second_have_their_own_droplet_and_cleanup(
        sim: Simulation, monkeypatch: pytest.MonkeyPatch) -> None:
    """Droplet names are not unique in an account (droplets_create.yml: "name ... a
    string", no uniqueness rule; the fake accepts two alike): two builds started in the same
    second (two terminals, a CI retry) must not share a name, and each build's cleanup
    deletes only its own droplet, by id once the create answered."""
    import datetime as dt

    from provisioner.cloud import image_build
    from provisioner.config import load_environment
    from tests.support.sim import TOKEN

    for key, value in sim.env.items():
        monkeypatch.setenv(key, value)
    env = load_environment(sim.config)
    now = dt.datetime(2026, 12, 8, 0, 20, 25, tzinfo=dt.UTC)
    first, second = (image_build.droplet_name(env, now) for _ in range(2))
    assert first != second
    assert first.startswith("prod-image-build-20261208t002025-")
    # The other build's droplet, even under the very same name (as before the suffix).
    mine = sim.api.add_droplet(first, region="fra1", tags=[TAG])
    theirs = sim.api.add_droplet(first, region="fra1", tags=[TAG])
    said: list[str] = []
    image_build._delete_build_droplets(image_build._manager(TOKEN), TOKEN, TAG, first, mine,
                                       said.append)
    assert mine not in droplet_ids(sim) and theirs in droplet_ids(sim)
    assert said == [f"deleted droplet {first} ({mine})"]


def test_a_numeric_ssh_key_is_sent_as_its_id(sim: Simulation) -> None:
    """droplet_create.yml (tests/data/digitalocean-openapi): ``ssh_keys`` items are "the IDs
    or fingerprints" (integer or string); terraform-provider-digitalocean's
    resource_droplet.go sends one that parses as a number (``strconv.Atoi``) as the id, so
    a key the file gives by id reaches the API as a number, as for Terraform's droplets."""
    def edit(doc: dict[str, object]) -> None:
        keys = doc["digitalocean"]["ssh_keys"]  # type: ignore[index]
        keys.append("41000001")
    sim.write_config(edit=edit)
    with DropletPlayer(sim, power_off=True) as player:
        result = sim.run("image", "build", str(sim.config))
    assert result.code == 0, result.stderr
    (body,) = [r.body for r in sim.api.requests("POST", "/v2/droplets")]
    assert body["ssh_keys"][-1] == 41000001
    assert all(isinstance(k, str) and ":" in k for k in body["ssh_keys"][:-1])
    assert body["image"] == "ubuntu-24-04-x64"
    assert player.seen
