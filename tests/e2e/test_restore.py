"""`provision restore`: the control plane lost, rebuilt from a snapshot, apps back from etcd.

The drill, in the simulated world (tests/e2e/world.py): `up` and `deploy` the production
example, take a snapshot with `provision backup` (the control planes' backup agent, played
by tests/support/upgrades.py with the real agent's pack/seal/PUT, stores a real object in
the fake Spaces bucket: the fake API server's store dump with the cluster's PKI), change
the cluster after it, destroy every control-plane droplet out of band (the disaster: no API
server is left), then `provision restore CONFIG --snapshot latest --yes`. The world plays
the first new droplet's restore as bootstrap.sh does it (download the presigned URL over
HTTP, decrypt, check the SHA-256, etcd from the snapshot, kubeadm init with the CA in its
user-data) and the joins of the others. Run with -s for the time of each stage.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from provisioner.pipeline import backup_now, cluster_stage
from tests.e2e.world import World, world
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.kubeapi import catalog
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.fakes.s3 import FakeS3, fake_s3
from tests.support import clock
from tests.support.rendering import set_workers, workers
from tests.support.upgrades import NodeAgents

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("openssl") is None,
                                 reason="the backup agent seals with the openssl CLI")]

CPS = ["prod-cp-1", "prod-cp-2", "prod-cp-3"]
STAGES = ("verify", "stage copy", "apply", "API answers", "control planes Ready",
          "workers Ready")


@contextmanager
def backed_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
              ) -> Iterator[tuple[World, FakeS3, FakeKubeAPI, str]]:
    """The production example up and deployed, one snapshot in the bucket; its ID."""
    clock.pin(monkeypatch, clock.EARLY_IN_PRODUCTION_WINDOW)
    monkeypatch.setattr(backup_now, "POLL_SECONDS", 0.05)
    # Nodes join within seconds here: a node that does not has failed (say so in minutes).
    monkeypatch.setattr(cluster_stage, "NODES_TIMEOUT", 180.0)
    monkeypatch.setattr(cluster_stage, "API_TIMEOUT", 180.0)
    with world(tmp_path) as w, fake_s3() as s3:
        w.sim.env.update(SPACES_ACCESS_KEY_ID=s3.access_key,
                         SPACES_SECRET_ACCESS_KEY=s3.secret_key)
        w.sim.write_config({"backups": {"bucket": s3.bucket, "region": "fra1",
                                        "endpoint": s3.endpoint, "prefix": "production"}})
        config = str(w.sim.config)
        up = w.provision("up", config, "--yes")
        assert up.code == 0, up.stderr
        deployed = w.provision("deploy", config)
        assert deployed.code == 0, deployed.stderr
        kube = w.boot.kube
        assert kube is not None and w.boot.error is None
        with NodeAgents(kube, pki=w.boot.pki) as agents:
            taken = w.provision("backup", config)
            assert taken.code == 0, taken.stderr
        assert not agents.errors, agents.errors
        assert len(agents.uploaded) == 1 and s3.keys("production/hourly/") == agents.uploaded
        ident = agents.uploaded[0].rsplit("/", 1)[1].removesuffix(".pbk")
        yield w, s3, kube, ident
        assert w.boot.error is None


def disaster(w: World) -> None:
    """Every control-plane droplet destroyed outside provision; no API server is left."""
    with Cloud(Path(w.sim.env["DO_SIM_STATE"])).transaction() as account:
        table = account.table("digitalocean_droplet")
        for rid in [k for k, d in table.items() if "-cp-" in d["name"]]:
            account.delete("digitalocean_droplet", rid)
    deadline = time.monotonic() + 30
    while w.boot.kube is not None:
        assert time.monotonic() < deadline, "the world's API server still answers"
        time.sleep(0.05)


def droplet_ids(w: World) -> dict[str, str]:
    return {str(d["name"]): str(d["id"]) for d in w.sim.resources("digitalocean_droplet")}


def assert_current_nodes(w: World, kube: FakeKubeAPI) -> None:
    """Every control-plane Node is its current droplet's: providerID
    digitalocean://<id> of the droplet of its name now (the first node deleted the
    snapshot's stale ones, its own included, before any other joined)."""
    ids = droplet_ids(w)
    planes = {n["metadata"]["name"]: n["spec"].get("providerID")
              for n in kube.objects("v1", "Node")
              if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]}
    assert planes == {name: f"digitalocean://{ids[name]}" for name in CPS}, planes


def stage_times(output: str) -> dict[str, float]:
    """The restore's summary: `  <stage>  <seconds> s` per stage."""
    return {m[1]: float(m[2]) for m in re.finditer(r"^  (\S.*?)\s{2,}\s*([0-9.]+) s$",
                                                     output, re.M)}


def test_restore_brings_back_the_control_plane_and_the_apps_on_the_same_endpoint_and_ca(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with backed_up(tmp_path, monkeypatch) as (w, s3, old, ident):
        config = str(w.sim.config)
        workers_before = {n["metadata"]["name"] for n in old.objects("v1", "Node")} - set(CPS)
        kubeconfig = (w.sim.workdir / "kubeconfig").read_bytes()
        endpoint = json.loads((w.sim.workdir / "infrastructure.json").read_text())[
            "api_endpoint"]
        assert old.get("apps/v1", "Deployment", "api-blue", "prod") is not None
        # Changed after the snapshot: lost by the restore.
        old.registry.delete(catalog.get("apps/v1", "Deployment"), "prod", "api-blue")
        sts = old.get("apps/v1", "StatefulSet", "elasticsearch", "prod")
        assert sts is not None and sts["spec"]["replicas"] == 3
        changed = json.loads(json.dumps(sts))
        changed["spec"]["replicas"] = 1
        old.registry.commit(catalog.get("apps/v1", "StatefulSet"), sts, changed, "kubectl")

        # Another cluster's snapshot (another CA), under this environment's prefix: refused
        # before anything changes. And an unknown ID names the ones there are.
        before = droplet_ids(w)
        foreign = foreign_snapshot(w, s3, tmp_path)
        refused = w.provision("restore", config, "--snapshot", foreign, "--yes")
        assert refused.code == 2, refused.stderr
        assert "its PKI is not this cluster's" in refused.stderr
        unknown = w.provision("restore", config, "--snapshot", "20260101T000000Z-prod-cp-1",
                              "--yes")
        assert unknown.code == 2, unknown.stderr
        assert "no such snapshot" in unknown.stderr and ident in unknown.stderr
        assert "provision backup" in unknown.stderr and "--list" in unknown.stderr
        assert droplet_ids(w) == before and w.boot.kube is old
        assert not s3.keys("production/restore/")
        assert not (w.sim.workdir / "restore.json").exists()
        declined(w, monkeypatch, ident)
        assert droplet_ids(w) == before and w.boot.kube is old

        disaster(w)
        # What a restore killed (SIGKILL) while verifying leaves: the plaintext snapshot.
        killed = w.sim.workdir / ".restore-k1ll3d"
        killed.mkdir(mode=0o700)
        (killed / "snapshot.db").write_bytes(b"every Secret of the cluster")
        # Outside the deploy windows: a restore is a recovery, not held back.
        clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
        started = time.monotonic()
        restored = w.provision("restore", config, "--snapshot", "latest", "--yes")
        seconds = time.monotonic() - started
        assert restored.code == 0, (f"{restored.stderr}\nrefused: {w.boot.refused}\n"
                                    f"world: {w.boot.error!r}")
        output = restored.stderr + restored.stdout
        assert "not held back by the windows" in output
        assert f"snapshot {ident} verified" in output
        kube = w.boot.kube
        assert kube is not None and kube is not old and w.boot.error is None
        # The same endpoint and CA, through the very kubeconfig provision held before.
        assert (w.sim.workdir / "kubeconfig").read_bytes() == kubeconfig
        assert kube.ca_pem == old.ca_pem and kube.rest.server_address == f"{endpoint}:6443"
        # The apps as the snapshot had them.
        assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is not None
        sts = kube.get("apps/v1", "StatefulSet", "elasticsearch", "prod")
        assert sts is not None and sts["spec"]["replicas"] == 3
        # Every control plane Ready (the others joined the restored one), workers still.
        nodes = {n["metadata"]["name"]: n for n in kube.objects("v1", "Node")}
        assert set(CPS) <= nodes.keys() and workers_before <= nodes.keys()
        assert all(any(c["type"] == "Ready" and c["status"] == "True"
                       for c in n["status"]["conditions"]) for n in nodes.values())
        assert len(w.boot.restored) == 1 and not w.boot.second_inits
        assert sorted(n for n in w.sim.droplet_names() if "-cp-" in n) == CPS
        # The world adds a joiner's etcd member right after its Node (kubeadm join).
        kube.wait_for(lambda: kube.etcd.names() == CPS, timeout=30)
        assert_current_nodes(w, kube)
        assert "3/3 control planes Ready, each its current droplet's" in output
        assert not s3.keys("production/restore/"), "the staged copy is deleted"
        assert not (w.sim.workdir / "restore.json").exists()
        assert not killed.exists() and not list(w.sim.workdir.glob(".restore-*"))
        history = json.loads((w.sim.workdir / "restores.json").read_text())
        assert [h["snapshot"] for h in history] == [ident]
        status = w.provision("status", config)
        assert status.code == 0, status.stderr

        times = stage_times(output)
        assert set(STAGES) <= times.keys(), output
        print(f"\nrestore drill: {seconds:.1f} s in all; per stage: "
              + ", ".join(f"{s} {times[s]:.1f} s" for s in STAGES))


def declined(w: World, monkeypatch: pytest.MonkeyPatch, ident: str) -> None:
    """A restore answered "no" at its confirmation (past the verified snapshot, the staged
    copy and the plan) leaves the work folder's join credentials byte-identical: the
    running cluster never issued fresh ones, and `up` would hand them to new droplets."""
    from provisioner.infra.engine import resolve
    from provisioner.pipeline import restore as core
    from provisioner.ui.progress import Progress

    tokens = w.sim.workdir / "secrets" / "bootstrap.json"
    before = tokens.read_bytes()
    for name, value in w.sim.env.items():  # what the CLI runs with in this world
        monkeypatch.setenv(name, value)
    asked: list[str] = []

    def confirm(plan: object, prepared: object, lost: str) -> bool:
        asked.append(lost)
        return False

    with pytest.raises(core.RestoreDeclined):
        core.restore(w.sim.config, None, resolve(None), ident, lambda plan, prepared: None,
                     confirm, lambda names: Progress(names))
    assert asked and "destroys every control-plane droplet" in asked[0]
    assert tokens.read_bytes() == before
    assert not (w.sim.workdir / "restore.json").exists()


def foreign_snapshot(w: World, s3: FakeS3, tmp_path: Path) -> str:
    """An object the agent would make on another cluster (its own CA), sealed to this
    environment's recipient key and stored under this environment's prefix."""
    from provisioner.agents import etcd_backup
    from provisioner.bootstrap.backup_keys import recipient_of
    from provisioner.bootstrap.pki import make_secrets
    from provisioner.config import load_environment
    from provisioner.pipeline.backup_fetch import held_secrets

    ours = held_secrets(w.sim.config, load_environment(w.sim.config), None)
    other = make_secrets("other")
    ident = "20260303T030000Z-prod-cp-1"
    work = tmp_path / "foreign"
    (work / "pki" / "etcd").mkdir(parents=True)
    for name, pem in {"ca.crt": other.ca_crt_pem, "ca.key": other.ca_key_pem,
                      **other.shared}.items():
        (work / "pki" / name).write_bytes(pem)
    db = work / "snapshot.db"
    db.write_bytes(os.urandom(4096))
    meta = {"format": etcd_backup.FORMAT, "environment": "prod", "id": ident,
            "taken_at": "2026-03-03T03:00:00Z", "node": "prod-cp-1",
            "snapshot_sha256": etcd_backup.file_sha256(db), "snapshot_bytes": 4096}
    etcd_backup.pack(db, meta, work / "pki", work / "archive.tar.gz")
    recipient = recipient_of(ours)
    assert recipient is not None
    etcd_backup.seal(work / "archive.tar.gz", work / "object.pbk", recipient,
                     {"id": ident, "environment": "prod", "taken_at": meta["taken_at"]}, work)
    s3.put(f"production/hourly/{ident}.pbk", (work / "object.pbk").read_bytes())
    return ident


def test_an_interrupted_restore_is_finished_by_the_next_run_without_a_second_restore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The apply fails on prod-cp-3 (the fake provider's injected create failure, an API
    error as DigitalOcean's): exit 1, the copy stays for the first node. The next run
    comes at once, while the first node is still booting (``node_delay``: cloud-init
    takes minutes on a droplet): it waits for the API instead of judging from one probe,
    finds the cluster answering as restored, creates prod-cp-3 and replaces prod-cp-2, which
    the failed apply left tainted (the most common apply failure: its wait until active
    failed), and never replaces the restored node again (no second apply of the
    restore)."""
    with backed_up(tmp_path, monkeypatch) as (w, s3, _old, ident):
        config = str(w.sim.config)
        disaster(w)
        w.boot.node_delay = 6.0
        w.sim.env["DO_SIM_FAIL"] = "digitalocean_droplet:prod-cp-3"
        failed = w.provision("restore", config, "--snapshot", ident, "--yes")
        assert failed.code == 1, failed.stderr
        assert "prod-cp-3" in failed.stderr and "stays" in failed.stderr
        assert json.loads((w.sim.workdir / "restore.json").read_text())["stage"] == "applying"
        assert w.boot.kube is None, "the rerun comes before the first node answers"
        first, second = droplet_ids(w)["prod-cp-1"], droplet_ids(w)["prod-cp-2"]
        staged = s3.keys("production/restore/")
        del w.sim.env["DO_SIM_FAIL"]
        taint(w, "digitalocean_droplet.controllers[1]")  # the apply's other failure

        again = w.provision("restore", config, "--snapshot", "latest", "--yes")
        assert again.code == 0, (f"{again.stderr}\nrefused: {w.boot.refused}\n"
                                 f"world: {w.boot.error!r}")
        assert "before judging whether it came back" in again.stderr
        assert "finishing that restore (no second one)" in again.stderr
        assert "starting it over" not in again.stderr
        ids = droplet_ids(w)
        assert ids["prod-cp-1"] == first, "the restored node was kept"
        assert ids["prod-cp-2"] != second, "the tainted one replaced"
        assert w.boot.restored == [first] and not w.boot.second_inits
        assert len(staged) == 1, "one copy staged, by the first run only"
        kube = w.boot.kube
        assert kube is not None
        try:
            kube.wait_for(lambda: kube.etcd.names() == CPS, timeout=30)
        except TimeoutError:
            raise AssertionError(f"etcd: {kube.etcd.names()}, refused: {w.boot.refused}, "
                                 f"ids: {w.boot.etcd_ids}, joined: {w.boot.joined}") from None
        assert not s3.keys("production/restore/")
        assert not (w.sim.workdir / "restore.json").exists()


def taint(w: World, address: str) -> None:
    """Leave ``address`` tainted in the state, as Terraform leaves a droplet whose create
    succeeded and whose wait until active failed (`terraform taint` writes the same
    "tainted" status; the fake provider taints only under its rate limits, which cannot
    single out one droplet)."""
    from provisioner.infra import runner
    from provisioner.infra.engine import resolve
    from tests.support.sim import TOKEN

    env = runner.base_env({**w.sim.env, "DIGITALOCEAN_TOKEN": TOKEN})
    done = runner.run(resolve(None), ["taint", address], w.sim.workdir / "terraform", env)
    assert done.returncode == 0, done


def test_a_restore_of_a_live_cluster_is_resumed_past_a_transient_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The old cluster answers, so the restore marks it (restore_marker.py) before the
    apply, which fails on prod-cp-3. A rerun whose marker read fails (the restored API
    answering 500: a failover, a restart) cannot tell the restored cluster from the old
    one: exit 1, nothing changed, never a second restore. The next rerun finds the
    restored cluster (no marker) and creates prod-cp-3; prod-cp-1 is kept."""
    with backed_up(tmp_path, monkeypatch) as (w, s3, old, ident):
        config = str(w.sim.config)
        w.sim.env["DO_SIM_FAIL"] = "digitalocean_droplet:prod-cp-3"
        failed = w.provision("restore", config, "--snapshot", ident, "--yes")
        assert failed.code == 1, failed.stderr
        record = json.loads((w.sim.workdir / "restore.json").read_text())
        assert record["stage"] == "applying" and record["marked"] is True
        del w.sim.env["DO_SIM_FAIL"]
        deadline = time.monotonic() + 60
        while not w.boot.restored or w.boot.kube is None:
            assert time.monotonic() < deadline, w.boot.refused
            time.sleep(0.05)
        kube = w.boot.kube
        assert kube is not old
        first = droplet_ids(w)["prod-cp-1"]
        kube.wait_for(lambda: kube.etcd.names() == CPS[:2], timeout=30)

        kube.inject_error(500, count=20, resource="configmaps")
        unsure = w.provision("restore", config, "--snapshot", "latest", "--yes")
        assert unsure.code == 1, unsure.stderr
        assert "cannot be told now" in unsure.stderr and "run `provision restore" in \
            unsure.stderr
        assert "starting it over" not in unsure.stderr
        assert droplet_ids(w)["prod-cp-1"] == first and w.boot.restored == [first]
        assert (w.sim.workdir / "restore.json").exists() and s3.keys("production/restore/")
        with kube._log_lock:
            kube.injections.clear()

        again = w.provision("restore", config, "--snapshot", "latest", "--yes")
        assert "finishing that restore (no second one)" in again.stderr, again.stderr
        assert droplet_ids(w)["prod-cp-1"] == first
        assert w.boot.restored == [first] and not w.boot.second_inits
        if again.code == 3:
            # In this world, Terraform's destroy of the old control planes leaves both
            # firewalls to update (the fake's droplet_ids bookkeeping): refused as drift
            # with the way on, which is followed here.
            assert "run `provision up" in again.stderr, again.stderr
            converged = w.provision("up", config, "--yes")
            assert converged.code == 0, converged.stderr
            again = w.provision("restore", config, "--snapshot", "latest", "--yes")
        assert again.code == 0, (f"{again.stderr}\nrefused: {w.boot.refused}\n"
                                 f"world: {w.boot.error!r}")
        assert droplet_ids(w)["prod-cp-1"] == first
        assert w.boot.restored == [first] and not w.boot.second_inits
        kube = w.boot.kube
        assert kube is not None
        kube.wait_for(lambda: sorted(kube.etcd.names()) == CPS, timeout=30)
        assert_current_nodes(w, kube)
        assert not s3.keys("production/restore/")
        assert not (w.sim.workdir / "restore.json").exists()


def test_a_worker_added_after_the_snapshot_is_named_not_waited_for_and_comes_back_with_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A pool scaled up after the snapshot: the restored cluster has no Node of the new
    worker, and its kubelet, registered once with the cluster before, never registers
    again. The confirmation names it (DigitalOcean's created_at against the snapshot's
    time), the restore does not wait for it (exit 0, named with the way back), and the way
    back works: its droplet deleted, `provision up` creates it again and it joins."""
    import yaml

    with backed_up(tmp_path, monkeypatch) as (w, _s3, _old, ident):
        config = str(w.sim.config)
        time.sleep(1.1)  # created_at has whole seconds: after the snapshot's second
        doc = yaml.safe_load(w.sim.config.read_text())
        set_workers(doc["worker_pools"][0], workers(doc["worker_pools"][0]) + 1)
        partial = w.sim.config.with_suffix(".partial")  # whole, as the world reads it
        partial.write_text(yaml.safe_dump(doc, sort_keys=False))
        partial.replace(w.sim.config)
        before = droplet_ids(w)
        scaled = w.provision("up", config, "--yes")
        assert scaled.code == 0, scaled.stderr
        (late,) = set(droplet_ids(w)) - set(before)
        disaster(w)

        restored = w.provision("restore", config, "--snapshot", ident, "--yes")
        assert restored.code == 0, (f"{restored.stderr}\nrefused: {w.boot.refused}\n"
                                    f"world: {w.boot.error!r}")
        output = restored.stderr + restored.stdout
        # Named in the confirmation, before the apply (and the wait for the API after it).
        assert f"Workers created after the snapshot ({late})" in output, output
        assert output.index("Workers created after the snapshot") < output.index(
            "API server at https://")
        assert f"{late} (no Node in the snapshot (created after it))" in output
        assert f"not back: {late}" in output and "run `provision up" in output
        kube = w.boot.kube
        assert kube is not None and kube.get("v1", "Node", late) is None
        assert_current_nodes(w, kube)

        gone = droplet_ids(w)[late]  # read outside the account's lock
        with Cloud(Path(w.sim.env["DO_SIM_STATE"])).transaction() as account:
            account.delete("digitalocean_droplet", gone)
        back = w.provision("up", config, "--yes")
        assert back.code == 0, (f"{back.stderr}\nrefused: {w.boot.refused}")
        node = kube.get("v1", "Node", late)
        assert node is not None, w.boot.refused
        assert node["spec"]["providerID"] == f"digitalocean://{droplet_ids(w)[late]}"


def test_the_world_refuses_a_copy_whose_sha256_differs(monkeypatch: pytest.MonkeyPatch
                                                       ) -> None:
    """The world's restoring node, as bootstrap.sh: a copy staged by provision's own code,
    downloaded over HTTP through its presigned URL, decrypted, and refused when its SHA-256
    is not the one in restore.env: that droplet never comes up (no API server starts).
    The matching copy is the drill above (and the real script's check:
    tests/integration/test_restore_node.py)."""
    from provisioner.config.model import Backups
    from provisioner.pipeline import restore_staging
    from tests.e2e.world import Bootstrapper
    from tests.support.kubeadm import NodeConfig

    with fake_s3() as s3:
        monkeypatch.setenv("SPACES_ACCESS_KEY_ID", s3.access_key)
        monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", s3.secret_key)
        backups = Backups(s3.bucket, "fra1", s3.endpoint, "production", 3600)
        staged = restore_staging.stage(backups, "20260307T030000Z-prod-cp-1", b"etcd" * 99)
        boot = Bootstrapper(sim=None)  # type: ignore[arg-type]
        config = NodeConfig(True, "abcdef.0123456789abcdef", None, None, True, {}, {
            "RESTORE_URL": staged.url, "RESTORE_KEY": staged.password,
            "RESTORE_SHA256": staged.sha256[::-1]})
        boot._restore({"id": "1", "name": "prod-cp-1"}, config, {})
        assert boot.kube is None and boot.restore_refused == {"1"}
        assert "SHA-256" in boot.refused["prod-cp-1"]
