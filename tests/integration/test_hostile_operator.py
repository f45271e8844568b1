"""A hostile (or unlucky) operator against the ownership, locking and custody rules of issue 13.

Each test drives the real CLI against the simulated account (tests/support/sim.py) and checks
what is left in the account afterwards, not what provision says about it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.doprovider.cloud import Cloud
from tests.support.rendering import example_document, set_workers
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

TABLES = ("digitalocean_droplet", "digitalocean_loadbalancer", "digitalocean_reserved_ip",
          "digitalocean_firewall", "digitalocean_tag", "digitalocean_vpc")


def _write(sim: Simulation, name: str, vpc: str, protected: bool) -> Path:
    doc = example_document("production")
    doc.update(name=name, deploy_policy={}, deletion_protection=protected)
    doc["digitalocean"].update(ssh_keys=sim.fingerprints, vpc_cidr=vpc)
    doc["control_plane"]["count"] = 1
    set_workers(doc["worker_pools"][0], 1)
    path = sim.root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _one_of_each(doc: dict[str, Any]) -> None:
    """One control-plane node and one Terraform-owned worker."""
    doc["control_plane"]["count"] = 1
    set_workers(doc["worker_pools"][0], 1)


def _account(sim: Simulation) -> dict[str, Any]:
    resources = Cloud(Path(sim.env["DO_SIM_STATE"])).snapshot()["resources"]
    return {table: resources.get(table, {}) for table in TABLES}


def test_workdir_of_another_environment_is_refused(tmp_path: Path) -> None:
    """`--workdir` naming another environment's folder: its state is that environment's, so
    a destroy there would destroy the neighbour (past its deletion protection, which only
    the neighbour's own file sets) and an up would rename its droplets into ours."""
    with simulation(tmp_path) as sim:
        prod = _write(sim, "prod", "10.10.0.0/16", protected=True)
        stage = _write(sim, "stage", "10.20.0.0/16", protected=False)
        for config in (prod, stage):
            result = sim.run("up", str(config), "--yes", "--until", "infra")
            assert result.code == 0, result.stderr
        before = _account(sim)
        prods = sim.root / ".provision" / "prod"

        commands = (("destroy", "--yes"), ("up", "--yes", "--until", "infra"), ("plan",),
                    ("plan", "--offline"), ("status",))
        # With the folder's record of its environment, and without it (a folder made before
        # the record existed: its local state's environment tag tells).
        for command in (*commands, None, *commands):
            if command is None:
                (prods / "environment").unlink()
                continue
            result = sim.run(command[0], str(stage), "--workdir", str(prods), *command[1:])
            assert result.code == 2, (command, result.stderr)
            assert "belongs to the environment 'prod'" in result.stderr, result.stderr
            assert "Traceback" not in result.stderr
            assert _account(sim) == before, f"{command[0]} changed the account"
        state = json.loads((prods / "state" / "terraform.tfstate").read_text())
        assert any(r["type"] == "digitalocean_droplet" for r in state["resources"])
        # The folder's own environment still works in it, and records itself again.
        own = sim.run("plan", str(prod), "--workdir", str(prods))
        assert own.code == 0, own.stderr
        assert (prods / "environment").read_text() == "prod\n"


def _ip_request(sim: Simulation, method: str, path: str, body: Any = None) -> None:
    import urllib.request

    from tests.support.sim import TOKEN

    request = urllib.request.Request(
        f"{sim.api.endpoint}{path}", method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 201, 204), response.status


def test_a_recorded_address_now_on_a_neighbours_droplet_is_not_swept(tmp_path: Path) -> None:
    """A reserved IP's only identity is its address (`/v2/reserved_ips/{reserved_ip}`,
    digitalocean/openapi specification/resources/reserved_ips), and "Deleting a reserved IP
    unassigns it and permanently removes it from your account" (docs.digitalocean.com,
    products/networking/reserved-ips/how-to/delete): the address goes back to DigitalOcean's
    pool and may come back to this very account, for another environment. So an address
    recorded in `leftovers.json` (or `infrastructure.json`) proves nothing once a droplet
    that is not ours holds it.

    prod's destroy leaves an extra reserved IP an operator had put on prod-cp-1 (recorded in
    leftovers.json); the operator releases it by hand; stage, next door, gets the same
    address for its API endpoint. prod's `destroy --sweep` must not release it."""
    with simulation(tmp_path) as sim:
        prod = _write(sim, "prod", "10.10.0.0/16", protected=False)
        stage = _write(sim, "stage", "10.20.0.0/16", protected=False)
        assert sim.run("up", str(prod), "--yes", "--until", "infra").code == 0
        [cp] = [d for d in sim.resources("digitalocean_droplet") if d["name"] == "prod-cp-1"]
        extra = sim.api.provider_create("digitalocean_reserved_ip", region=cp["region"],
                                        droplet_id=int(cp["id"]))["ip_address"]

        down = sim.run("destroy", str(prod), "--yes")
        assert down.code == 1, down.stderr
        assert f"floating IP {extra} ({extra})" in down.stderr
        assert f"floating IP:{extra}" in (sim.root / ".provision/prod/leftovers.json").read_text()
        _ip_request(sim, "DELETE", f"reserved_ips/{extra}")  # released in the control panel

        assert sim.run("up", str(stage), "--yes", "--until", "infra").code == 0
        [stage_cp] = [d for d in sim.resources("digitalocean_droplet")
                      if d["name"] == "stage-cp-1"]
        # DigitalOcean hands the address out again: to stage, on its first control-plane node.
        sim.api.provider_create("digitalocean_reserved_ip", region=cp["region"],
                                ip_address=extra, droplet_id=int(stage_cp["id"]))
        before = _account(sim)

        swept = sim.run("destroy", str(prod), "--yes", "--sweep")
        assert "Traceback" not in swept.stderr
        assert _account(sim) == before, "prod's sweep released stage's address"
        assert f"released floating IP {extra}" not in swept.stderr
        assert swept.code == 0, swept.stderr
        assert f"not provably its own): floating IP {extra}" in swept.stderr


def test_a_list_cut_short_by_a_rate_limit_is_read_again(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """python-digitalocean (digitalocean/baseapi.py, `__deal_with_pagination`, 1.16 and
    1.17) follows `links.pages.next` without checking the answer: a 429 on page 2 merges
    the error body into the list and ends it, so the first 200 items come back as if they
    were all. Ownership decided on such a list misses what is on the later pages: the
    destroy said "nothing of the environment is left" and forgot a billed volume."""
    from provisioner.cloud.sweep import leftovers
    from provisioner.config import load_environment
    from tests.support.sim import TOKEN

    with simulation(tmp_path) as sim:
        for key in ("DIGITALOCEAN_END_POINT", "DIGITALOCEAN_TOKEN"):
            if key in sim.env:
                monkeypatch.setenv(key, sim.env[key])
        env = load_environment(sim.config)
        for n in range(200):  # another team's volumes fill the first page (per_page 200)
            sim.api.add_volume(f"pvc-other-{n}", 1, tags=["team:data"])
        time.sleep(1.1)  # created later (the API lists volumes oldest first): on page 2
        ours = sim.api.add_volume("pvc-prod", 10, tags=[f"provision:{env.name}"])

        assert leftovers(env, TOKEN).volumes == [(ours, "pvc-prod")]
        sim.api.faults.throttle_later_pages(1)
        assert leftovers(env, TOKEN).volumes == [(ours, "pvc-prod")]
        assert sim.api.faults.later_pages_throttled == 0, "page 2 was never throttled"


def test_two_work_folders_racing_to_create_one_environment(tmp_path: Path) -> None:
    """Alice and Bob each run `up` for prod from their own checkout (two work folders, two
    locks) at the same moment. Both states are empty and the account holds nothing of prod
    yet, so both pass the second-state check. Creating a tag that exists succeeds, so the
    loser used to create prod's tags, a second floating IP and a second pair of firewalls
    in parallel with the VPC that then failed, and its later destroy deleted the tags the
    winner's droplets carry. The module creates the VPC first: its name is unique in the
    account and its range cannot overlap another's (docs.digitalocean.com reference/api,
    vpcs create), so the loser stops there having created nothing.

    Each create takes 3 s in the fake provider, so both runs plan before either has
    anything to show; if the machine is slow enough that the second run sees the first
    one's droplets, it is refused by the second-state check instead: both ways, the
    account ends up with one environment and the loser's state holds nothing."""
    import subprocess

    with simulation(tmp_path, extra_env={"DO_SIM_LATENCY_MS": "3000"}) as sim:
        sim.write_config({"deploy_policy": {}}, edit=_one_of_each)
        folders = [tmp_path / "alice", tmp_path / "bob"]
        for folder in folders:
            folder.mkdir()
            (folder / "prod.yaml").write_text(sim.config.read_text())
        runs = [sim.popen("up", "prod.yaml", "--yes", "--until", "infra", cwd=folder,
                          stdin=subprocess.DEVNULL) for folder in folders]
        results = [(run.wait(timeout=600), *run.communicate()) for run in runs]
        codes = sorted(code for code, _, _ in results)
        assert codes == [0, 1], results
        [(loser, stderr)] = [(folder, err) for folder, (code, _, err)
                             in zip(folders, results, strict=True) if code == 1]
        assert ("refusing to create 'prod'" in stderr or "digitalocean_vpc.network" in stderr), \
            stderr
        assert len(sim.resources("digitalocean_reserved_ip")) == 1, "a second floating IP"
        assert sorted(f["name"] for f in sim.resources("digitalocean_firewall")) == [
            "prod-controllers", "prod-workers"]
        state = loser / ".provision" / "prod" / "state" / "terraform.tfstate"
        held = json.loads(state.read_text())["resources"] if state.exists() else []
        assert [r["type"] for r in held if r["mode"] == "managed"
                and r["type"].startswith("digitalocean_")] == [], "the loser created something"

        # The loser's state holds at most a local marker (terraform_data), nothing of prod's
        # identity: its destroy, even with --sweep, must not take the winner's environment.
        before = _account(sim)
        tags = {d["name"]: d["tags"] for d in sim.resources("digitalocean_droplet")}
        down = sim.run_in(loser, "destroy", "prod.yaml", "--yes", "--force", "--sweep")
        assert "Traceback" not in down.stderr
        assert down.code == 1, down.stderr
        assert "refusing to destroy 'prod'" in down.stderr, down.stderr
        assert _account(sim) == before
        assert {d["name"]: d["tags"] for d in sim.resources("digitalocean_droplet")} == tags
        assert len(sim.resources("digitalocean_reserved_ip")) == 1


def test_a_destroy_interrupted_after_the_tag_went_still_sweeps_what_was_ours(
        tmp_path: Path) -> None:
    """Ctrl-C during `destroy`, after Terraform deleted the environment's tag: deleting a tag
    untags everything that carries it (digitalocean/openapi tags/tags_delete.yml at
    e4a03ac), so a volume the CSI driver made (tagged `provision:prod`) carries nothing of
    prod any more, and the next destroy never learnt its id (what was ours was only kept in
    memory until the interrupted run ended). It said "nothing of the environment is left"
    (or, with an emptied state, refused to sweep), and the billed volume was forgotten.
    What is ours is recorded in leftovers.json before Terraform runs."""
    import signal
    import subprocess

    with simulation(tmp_path, extra_env={"DO_SIM_LATENCY_MS": "2000"}) as sim:
        sim.write_config({"deploy_policy": {}}, edit=_one_of_each)
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        volume = sim.api.add_volume("pvc-prod", 10, tags=["provision:prod"])

        run = sim.popen("destroy", str(sim.config), "--yes", "--force",
                        stdin=subprocess.DEVNULL)
        assert run.stderr is not None
        lines = []
        for line in run.stderr:
            lines.append(line)
            if "destroyed tag provision:prod (" in line:  # not :controller or :worker
                run.send_signal(signal.SIGINT)
                break
        run.communicate(timeout=300)
        assert run.returncode == 130, "".join(lines)
        [record] = [v for v in sim.resources("digitalocean_volume") if v["id"] == volume]
        assert "provision:prod" not in (record.get("tags") or []), "the tag delete untags"

        again = sim.run("destroy", str(sim.config), "--yes", "--force", "--sweep")
        assert again.code == 0, again.stderr
        assert "deleted volume pvc-prod" in again.stderr, again.stderr
        assert sim.resources("digitalocean_volume") == []


def test_plan_out_never_replaces_the_state_the_secrets_or_the_config(tmp_path: Path) -> None:
    """Terraform writes `-out` wherever it is told. `plan --out` naming the state file, the
    CA key or the environment file (a slip of tab completion) replaced it with a plan
    archive and exited 0: the state and the CA were gone. A saved plan is a zip archive
    with a `tfplan` member (hashicorp/terraform internal/plans/planfile/writer.go,
    `tfplanFilename`), so an earlier plan may be overwritten and nothing else."""
    with simulation(tmp_path) as sim:
        sim.write_config({"deploy_policy": {}}, edit=_one_of_each)
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        notes = tmp_path / "notes.txt"
        notes.write_text("mine\n")
        targets = {
            sim.workdir / "state" / "terraform.tfstate": "inside the work folder",
            sim.workdir / "secrets" / "ca.key": "inside the work folder",
            sim.workdir / "saved.tfplan": "inside the work folder",
            sim.config: "is the environment file itself",
            notes: "exists and is not a saved plan",
        }
        for target, why in targets.items():
            before = target.read_bytes() if target.exists() else None
            result = sim.run("plan", str(sim.config), "--out", str(target))
            assert result.code == 2, (target, result.stderr)
            assert why in result.stderr and "Traceback" not in result.stderr
            assert (target.read_bytes() if target.exists() else None) == before, target

        saved = tmp_path / "prod.tfplan"
        for _ in range(2):  # a plan saved earlier is replaced by the next one
            again = sim.run("plan", str(sim.config), "--out", str(saved))
            assert again.code == 0, again.stderr
        applied = sim.run("up", str(sim.config), "--plan", str(saved), "--yes", "--until",
                          "infra")
        assert applied.code == 0, applied.stderr


def test_destroy_with_another_clusters_kubeconfig_leaves_its_claims(tmp_path: Path) -> None:
    """`provision destroy staging.yaml --kubeconfig ~/.kube/config` with the current context
    on another cluster that also has a namespace of that name: a claim provision never made
    (another team's database volume) must survive."""
    from tests.fakes.kubeapi.server import FakeKubeAPI

    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        sim.write_config({"deploy_policy": {}}, edit=_one_of_each)
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        from provisioner.config import load_environment

        namespace = load_environment(sim.config).namespace
        kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
        kube.create({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                     "metadata": {"name": "their-database", "namespace": namespace},
                     "spec": {"accessModes": ["ReadWriteOnce"],
                              "resources": {"requests": {"storage": "100Gi"}}}})
        kube.create({"apiVersion": "v1", "kind": "Service",
                     "metadata": {"name": "their-lb", "namespace": namespace},
                     "spec": {"type": "LoadBalancer", "selector": {"app": "theirs"},
                              "ports": [{"port": 80}]}})
        kubeconfig = kube.write_kubeconfig(tmp_path / "someone-elses-kubeconfig")
        down = sim.run("destroy", str(sim.config), "--yes", "--force", "--kubeconfig",
                       str(kubeconfig))
        assert down.code == 0, down.stderr
        assert kube.get("v1", "PersistentVolumeClaim", "their-database", namespace) is not None
        assert kube.get("v1", "Service", "their-lb", namespace) is not None
