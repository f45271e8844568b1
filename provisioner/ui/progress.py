"""Live progress from Terraform's ``-json`` events.

On a terminal: one line per finished resource and a status line, redrawn in place, listing
what is still in flight with its elapsed time. Elsewhere (CI logs): plain timestamped lines.
"""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from provisioner.infra.changes import NOUNS

_VERBS = {
    "create": ("creating", "created"),
    "update": ("updating", "updated"),
    "delete": ("destroying", "destroyed"),
    "replace": ("replacing", "replaced"),
    "read": ("reading", "read"),
}


def _elapsed(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m {seconds % 60:02d}s" if seconds >= 60 else f"{seconds} s"


class Progress:
    """Turns Terraform events into messages on ``stream`` (stderr by default)."""

    def __init__(self, names: dict[str, str] | None = None, stream: TextIO | None = None,
                 live: bool | None = None, verbose: bool = False,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.names = names or {}
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.verbose = verbose
        self.clock = clock
        self.started = clock()
        self.in_flight: dict[str, tuple[str, float]] = {}
        self.done: dict[str, int] = {"create": 0, "update": 0, "delete": 0, "replace": 0}
        self.failed: list[str] = []
        self._status_shown = False

    def label(self, resource: dict[str, Any]) -> str:
        """``droplet prod-cp-1`` for a hook's resource."""
        address = resource.get("addr", "?")
        noun = NOUNS.get(resource.get("resource_type", ""), resource.get("resource_type", ""))
        name = self.names.get(address)
        return f"{noun} {name}" if name and name != address else f"{noun} {address}"

    def _print(self, message: str) -> None:
        self._clear_status()
        if self.live:
            self.stream.write(f"{message}\n")
        else:
            stamp = dt.datetime.now().strftime("%H:%M:%S")
            self.stream.write(f"[{stamp}] {message}\n")
        self.stream.flush()
        self._draw_status()

    def _clear_status(self) -> None:
        if self.live and self._status_shown:
            self.stream.write("\r\x1b[K")
            self._status_shown = False

    def _draw_status(self) -> None:
        if not self.live or not self.in_flight:
            return
        now = self.clock()
        items = ", ".join(f"{label} {_elapsed(now - start)}"
                          for label, start in list(self.in_flight.values())[:4])
        more = len(self.in_flight) - 4
        text = f"  ... {items}" + (f" and {more} more" if more > 0 else "")
        self.stream.write("\r\x1b[K" + text[:200])
        self.stream.flush()
        self._status_shown = True

    def __call__(self, event: dict[str, Any]) -> None:
        """Handle one event (the runner's ``on_event``)."""
        kind = event.get("type")
        hook = event.get("hook") or {}
        resource = hook.get("resource") or {}
        address = resource.get("addr", "")
        action = hook.get("action", "")
        verbs = _VERBS.get(action, (action, action))
        if action == "read" and not self.verbose:
            return  # data sources are read on every plan: not news
        if kind == "apply_start":
            label = self.label(resource)
            self.in_flight[address] = (label, self.clock())
            self._print(f"{verbs[0]} {label}...")
        elif kind == "apply_progress":
            self._clear_status()
            self._draw_status()
        elif kind == "apply_complete":
            label, _ = self.in_flight.pop(address, (self.label(resource), self.clock()))
            self.done[action] = self.done.get(action, 0) + 1
            self._print(f"{verbs[1]} {label} ({_elapsed(hook.get('elapsed_seconds', 0))})")
        elif kind == "apply_errored":
            label, _ = self.in_flight.pop(address, (self.label(resource), self.clock()))
            self.failed.append(label)
            self._print(f"failed {verbs[0]} {label} after "
                        f"{_elapsed(hook.get('elapsed_seconds', 0))}")
        elif kind == "diagnostic" and event["diagnostic"].get("severity") == "warning":
            self._print(f"warning: {event['diagnostic'].get('summary', '')}")
        elif kind == "provision_interrupt":
            self._print("interrupt: asking Terraform to stop gracefully (it finishes what is in "
                        "flight and saves state)...")
        elif kind == "state_lock_acquire":
            # Terraform says this only once taking the lock is slow: someone else holds it.
            self._print("waiting for the state lock: another provision or terraform run holds "
                        "it (waiting up to 10 minutes)...")
        elif kind in ("refresh_start", "log", "text", "version") and self.verbose:
            self._print(str(event.get("@message", "")).strip())

    def summary(self) -> str:
        """``12 created, 0 changed, 0 destroyed in 1m 34s``."""
        elapsed = _elapsed(self.clock() - self.started)
        parts = [f"{self.done['create']} created", f"{self.done['update']} changed",
                 f"{self.done['replace']} replaced", f"{self.done['delete']} destroyed"]
        text = ", ".join(parts) + f" in {elapsed}"
        if self.failed:
            text += f"; failed: {', '.join(self.failed)}"
        return text

    def close(self) -> None:
        """Remove the status line."""
        self._clear_status()
        self.stream.flush()
