"""Runs one Terraform command and streams its ``-json`` events as they happen.

Terraform runs in its own session so that a Ctrl-C reaches provision first: provision then
forwards one SIGINT, Terraform finishes what is in flight, writes state and releases its lock,
and only then does provision report the interruption. The child's umask is 077, so state,
plans and lock files it writes are private to the user from the first byte.
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


class Interrupted(ProvisionError):
    """The user interrupted a Terraform run; Terraform stopped gracefully."""

    exit_code = 130


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
    interrupted = False
    previous = signal.getsignal(signal.SIGINT)

    def forward(signum: int, frame: FrameType | None) -> None:
        nonlocal interrupted
        if not interrupted and on_event is not None:
            on_event({"type": "provision_interrupt"})
        interrupted = True
        # One SIGINT asks Terraform to stop gracefully; more would make it abandon state.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)

    in_main = threading.current_thread() is threading.main_thread()
    if in_main:
        signal.signal(signal.SIGINT, forward)
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
            signal.signal(signal.SIGINT, previous)
        if process.poll() is None:  # only when provision itself failed mid-stream
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        reader.join(timeout=5)
    result.stderr = "".join(stderr_lines)
    if interrupted:
        raise Interrupted("interrupted: Terraform stopped gracefully and saved its state; "
                          "run the same command again to converge")
    return result


def base_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment Terraform runs with: the user's, minus chatter, plus ``extra``."""
    env = dict(os.environ)
    env.update({"CHECKPOINT_DISABLE": "1", "TF_IN_AUTOMATION": "1", "TF_INPUT": "0"})
    env.update(extra or {})
    return env
