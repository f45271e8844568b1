"""One writer at a time in a work folder: an exclusive ``flock`` on its ``provision.lock``.

Every command that changes an environment (``plan``, which renders, makes the secrets on
first use and writes plan files; ``up``; ``destroy``; ``deploy``; ``rollback``) holds the
lock for its whole run, so two runs can never interleave their plans and applies. A second
run is refused at once, told who holds the folder (user@host, pid, command) and since when.

The kernel drops a ``flock`` when its holder's file descriptor closes, including when the
process dies however it dies (SIGKILL, a crash, a reboot), so a lock is never stale and
nobody ever has to delete a lock file. The file itself stays: deleting it would let a
waiter lock the old, unlinked file while a newcomer locks a new one. Released, it is
emptied, so what it says is always the current holder.

Terraform's own state lock still guards the state (and is the only guard for remote state
shared by several machines); this lock guards everything else in the folder.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from provisioner.errors import EXIT_POLICY, ProvisionError, WorkdirError

LOCK_FILE = "provision.lock"


class Busy(ProvisionError):
    """Another run holds the work folder; nothing was done (exit 3, a refusal)."""

    exit_code = EXIT_POLICY


def _who() -> str:
    from provisioner.workloads.windows import who_am_i

    return who_am_i()


def _describe(root: Path, text: str) -> str:
    try:
        holder = json.loads(text)
        by = (f"`provision {holder['command']}` (pid {holder['pid']}, {holder['who']}) "
              f"since {holder['since']}")
    except (ValueError, TypeError, KeyError):
        # Between taking the lock and writing its record the holder is nameless.
        by = "another provision run"
    return (f"the work folder {root} is in use by {by}: one run at a time may change an "
            "environment; wait for that run to finish, then run this command again")


@contextmanager
def exclusive(root: Path, command: str) -> Iterator[None]:
    """Hold ``root``'s lock while the block runs, or raise :class:`Busy` at once."""
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
                     | os.O_NONBLOCK, 0o600)
    except OSError as e:
        raise WorkdirError(f"cannot lock the work folder {root}: {e.strerror}") from e
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # a FIFO opens, then cannot be truncated
        os.close(fd)
        raise WorkdirError(f"cannot lock the work folder {root}: {root / LOCK_FILE} is not a "
                           "regular file (remove it; provision makes it again)")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(_describe(root, os.pread(fd, 4096, 0).decode(errors="replace"))) from None
        since = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        record = json.dumps({"command": command, "pid": os.getpid(), "who": _who(),
                             "since": since})
        os.ftruncate(fd, 0)
        os.pwrite(fd, record.encode() + b"\n", 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # releases the lock
