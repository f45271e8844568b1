"""How `provision dashboard` hands the login token over when the clipboard tool hangs.

The clipboard tool is a real child process (the subprocess boundary) that never reads its
stdin nor exits, as `xclip` does when the X server it was pointed at never answers.
"""

from __future__ import annotations

import io
import sys

import pytest

from provisioner import dashboard
from provisioner.errors import ProvisionError

SECRET = "eyJhbGciOiJSUzI1NiJ9.secret-token-value"
HANGS = [sys.executable, "-c", "import time; time.sleep(600)"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def _token() -> dashboard.Token:
    return dashboard.Token("headlamp-view", SECRET, "2026-12-07T11:00:00Z")


def test_a_hanging_clipboard_tool_falls_back_to_the_terminal(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """subprocess.run(timeout=...) kills the child and raises TimeoutExpired (Python's
    Lib/subprocess.py, `run`); before the fix that escaped as an `internal error`."""
    monkeypatch.setattr(dashboard, "CLIPBOARD_SECONDS", 1.0, raising=False)
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    said: list[str] = []
    dashboard.deliver(_token(), HANGS, said.append)
    assert terminal.getvalue() == SECRET + "\n"  # once, on the terminal only
    assert any("could not take the login token" in s and "no answer in 1 s" in s
               for s in said), said
    assert all(SECRET not in s for s in said)


def test_without_a_terminal_a_hanging_clipboard_tool_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dashboard, "CLIPBOARD_SECONDS", 1.0, raising=False)
    pipe = Pipe()
    monkeypatch.setattr(sys, "stderr", pipe)
    with pytest.raises(ProvisionError) as raised:
        dashboard.deliver(_token(), HANGS, lambda _: None)
    assert "could not take the login token (no answer in 1 s)" in str(raised.value)
    assert SECRET not in str(raised.value) and SECRET not in pipe.getvalue()
