"""Real etcd members on 127.0.0.1 for the backup tests (Debian's etcd-server/etcd-client).

Each member listens on ports the OS just handed out (bound to port 0, then released: the
short race with another process is retried once), with its own data folder, and is
stopped (SIGTERM, then SIGKILL) when the block ends. etcd 3.4's etcdctl speaks API v3 by
default; `snapshot restore` is etcdctl's in 3.4 (etcd 3.5 moved it to etcdutl).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

ETCD = shutil.which("etcd") or "/usr/bin/etcd"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"
MAX_TXN_OPS = 128  # etcd's default --max-txn-ops


def available() -> bool:
    return Path(ETCD).is_file() and Path(ETCDCTL).is_file()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@dataclass
class Member:
    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def etcdctl_command(self) -> list[str]:
        return [ETCDCTL, "--endpoints", self.client_url, "--dial-timeout", "10s",
                "--command-timeout", "60s"]

    def etcdctl(self, *args: str, stdin: str | None = None) -> str:
        done = subprocess.run([*self.etcdctl_command(), *args], input=stdin,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, (args, done.stderr)
        return done.stdout

    def put_many(self, items: Sequence[tuple[str, str]]) -> None:
        """Write every pair with etcdctl, MAX_TXN_OPS puts per transaction."""
        for start in range(0, len(items), MAX_TXN_OPS):
            batch = items[start:start + MAX_TXN_OPS]
            # txn -i reads: compares, blank line, success requests, blank line, failure ones.
            script = "\n" + "".join(f"put {k} {v}\n" for k, v in batch) + "\n\n"
            self.etcdctl("txn", stdin=script)

    def get_prefix(self, prefix: str) -> dict[str, str]:
        import base64

        out = json.loads(self.etcdctl("get", prefix, "--prefix", "-w", "json"))
        return {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode()
                for kv in out.get("kvs") or []}

    def is_leader(self) -> bool:
        status = json.loads(self.etcdctl("endpoint", "status", "-w", "json"))[0]["Status"]
        return bool(status["leader"] == status["header"]["member_id"])


def _start(member: Member, cluster: str, log: Path) -> None:
    with log.open("ab") as output:
        member.process = subprocess.Popen(
            [ETCD, "--name", member.name, "--data-dir", str(member.data_dir),
             "--listen-client-urls", member.client_url, "--advertise-client-urls",
             member.client_url, "--listen-peer-urls", member.peer_url,
             "--initial-advertise-peer-urls", member.peer_url, "--initial-cluster", cluster,
             "--initial-cluster-token", "provision-test", "--initial-cluster-state", "new",
             "--heartbeat-interval", "100", "--election-timeout", "1000"],
            stdout=output, stderr=subprocess.STDOUT)


def _wait_healthy(member: Member, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert member.process is not None
        if member.process.poll() is not None:
            raise RuntimeError(f"etcd {member.name} exited: {log.read_text()[-2000:]}")
        done = subprocess.run([*member.etcdctl_command(), "endpoint", "health"],
                              capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"etcd {member.name} not healthy: {done.stderr}")
        time.sleep(0.2)


def _stop(member: Member) -> None:
    if member.process is None or member.process.poll() is not None:
        return
    member.process.terminate()
    try:
        member.process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        member.process.kill()
        member.process.wait(timeout=30)


@contextmanager
def etcd_cluster(folder: Path, size: int = 1, snapshot: Path | None = None
                 ) -> Iterator[list[Member]]:
    """`size` members forming one cluster, healthy when the block starts; with `snapshot`,
    one member whose data folder `etcdctl snapshot restore` made from it."""
    count = 1 if snapshot else size
    folder.mkdir(parents=True, exist_ok=True)
    for attempt in range(2):
        ports = _free_ports(2 * count)
        tag = "restored" if snapshot else "new"
        members = [Member(f"m{i}", ports[2 * i], ports[2 * i + 1],
                          folder / f"m{i}-{tag}-{attempt}.etcd") for i in range(count)]
        cluster = ",".join(f"{m.name}={m.peer_url}" for m in members)
        if snapshot:
            restore(snapshot, members[0].data_dir, members[0])
        with ExitStack() as stack:
            for m in members:
                stack.callback(_stop, m)
                _start(m, cluster, folder / f"{m.name}.log")
            try:
                for m in members:
                    _wait_healthy(m, folder / f"{m.name}.log")
            except RuntimeError:
                if attempt == 0 and "address already in use" in "".join(
                        (folder / f"{m.name}.log").read_text() for m in members):
                    continue
                raise
            yield members
            return


def restore(snapshot: Path, data_dir: Path, member: Member) -> None:
    """`etcdctl snapshot restore` (3.4) into `data_dir` as a one-member cluster of `member`."""
    done = subprocess.run(
        [ETCDCTL, "snapshot", "restore", str(snapshot), "--data-dir", str(data_dir),
         "--name", member.name, "--initial-cluster", f"{member.name}={member.peer_url}",
         "--initial-advertise-peer-urls", member.peer_url,
         "--initial-cluster-token", "provision-restored"],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
