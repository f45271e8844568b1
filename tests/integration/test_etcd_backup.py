"""The etcd backup agent (provisioner/agents/etcd_backup.py) against a REAL etcd, a fake S3
(moto, over HTTP) and the fake Kubernetes API through the real kubectl.

The restore drill is what an operator would do after losing the control plane: write keys,
let the agent's pass snapshot and upload them, download the object, open it with the
recipient's private key, unpack it, ``etcdctl snapshot restore`` (etcd 3.4's etcdctl; 3.5
moved restore to etcdutl) into a new data folder, start etcd from it, read every key back.

etcd facts relied on (etcd v3.4.23, etcdctl/README.md): ``endpoint status -w json`` gives per
endpoint ``Status.header.member_id`` and ``Status.leader`` (equal on the leader);
``snapshot save`` writes a consistent point-in-time file of the member it talks to; ``txn``
in interactive mode reads compares, success and failure requests separated by blank lines.
The agent's default etcdctl runs in kubeadm's etcd container (``crictl exec``); here
PROVISION_ETCDCTL points it at the real etcdctl on the test member's endpoint.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.agents import etcd_backup
from provisioner.backup import BackupError
from provisioner.backup.archive import unpack
from provisioner.backup.envelope import open_archive
from tests.fakes.kubeapi import FakeKubeAPI, catalog
from tests.fakes.s3 import FakeS3, fake_s3
from tests.support import real_etcd
from tests.support.clock import pinned

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real_etcd.available(),
                       reason="etcd/etcdctl not installed (Debian: apt-get install "
                              "etcd-server etcd-client)"),
]

KUBECTL = str(Path(sys.executable).parent / "kubectl")
AGENT = Path(etcd_backup.__file__)
TOKENS = {"admin-token": "kubernetes-admin"}
# 03:00 UTC of the pinned day: every step below stays inside that UTC day unless it means
# to cross midnight.
T0 = dt.datetime.combine(pinned().date(), dt.time(3, 0), tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def recipient() -> tuple[bytes, bytes]:
    """(private key PEM, recipient.pem): RSA 3072, as provision makes it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    return (key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()),
            key.public_key().public_bytes(serialization.Encoding.PEM,
                                          serialization.PublicFormat.SubjectPublicKeyInfo))


@dataclass
class Node:
    """One control-plane node's view: its settings file, kubeconfig, PKI and etcd."""

    kube: FakeKubeAPI
    s3: FakeS3
    folder: Path
    settings: etcd_backup.Settings
    etcd: real_etcd.Member

    @property
    def env(self) -> dict[str, str]:
        return {"PROVISION_ETCDCTL": " ".join(self.etcd.etcdctl_command()),
                "PROVISION_PKI_DIR": str(self.folder / "pki")}

    def write_settings(self) -> Path:
        path = self.folder / "etcd-backup.json"
        path.write_text(json.dumps(self.settings.__dict__))
        return path

    def agent(self) -> subprocess.CompletedProcess[str]:
        """One pass as the node's timer runs it."""
        return subprocess.run([sys.executable, str(AGENT), "--config",
                               str(self.write_settings()), "run"],
                              env={**os.environ, **self.env}, capture_output=True, text=True,
                              timeout=300)

    def run_pass(self, now: dt.datetime, monkeypatch: pytest.MonkeyPatch) -> int:
        """One pass in this process, at `now` (the pinned clock of the schedule tests)."""
        for k, v in self.env.items():
            monkeypatch.setenv(k, v)
        return etcd_backup.run_pass(self.settings, now)

    def record(self) -> dict[str, str]:
        found = self.kube.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
        return dict((found or {}).get("data") or {})

    def request_backup(self, at: dt.datetime) -> None:
        """What `provision backup` writes."""
        done = subprocess.run([KUBECTL, "--kubeconfig", self.settings.kubeconfig, "patch",
                               "configmap", "-n", "kube-system", "provision-etcd-backup",
                               "--type", "merge", "-p",
                               json.dumps({"data": {"requested-at": at.strftime(
                                   "%Y-%m-%dT%H:%M:%SZ")}})],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    def objects(self) -> list[str]:
        return self.s3.keys("production/")


def _node(kube: FakeKubeAPI, s3: FakeS3, folder: Path, member: real_etcd.Member,
          recipient_pem: bytes, secret: bool = True) -> Node:
    pki = folder / "pki"
    (pki / "etcd").mkdir(parents=True)
    for name in etcd_backup.PKI_FILES:
        (pki / name).write_bytes(f"-----{name}-----\n".encode() + os.urandom(64).hex().encode())
    if secret:
        kube.create({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                     "metadata": {"namespace": "kube-system", "name": "provision-backup"},
                     "data": {k: base64.b64encode(v).decode() for k, v in {
                         "access-key-id": s3.access_key.encode(),
                         "secret-access-key": s3.secret_key.encode(),
                         "recipient.pem": recipient_pem}.items()}})
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",  # `up` makes it empty
                 "metadata": {"namespace": "kube-system", "name": "provision-etcd-backup"}})
    (folder / "etcd-data").mkdir()
    settings = etcd_backup.Settings(
        environment="production", endpoint=s3.endpoint, region=s3.region, bucket=s3.bucket,
        prefix="production", every_seconds=3600, keep_hourly=24, keep_daily=14,
        kubeconfig=str(kube.write_kubeconfig(folder / "admin.conf", token="admin-token")),
        kubectl=KUBECTL, node_name="production-cp-1", etcd_data_dir=str(folder / "etcd-data"),
        work_dir=str(folder / "work"), lock_file=str(folder / "run" / "lock"))
    return Node(kube, s3, folder, settings, member)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeKubeAPI, FakeS3]]:
    with FakeKubeAPI(tls=True, tokens=TOKENS) as kube, fake_s3() as s3:
        yield kube, s3


@pytest.fixture
def node(tmp_path: Path, world: tuple[FakeKubeAPI, FakeS3],
         recipient: tuple[bytes, bytes]) -> Iterator[Node]:
    with real_etcd.etcd_cluster(tmp_path / "etcd") as (member,):
        yield _node(*world, tmp_path / "node", member, recipient[1])


def _open(node: Node, key: str, private_pem: bytes, dest: Path) -> dict[str, Any]:
    data = node.s3.get(key)
    assert data is not None, key
    return unpack(open_archive(data, private_pem), dest)


def test_restore_drill_every_key_comes_back(node: Node, tmp_path: Path,
                                            recipient: tuple[bytes, bytes]) -> None:
    keys = 5000
    # Random values: a snapshot of repeated text would compress to nothing and flatter the
    # figures.
    written = {f"/registry/drill/key-{i:05d}": os.urandom(100).hex() for i in range(keys)}
    started = time.monotonic()
    node.etcd.put_many(sorted(written.items()))
    write_seconds = time.monotonic() - started

    started = time.monotonic()
    result = node.agent()
    pass_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    record = node.record()
    key = record["last-snapshot-key"]
    assert key.startswith("production/hourly/") and key.endswith("-production-cp-1.pbk")
    ident = key.rpartition("/")[2].removesuffix(".pbk")
    assert node.objects() == [f"production/daily/{ident}.pbk", key]
    assert record["last-snapshot-node"] == "production-cp-1"
    assert "last-error" not in record
    assert list((tmp_path / "node" / "etcd-data").iterdir()) == [], "snapshot moved out"
    assert list((tmp_path / "node" / "work").iterdir()) == [], "nothing left behind"

    started = time.monotonic()
    restored_dir = tmp_path / "restore"
    meta = _open(node, key, recipient[0], restored_dir)
    assert meta["id"] == ident and meta["environment"] == "production"
    assert meta["snapshot_bytes"] == (restored_dir / "snapshot.db").stat().st_size
    for name in etcd_backup.PKI_FILES:
        assert (restored_dir / "pki" / name).read_bytes() == \
            (tmp_path / "node" / "pki" / name).read_bytes()
    assert (restored_dir / "pki" / "ca.key").stat().st_mode & 0o077 == 0
    with real_etcd.etcd_cluster(tmp_path / "second",
                                snapshot=restored_dir / "snapshot.db") as (second,):
        back = second.get_prefix("/registry/drill/")
    restore_seconds = time.monotonic() - started
    assert back == written
    print(f"\nrestore drill: {keys} keys written in {write_seconds:.1f}s; agent pass "
          f"{pass_seconds:.1f}s (snapshot {meta['snapshot_bytes']} bytes, object "
          f"{record['last-snapshot-bytes']} bytes); download+open+unpack+restore+start+read "
          f"{restore_seconds:.1f}s; {len(back)} of {keys} keys read back from the restored "
          "etcd")


def test_only_the_leader_takes_snapshots(tmp_path: Path, world: tuple[FakeKubeAPI, FakeS3],
                                         recipient: tuple[bytes, bytes],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    with real_etcd.etcd_cluster(tmp_path / "etcd", size=2) as members:
        leader = next(m for m in members if m.is_leader())
        follower = next(m for m in members if m is not leader)
        node = _node(*world, tmp_path / "node", follower, recipient[1])
        assert node.run_pass(T0, monkeypatch) == 0
        assert node.objects() == [] and node.record() == {}
        node.etcd = leader
        assert node.run_pass(T0, monkeypatch) == 0
        assert len(node.objects()) == 2 and node.record()["last-snapshot-at"]


def test_schedule_due_requested_and_daily_once_per_utc_day(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    minute = dt.timedelta(minutes=1)

    assert node.run_pass(T0, monkeypatch) == 0
    first = node.objects()
    assert len(first) == 2 and sum("/daily/" in k for k in first) == 1
    assert node.record()["last-snapshot-at"] == T0.strftime(stamp)
    assert node.record()["last-daily-day"] == T0.strftime("%Y-%m-%d")

    assert node.run_pass(T0 + 10 * minute, monkeypatch) == 0  # not due
    assert node.objects() == first
    assert node.record()["last-snapshot-at"] == T0.strftime(stamp)

    node.request_backup(T0 + 15 * minute)  # `provision backup`
    assert node.run_pass(T0 + 16 * minute, monkeypatch) == 0
    after_request = node.objects()
    assert len(after_request) == 3, "one more hourly, no second daily the same day"
    assert node.record()["last-snapshot-at"] == (T0 + 16 * minute).strftime(stamp)
    assert node.run_pass(T0 + 17 * minute, monkeypatch) == 0  # the request is served
    assert node.objects() == after_request

    almost = T0 + 16 * minute + dt.timedelta(seconds=3599)
    assert node.run_pass(almost, monkeypatch) == 0
    assert node.objects() == after_request
    assert node.run_pass(almost + dt.timedelta(seconds=1), monkeypatch) == 0
    assert len(node.objects()) == 4
    assert sum("/daily/" in k for k in node.objects()) == 1

    next_day = dt.datetime.combine(T0.date() + dt.timedelta(days=1), dt.time(0, 5),
                                   tzinfo=dt.UTC)
    assert node.run_pass(next_day, monkeypatch) == 0
    daily = [k for k in node.objects() if "/daily/" in k]
    assert len(daily) == 2 and daily[-1].startswith(
        f"production/daily/{next_day.strftime('%Y%m%dT%H%M%SZ')}-")
    assert node.record()["last-daily-day"] == next_day.strftime("%Y-%m-%d")


def test_pruning_keeps_the_newest_of_each_kind_and_only_ours(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    node.settings = replace(node.settings, keep_hourly=3, keep_daily=2)
    foreign = ["production/hourly/README.txt", "production/hourly/old/20200101T000000Z-x.pbk",
               "production-staging/hourly/20200101T000000Z-x.pbk"]
    for key in foreign:
        node.s3.put(key, b"not ours")
    node.s3.put("production/hourly/20200101T000000Z-gone.pbk", b"an old one of ours")
    hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
    times = [T0, T0 + hour, T0 + 2 * hour, T0 + day, T0 + 2 * day]
    for when in times:
        assert node.run_pass(when, monkeypatch) == 0
    ids = [f"{t.strftime('%Y%m%dT%H%M%SZ')}-production-cp-1.pbk" for t in times]
    assert node.s3.keys("production/hourly/") == sorted(
        [f"production/hourly/{i}" for i in ids[-3:]] + foreign[:2])
    assert node.s3.keys("production/daily/") == [f"production/daily/{i}" for i in ids[-2:]]
    assert node.s3.keys("production-staging/") == foreign[2:]


def test_a_failed_upload_is_recorded_and_fails_the_pass(node: Node) -> None:
    good = node.settings
    node.settings = replace(good, bucket=good.bucket + "-missing")
    result = node.agent()
    assert result.returncode == 1, result.stderr
    record = node.record()
    assert "NoSuchBucket" in record["last-error"] and "HTTP 404" in record["last-error"]
    assert record["last-error-at"]
    assert "last-snapshot-at" not in record
    assert node.objects() == []
    assert list((node.folder / "work").iterdir()) == [], "no plaintext left on the node"
    assert list((node.folder / "etcd-data").iterdir()) == []
    assert node.s3.secret_key not in result.stderr

    node.settings = good  # the bucket is fixed: the next pass succeeds and clears the error
    result = node.agent()
    assert result.returncode == 0, result.stderr
    record = node.record()
    assert "last-error" not in record and "last-error-at" not in record
    assert record["last-snapshot-key"] in node.objects()


def test_no_secret_yet_nothing_happens(tmp_path: Path, world: tuple[FakeKubeAPI, FakeS3],
                                       recipient: tuple[bytes, bytes]) -> None:
    with real_etcd.etcd_cluster(tmp_path / "etcd") as (member,):
        node = _node(*world, tmp_path / "node", member, recipient[1], secret=False)
        result = node.agent()
    assert result.returncode == 0, result.stderr
    assert "no Secret kube-system/provision-backup" in result.stderr
    assert node.objects() == [] and node.record() == {}


def test_another_key_cannot_open_the_uploaded_object(
        node: Node, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert node.run_pass(T0, monkeypatch) == 0
    other = rsa.generate_private_key(public_exponent=65537, key_size=3072).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption())
    with pytest.raises(BackupError, match="cannot be opened with this recipient key"):
        _open(node, node.record()["last-snapshot-key"], other, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_pass_while_another_runs_does_nothing(node: Node) -> None:
    """Two passes never overlap: the second finds the lock held and stops (the timer's next
    pass comes a minute later)."""
    import fcntl

    lock_file = Path(node.settings.lock_file)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    with lock_file.open("a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result = node.agent()
        assert result.returncode == 0, result.stderr
        assert "another pass is still running" in result.stderr
        assert node.objects() == [] and node.record() == {}
    result = node.agent()  # the lock released: this one snapshots
    assert result.returncode == 0, result.stderr
    assert len(node.objects()) == 2


def test_by_default_etcdctl_runs_in_the_etcd_container(
        node: Node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without PROVISION_ETCDCTL the agent finds the running container named ``etcd`` and
    runs etcdctl in it with the healthcheck client pair kubeadm makes under
    /etc/kubernetes/pki/etcd (mounted into the static pod at the same path, as is the data
    dir: cmd/kubeadm/app/phases/etcd/local.go, GetEtcdPodSpec, commit 0009808f5c66). A
    recording crictl stands in for the container runtime: it runs the real etcdctl against
    the test member, without TLS."""
    calls = tmp_path / "crictl.log"
    crictl = tmp_path / "bin" / "crictl"
    crictl.parent.mkdir()
    crictl.write_text(
        f"#!{sys.executable}\nimport json, os, sys\nargs = sys.argv[1:]\n"
        f"open({str(calls)!r}, 'a').write(json.dumps(args) + '\\n')\n"
        "assert args[:2] == ['--runtime-endpoint', 'unix:///var/run/containerd/containerd.sock']\n"
        "if args[2] == 'ps':\n    print('0123abcd')\n    sys.exit(0)\n"
        "rest = args[5:]\nfor flag in ('--endpoints', '--cacert', '--cert', '--key'):\n"
        "    i = rest.index(flag)\n    del rest[i:i + 2]\n"
        f"os.execv({real_etcd.ETCDCTL!r}, [{real_etcd.ETCDCTL!r}, '--endpoints', "
        f"{node.etcd.client_url!r}, *rest])\n")
    crictl.chmod(0o755)
    monkeypatch.setenv("PATH", f"{crictl.parent}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PROVISION_PKI_DIR", str(node.folder / "pki"))
    monkeypatch.delenv("PROVISION_ETCDCTL", raising=False)
    assert etcd_backup.run_pass(node.settings, T0) == 0
    recorded = [json.loads(line) for line in calls.read_text().splitlines()]
    # crictl's default endpoints are deprecated (cri-tools docs/crictl.md): the agent names
    # kubeadm's CRI socket (cmd/kubeadm/app/constants/constants_unix.go DefaultCRISocket).
    endpoint = ["--runtime-endpoint", "unix:///var/run/containerd/containerd.sock"]
    assert recorded[0] == [*endpoint, "ps", "--name", "^etcd$", "--state", "running", "-q"]
    pki = "/etc/kubernetes/pki/etcd"
    prefix = [*endpoint, "exec", "0123abcd", "etcdctl", "--endpoints", "https://127.0.0.1:2379",
              "--cacert", f"{pki}/ca.crt", "--cert", f"{pki}/healthcheck-client.crt",
              "--key", f"{pki}/healthcheck-client.key"]
    assert [c[len(prefix):] for c in recorded[1:]] == [
        ["endpoint", "status", "-w", "json"],
        ["snapshot", "save", f"{node.settings.etcd_data_dir}/provision-snapshot-"
                             f"{T0.strftime('%Y%m%dT%H%M%SZ')}-production-cp-1.db"]]
    assert all(c[:len(prefix)] == prefix for c in recorded[1:])
    assert len(node.objects()) == 2
    assert list(Path(node.settings.etcd_data_dir).iterdir()) == []


def test_an_unusable_secret_is_recorded_by_the_leader(node: Node) -> None:
    done = subprocess.run([KUBECTL, "--kubeconfig", node.settings.kubeconfig, "patch", "secret",
                           "-n", "kube-system", "provision-backup", "--type", "json", "-p",
                           '[{"op": "remove", "path": "/data/recipient.pem"}]'],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = node.agent()
    assert result.returncode == 1
    assert node.record()["last-error"] == ("Secret kube-system/provision-backup is unusable: "
                                           "KeyError 'recipient.pem'")
    assert node.objects() == []


def test_leftovers_of_a_killed_pass_are_removed(node: Node) -> None:
    stale_snapshot = Path(node.settings.etcd_data_dir) / "provision-snapshot-x-cp-1.db.part"
    stale_snapshot.write_bytes(b"half a snapshot")
    stale_work = Path(node.settings.work_dir) / "tmpkilled"
    stale_work.mkdir(parents=True)
    (stale_work / "archive.tar.gz").write_bytes(b"plaintext")
    result = node.agent()
    assert result.returncode == 0, result.stderr
    assert not stale_snapshot.exists() and not stale_work.exists()
    assert list(Path(node.settings.work_dir).iterdir()) == []


def test_the_secrets_settings_win_and_the_agent_marks_its_node(
        node: Node, monkeypatch: pytest.MonkeyPatch) -> None:
    """`up` puts the file's schedule, bucket and retention into the Secret (settings.json):
    a running node's cloud-init copy is never rewritten, so a changed `backups:` must reach
    it this way. The pass also marks its own Node, which `provision backup` and `upgrade`
    look for before they ask for a snapshot."""
    node.kube.add_node("production-cp-1", control_plane=True)
    secret = node.kube.get("v1", "Secret", "provision-backup", "kube-system")
    assert secret is not None
    changed = json.loads(json.dumps(secret))
    changed["data"]["settings.json"] = base64.b64encode(json.dumps(
        {"prefix": "moved", "every_seconds": 900, "keep_hourly": 1}).encode()).decode()
    node.kube.registry.commit(catalog.get("v1", "Secret"), secret, changed, "provision")
    assert node.run_pass(T0, monkeypatch) == 0
    first = node.record()["last-snapshot-key"]
    assert first.startswith("moved/hourly/"), first
    # every_seconds 900 from the Secret (the file says 3600): due again 15 minutes on.
    assert node.run_pass(T0 + dt.timedelta(minutes=15), monkeypatch) == 0
    assert node.record()["last-snapshot-key"] != first
    assert len(node.s3.keys("moved/hourly/")) == 1, "keep_hourly 1 from the Secret"
    assert node.objects() == [], "nothing under the boot file's prefix"
    marked = node.kube.get("v1", "Node", "production-cp-1")
    assert marked is not None
    assert marked["metadata"]["annotations"][etcd_backup.ANNOUNCE] == "1"
