"""Hostile operator checks of `provision restore` in the simulated world.

Each test here is a break a hostile-operator review found; each failed before its fix.
The world and its drill are tests/e2e/test_restore.py's (``backed_up``: the production
example up, deployed, one snapshot in the fake Spaces bucket).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from provisioner.bootstrap import readiness
from tests.e2e.test_restore import backed_up, disaster, droplet_ids
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.compute import user_data
from tests.support import kubeadm

pytestmark = [pytest.mark.integration]


def _restore_values(state: Path) -> dict[str, str]:
    """RESTORE_URL/KEY/SHA256 as the first control-plane droplet's metadata serves them."""
    data = Cloud(state).snapshot()
    for _rid, droplet in data.get("resources", {}).get("digitalocean_droplet", {}).items():
        if str(droplet["name"]).endswith("-cp-1"):
            config = kubeadm.read_user_data(user_data(data, droplet["id"]))
            if config is not None and config.restore.get("RESTORE_URL"):
                return config.restore
    raise AssertionError("no restoring droplet")


def test_hostile_restore_of_a_healthy_cluster_says_it_answers_before_asking(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster is healthy (every node Ready, the API answers): an operator who runs
    restore on the wrong environment, or on a cluster that recovered by itself, must be told
    so before the question, not only the generic "This destroys every control-plane
    droplet" text that a dead cluster gets too. Declined here: nothing changes."""
    asked: list[str] = []
    import provisioner.cli.restore as cli_restore

    monkeypatch.setattr(cli_restore, "require_terminal_or_yes", lambda yes, verb: None)
    def declines(question: str, yes: bool) -> bool:
        asked.append(question)
        return False

    monkeypatch.setattr(cli_restore, "ask", declines)
    with backed_up(tmp_path, monkeypatch) as (w, s3, old, _ident):
        before = droplet_ids(w)
        declined = w.provision("restore", str(w.sim.config), "--snapshot", "latest")
        assert declined.code == 1, declined.stderr
        assert asked and droplet_ids(w) == before and w.boot.kube is old
        assert not s3.keys("production/restore/")
        output = declined.stderr + declined.stdout
        # What a careful operator needs to read before answering.
        assert any(word in output.lower() for word in ("healthy", "answers", "is running")), \
            output


def test_hostile_rerun_after_ctrl_c_while_waiting_keeps_the_booting_node(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C while `restore` waits for the API (the apply is done, the first new droplet
    is still in cloud-init: minutes on DigitalOcean), then the rerun the README asks for.
    Today the rerun finds the API silent and "starts it over": it deletes the staged copy
    the booting node is about to download and replaces every control-plane droplet again,
    so an impatient operator can never finish. The rerun should wait for the node the
    first run made (it is the one restoring), not destroy it."""
    with backed_up(tmp_path, monkeypatch) as (w, _s3, _old, ident):
        config = str(w.sim.config)
        disaster(w)
        w.boot.node_delay = 15.0  # cloud-init, packages, containerd: the node is not up yet
        real_wait = readiness.wait_for_api
        calls: list[int] = []

        def interrupted(*args: Any, **kwargs: Any) -> None:
            calls.append(1)
            if len(calls) == 1:
                raise KeyboardInterrupt  # the operator's Ctrl-C while waiting
            real_wait(*args, **kwargs)

        monkeypatch.setattr(readiness, "wait_for_api", interrupted)
        first = w.provision("restore", config, "--snapshot", ident, "--yes")
        assert first.code != 0
        record = json.loads((w.sim.workdir / "restore.json").read_text())
        assert record["stage"] == "applied"
        booting = droplet_ids(w)["prod-cp-1"]

        again = w.provision("restore", config, "--snapshot", "latest", "--yes")
        assert again.code == 0, again.stderr
        assert "starting it over" not in again.stderr, again.stderr
        assert droplet_ids(w)["prod-cp-1"] == booting, "the booting node was replaced"


def test_hostile_no_restore_secret_in_the_work_folder_or_output_from_another_cwd(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOLDS (kept as a regression guard). A real process run from another working folder
    with a relative CONFIG (as an operator in a shell), then the presigned URL, its
    signature and the one-time password looked for in every file of the work folder and in
    everything printed."""
    with backed_up(tmp_path, monkeypatch) as (w, s3, _old, _ident):
        disaster(w)
        elsewhere = tmp_path / "elsewhere" / "deeper"
        elsewhere.mkdir(parents=True)
        relative = os.path.relpath(w.sim.config, elsewhere)
        result = w.sim.run_in(elsewhere, "restore", relative, "--snapshot", "latest", "--yes")
        assert result.code == 0, result.stderr
        values = _restore_values(Path(w.sim.env["DO_SIM_STATE"]))
        url, key = values["RESTORE_URL"], values["RESTORE_KEY"]
        signature = url.rsplit("X-Amz-Signature=", 1)[1]
        secrets = {"url": url, "signature": signature, "password": key}
        output = result.stdout + result.stderr
        leaks = [name for name, value in secrets.items() if value in output]
        for path in w.sim.workdir.rglob("*"):
            if path.is_file() and not path.is_symlink():
                body = path.read_bytes()
                leaks += [f"{name} in {path.relative_to(w.sim.workdir)}"
                          for name, value in secrets.items() if value.encode() in body]
        assert not leaks, leaks
        assert not list(elsewhere.iterdir()), "nothing written in the working folder"
        assert not s3.keys("production/restore/")


def test_hostile_ctrl_c_after_the_apply_says_the_control_plane_was_replaced_and_what_next(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C (or a NotReady after 20 minutes) once the apply replaced the control plane:
    today the operator reads only "error: aborted" (the CLI's "nothing more was done"),
    nothing about the droplets already replaced, the staged copy left in the bucket or
    restore.json; a failed apply, by contrast, says "run `provision restore CONFIG` again to
    finish". The waits are outside the try that says it."""
    with backed_up(tmp_path, monkeypatch) as (w, _s3, _old, ident):
        disaster(w)

        def interrupted(*args: Any, **kwargs: Any) -> None:
            raise KeyboardInterrupt

        monkeypatch.setattr(readiness, "wait_for_api", interrupted)
        first = w.provision("restore", str(w.sim.config), "--snapshot", ident, "--yes")
        assert first.code != 0
        output = first.stderr + first.stdout
        assert "provision restore" in output and "again" in output, output


def test_hostile_the_command_named_after_a_failed_apply_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A failed apply says "run `provision restore CONFIG` again to finish": without the
    required --snapshot, which Click refuses (exit 2, "Missing option '--snapshot'"). The
    operator copies the named command; it must be one that runs."""
    import re
    import shlex

    with backed_up(tmp_path, monkeypatch) as (w, _s3, _old, ident):
        disaster(w)
        w.sim.env["DO_SIM_FAIL"] = "digitalocean_droplet:prod-cp-3"
        failed = w.provision("restore", str(w.sim.config), "--snapshot", ident, "--yes")
        assert failed.code == 1, failed.stderr
        del w.sim.env["DO_SIM_FAIL"]
        named = re.findall(r"`(provision restore [^`]*)`", failed.stderr)
        assert named, failed.stderr
        argv = [*shlex.split(named[0])[1:], "--yes"]
        again = w.provision(*argv)
        assert "Missing option" not in again.stderr and again.code != 2, again.stderr


def test_hostile_copy_left_after_a_finished_restore_names_no_second_restore(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The restore finished but deleting the staged copy failed (Spaces refused it): the
    message says "delete it with `provision restore` again", but restore.json is gone by
    then, so `provision restore` again is a whole new restore (every control-plane droplet
    replaced, changes since the snapshot lost). It must name a command that only deletes the
    copy (or the object's key for the operator's s3 tool), never a second restore."""
    from provisioner.cloud.backup_bucket import BackupBucket
    from provisioner.cloud.spaces import SpacesError

    def refused(self: Any, key: str) -> None:
        raise SpacesError(f"cannot delete {key}: AccessDenied")

    with backed_up(tmp_path, monkeypatch) as (w, _s3, _old, ident):
        disaster(w)
        monkeypatch.setattr(BackupBucket, "delete", refused)
        restored = w.provision("restore", str(w.sim.config), "--snapshot", ident, "--yes")
        assert restored.code == 0, restored.stderr
        assert not (w.sim.workdir / "restore.json").exists()
        assert "`provision restore` again" not in restored.stderr, restored.stderr


def test_hostile_429_storm_in_restore_preflight_is_a_clear_cloud_error(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOLDS (kept as a regression guard). The token's hour used up (the CCM, a runaway
    script) when the operator restores: exit 1 with the limit named, nothing staged, no
    record; the next run goes ahead."""
    from tests.fakes.doprovider.ratelimit import Limits

    with backed_up(tmp_path, monkeypatch) as (w, s3, _old, ident):
        disaster(w)
        limiter = w.sim.api.limit_rate(Limits(per_minute=250, per_hour=3))
        result = w.provision("restore", str(w.sim.config), "--snapshot", ident, "--yes")
        assert result.code == 1, result.stderr
        assert "an hour" in result.stderr and "run again" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not s3.keys("production/restore/")
        assert not (w.sim.workdir / "restore.json").exists()
        assert limiter is w.sim.api.limiter
        w.sim.api.limiter = None
        again = w.provision("restore", str(w.sim.config), "--snapshot", ident, "--yes")
        assert again.code == 0, again.stderr


def test_hostile_restore_of_a_one_control_plane_environment(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """HOLDS (kept as a regression guard). One control plane (as examples/staging.yaml):
    the same drill as test_restore.py's."""
    def one_cp(doc: dict[str, Any]) -> None:
        doc["control_plane"]["count"] = 1

    from tests.support.sim import Simulation

    write = Simulation.write_config

    def write_one(self: Simulation, changes: Any = None, example: str = "production",
                  edit: Any = None) -> Path:
        return write(self, changes, example, edit or one_cp)

    monkeypatch.setattr(Simulation, "write_config", write_one)
    with backed_up(tmp_path, monkeypatch) as (w, s3, old, _ident):
        assert [n for n in w.sim.droplet_names() if "-cp-" in n] == ["prod-cp-1"]
        disaster(w)
        restored = w.provision("restore", str(w.sim.config), "--snapshot", "latest", "--yes")
        assert restored.code == 0, restored.stderr
        kube = w.boot.kube
        assert kube is not None and kube is not old and kube.ca_pem == old.ca_pem
        assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is not None
        assert not s3.keys("production/restore/")
