"""The work folder's lock: one writer at a time, held by real processes, never stale.

flock(2) (Linux man-pages): a lock belongs to the open file description; it is released
when every descriptor of it is closed, which the kernel does when the process exits, by
any means (so SIGKILL leaves no stale lock); a conflicting LOCK_NB request fails with
EWOULDBLOCK. The holder here is another process, as a second `provision` run would be.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.errors import EXIT_POLICY, WorkdirError
from provisioner.lock import LOCK_FILE, Busy, exclusive
from tests.support.rendering import ROOT

_HOLDER = """
import sys, time
from pathlib import Path
from provisioner.lock import exclusive
with exclusive(Path(sys.argv[1]), sys.argv[2]):
    print("held", flush=True)
    time.sleep(600)
"""


@contextmanager
def held(root: Path, command: str = "up") -> Iterator[subprocess.Popen[str]]:
    """Another process holding ``root``'s lock until the block ends (then SIGKILLed)."""
    env = {**os.environ, "USER": "alice",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    for name in ("GITHUB_ACTOR", "GITLAB_USER_LOGIN"):
        env.pop(name, None)
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(root), command],
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait(timeout=60)


def test_a_second_writer_is_refused_with_who_holds_the_folder(tmp_path: Path) -> None:
    with held(tmp_path, "up") as holder, pytest.raises(Busy) as refused, \
            exclusive(tmp_path, "destroy"):
        pytest.fail("two writers held one work folder")
    message = str(refused.value)
    assert refused.value.exit_code == EXIT_POLICY == 3
    assert f"the work folder {tmp_path} is in use by `provision up` (pid {holder.pid}, " \
           "alice@" in message
    assert " since 20" in message and " UTC" in message
    assert "wait for that run to finish" in message


def test_a_killed_holder_leaves_no_stale_lock(tmp_path: Path) -> None:
    with held(tmp_path) as holder:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
        with exclusive(tmp_path, "up"):  # taken at once: the kernel released it
            record = json.loads((tmp_path / LOCK_FILE).read_text())
            assert record["pid"] == os.getpid() and record["command"] == "up"
    assert (tmp_path / LOCK_FILE).read_text() == "", "a released lock names nobody"


def test_commands_that_write_the_work_folder_are_refused_while_it_is_held(
        tmp_path: Path) -> None:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    workdir = tmp_path / ".provision" / "prod"
    kubeconfig = tmp_path / "kubeconfig"  # never contacted: the lock is refused first
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "c",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}))
    runner = CliRunner()
    with held(workdir, "up"):
        for args in (["plan", str(config), "--offline"],
                     ["deploy", str(config), "--kubeconfig", str(kubeconfig)],
                     ["rollback", str(config), "--kubeconfig", str(kubeconfig)]):
            result = runner.invoke(cli, args)
            assert result.exit_code == 3, (args, result.output)
            assert "is in use by `provision up`" in result.stderr, args
        assert not (workdir / "secrets").exists(), "nothing was written"
        # Reading is never refused.
        assert runner.invoke(cli, ["validate", str(config)]).exit_code == 0
    assert runner.invoke(cli, ["plan", str(config), "--offline"]).exit_code == 0


@pytest.mark.parametrize("kind", ["fifo", "folder", "symlink"])
def test_a_lock_file_that_is_not_a_regular_file_is_a_clear_refusal(tmp_path: Path,
                                                                    kind: str) -> None:
    """A FIFO where provision.lock belongs opens (O_RDWR on a FIFO does not block, fifo(7))
    and flock(2) takes it, but ftruncate(2) then fails with EINVAL ("fd does not reference
    a regular file"): that was an `internal error: OSError`."""
    root = tmp_path / "work"
    root.mkdir()
    lock = root / LOCK_FILE
    if kind == "fifo":
        os.mkfifo(lock)
    elif kind == "folder":
        lock.mkdir()
    else:
        (tmp_path / "elsewhere").write_text("keep me\n")
        lock.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(WorkdirError) as refused, exclusive(root, "up"):
        pass
    assert f"cannot lock the work folder {root}" in str(refused.value)
    assert refused.value.exit_code == 2
    if kind == "symlink":
        assert (tmp_path / "elsewhere").read_text() == "keep me\n"
