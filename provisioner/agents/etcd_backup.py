#!/usr/bin/env python3
"""Scheduled, encrypted etcd snapshots to a Spaces bucket (control-plane nodes).

``run`` is one pass, started every minute by provision-etcd-backup.timer: read Secret
kube-system/provision-backup (bucket keys, the recipient's public key); only etcd's leader
goes on; when a snapshot is due (none yet, ``every_seconds`` passed, or ``requested-at``
newer than the last one) take it with etcdctl, pack it with the PKI a restore needs, encrypt
it to the recipient (AES-256-CTR by ``openssl enc``, key wrapped by RSA-OAEP-SHA256 with
``openssl pkeyutl``, HMAC-SHA256 tag), PUT it under ``<prefix>/hourly/`` (and
``<prefix>/daily/`` once per UTC day), keep the newest N of each and record the outcome in
ConfigMap kube-system/provision-etcd-backup. Standard library only (shipped in user-data);
the object format is read by provisioner/backup/envelope.py. See README, "etcd backups".
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import dataclasses
import datetime as dt
import fcntl
import hashlib
import hmac
import io
import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import syslog
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

CONFIG = Path("/etc/provision/etcd-backup.json")
FORMAT = "provision-etcd-backup/1"
SECRET = ("kube-system", "provision-backup")
RECORD = ("kube-system", "provision-etcd-backup")
PKI_FILES = ("ca.crt", "ca.key", "sa.key", "sa.pub", "front-proxy-ca.crt",
             "front-proxy-ca.key", "etcd/ca.crt", "etcd/ca.key")
# Inside the etcd container: kubeadm mounts the host's <pki>/etcd and data dir at the same
# paths (kubernetes cmd/kubeadm/app/phases/etcd/local.go, GetEtcdPodSpec, commit 0009808f5c66).
CONTAINER_PKI = "/etc/kubernetes/pki/etcd"
STAMP = "%Y-%m-%dT%H:%M:%SZ"
CHUNK = 1 << 20
UTC = dt.timezone.utc  # noqa: UP017 (dt.UTC is Python 3.11+; Ubuntu 22.04 has 3.10)
# crictl's default endpoints are deprecated (kubernetes-sigs/cri-tools docs/crictl.md): name
# the one kubeadm's kubelet uses (cmd/kubeadm/app/constants/constants_unix.go DefaultCRISocket)
CRICTL = ("crictl", "--runtime-endpoint", "unix:///var/run/containerd/containerd.sock")
ANNOUNCE = "provision.dev/etcd-backup-agent"  # on this node's Node: the agent runs here
CLUSTER_SETTINGS = ("environment", "endpoint", "region", "bucket", "prefix", "every_seconds",
                    "keep_hourly", "keep_daily")
CLOCK_TOLERANCE = 300  # seconds a recorded time may be ahead of this clock before it is wrong


@dataclass(frozen=True)
class Settings:
    """/etc/provision/etcd-backup.json (written by cloud-init; no secrets)."""

    environment: str
    endpoint: str
    region: str
    bucket: str
    prefix: str
    every_seconds: int
    keep_hourly: int = 24
    keep_daily: int = 14
    kubeconfig: str = "/etc/kubernetes/admin.conf"
    kubectl: str = "kubectl"
    node_name: str | None = None  # the kubelet registers the host name
    etcd_data_dir: str = "/var/lib/etcd"  # where etcdctl (in the container) writes
    work_dir: str = "/var/lib/provision/etcd-backup"  # 0700; not /tmp, often RAM
    lock_file: str = "/run/provision-etcd-backup.lock"
    log_file: str | None = None

    @classmethod
    def load(cls, path: Path) -> Settings:
        data = json.loads(path.read_text())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


class Failed(Exception):
    """A pass could not finish; the message goes to the record's last-error."""


_log_file: str | None = None


def log(message: str) -> None:
    print(f"provision-etcd-backup: {message}", file=sys.stderr, flush=True)
    syslog.openlog("provision-etcd-backup", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_INFO, message)
    if _log_file:
        with open(os.open(_log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "a") as f:
            f.write(f"{dt.datetime.now(UTC).strftime(STAMP)} {message}\n")


def _run(argv: list[str], what: str, stdin: bytes | None = None,
         timeout: float = 600) -> bytes:
    try:
        done = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"{what}: {e}") from None
    if done.returncode != 0:
        lines = done.stderr.decode(errors="replace").strip().splitlines()
        raise Failed(f"{what}: {lines[-1] if lines else f'exit {done.returncode}'}")
    return done.stdout


# ------------------------------------------------------------------ the Kubernetes API


def kubectl(settings: Settings, *args: str, stdin: str | None = None
            ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([settings.kubectl, "--kubeconfig", settings.kubeconfig,
                           "--request-timeout", "30s", *args], input=stdin,
                          capture_output=True, text=True, timeout=90)


def read_object(settings: Settings, kind: str, ref: tuple[str, str]) -> dict[str, Any] | None:
    """The object, or None when it does not exist."""
    done = kubectl(settings, "get", kind, "-n", ref[0], ref[1], "-o", "json")
    if done.returncode != 0:
        if "NotFound" in done.stderr:
            return None
        raise Failed(f"reading {kind} {ref[0]}/{ref[1]}: {done.stderr.strip()[-300:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def patch_record(settings: Settings, changes: dict[str, str | None]) -> None:
    """Merge `changes` into the record's data (None removes a key); create it if missing."""
    done = kubectl(settings, "patch", "configmap", "-n", RECORD[0], RECORD[1], "--type",
                   "merge", "-p", json.dumps({"data": changes}))
    if done.returncode != 0 and "NotFound" in done.stderr:
        done = kubectl(settings, "create", "-f", "-", stdin=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"namespace": RECORD[0], "name": RECORD[1]},
            "data": {k: v for k, v in changes.items() if v is not None}}))
    if done.returncode != 0:
        raise Failed(f"recording in ConfigMap {RECORD[0]}/{RECORD[1]}: {done.stderr.strip()}")


# ----------------------------------------------------------------------------- etcd


def etcdctl_command() -> list[str]:
    """PROVISION_ETCDCTL (a command line), else etcdctl inside the node's etcd container."""
    override = os.environ.get("PROVISION_ETCDCTL")
    if override:
        return shlex.split(override)
    # --name: a regular expression (kubernetes-sigs/cri-tools cmd/crictl/container.go)
    ids = _run([*CRICTL, "ps", "--name", "^etcd$", "--state", "running", "-q"],
               "finding the etcd container", timeout=60).decode().split()
    if not ids:
        raise Failed("no running etcd container on this node")
    return [*CRICTL, "exec", ids[0], "etcdctl", "--endpoints", "https://127.0.0.1:2379",
            "--cacert", f"{CONTAINER_PKI}/ca.crt",
            "--cert", f"{CONTAINER_PKI}/healthcheck-client.crt",
            "--key", f"{CONTAINER_PKI}/healthcheck-client.key"]


def is_leader(etcdctl: list[str]) -> bool:
    """Whether the local member leads (``endpoint status``: leader == header.member_id)."""
    out = _run([*etcdctl, "endpoint", "status", "-w", "json"], "etcdctl endpoint status", None,
               60)
    status = json.loads(out)[0]["Status"]
    return bool(status["leader"] == status["header"]["member_id"])


def parse_time(text: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text or "", STAMP).replace(tzinfo=UTC)
    except ValueError:
        return None


def due(record: dict[str, str], now: dt.datetime, every: int) -> str | None:
    """Why a snapshot is due now, or None.

    A request is answered once, by its value (``answered-request``), never by comparing the
    operator's clock with this node's: a request stamped ahead of this clock would otherwise
    stay "newer" for every snapshot and take one each minute until the clocks meet. A last
    snapshot stamped ahead of this clock (a node's clock was wrong when it took it) would
    likewise stop the schedule until then, so it counts as due."""
    last = parse_time(record.get("last-snapshot-at"))
    requested = record.get("requested-at")
    if last is None:
        return "no snapshot recorded yet"
    # A failed request was answered too (`provision backup` reported it): the schedule,
    # not a retry every minute, takes the next one.
    if requested and requested not in (record.get("answered-request"),
                                       record.get("failed-request")):
        return f"requested at {requested}"
    if (last - now).total_seconds() > CLOCK_TOLERANCE:
        return f"the last snapshot is stamped {record['last-snapshot-at']}, ahead of this clock"
    if (now - last).total_seconds() >= every:
        return f"last snapshot at {record['last-snapshot-at']}"
    return None


# ----------------------------------------------------------------- archive, envelope


def snapshot(settings: Settings, etcdctl: list[str], ident: str, dest: Path) -> None:
    """etcdctl writes under the data dir (the only host path the container sees); move out."""
    inside = Path(settings.etcd_data_dir) / f"provision-snapshot-{ident}.db"
    for stale in inside.parent.glob("provision-snapshot-*"):  # a pass killed midway
        stale.unlink()
    try:
        _run([*etcdctl, "snapshot", "save", str(inside)], "etcdctl snapshot save")
        shutil.move(inside, dest)
    finally:
        for leftover in (inside, inside.with_name(inside.name + ".part")):
            leftover.unlink(missing_ok=True)


def pack(snapshot_db: Path, meta: dict[str, Any], pki: Path, out: Path) -> None:
    def owned_by_root(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        info.mode = 0o600
        return info

    missing = [name for name in PKI_FILES if not (pki / name).is_file()]
    if missing:
        raise Failed(f"PKI files missing under {pki}: {', '.join(missing)}")
    with tarfile.open(out, "w:gz") as tar:
        tar.add(snapshot_db, "snapshot.db", filter=owned_by_root)
        raw = json.dumps(meta, indent=1).encode()
        info = owned_by_root(tarfile.TarInfo("meta.json"))
        info.size, info.mtime = len(raw), int(dt.datetime.now(UTC).timestamp())
        tar.addfile(info, io.BytesIO(raw))
        for name in PKI_FILES:
            tar.add(pki / name, f"pki/{name}", filter=owned_by_root)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def seal(plain: Path, out: Path, recipient_pem: bytes, fields: dict[str, Any],
         work: Path) -> None:
    """Write the object: header line, AES-256-CTR ciphertext, HMAC-SHA256 tag.

    ``openssl enc`` takes a raw key only as ``-K <hex>`` on its command line, which any
    local user reads in /proc/<pid>/cmdline. So the agent hands it a random password on
    a pipe (``-pass fd:N``) instead: with ``-nosalt -md sha256`` and no -pbkdf2, openssl
    derives the key by EVP_BytesToKey, one SHA-256 round, i.e. K_enc = SHA-256(password)
    (OpenSSL 3.0 openssl-enc(1), EVP_BytesToKey(3)); the IV, not secret, is ``-iv``.
    Readers just see a random K_enc. K_mac never leaves this process.
    """
    password = os.urandom(32).hex()
    k_enc, k_mac, iv = hashlib.sha256(password.encode()).digest(), os.urandom(32), os.urandom(16)
    recipient = work / "recipient.pem"
    recipient.write_bytes(recipient_pem)
    wrapped = _run(["openssl", "pkeyutl", "-encrypt", "-pubin", "-inkey", str(recipient),
                    "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                    "-pkeyopt", "rsa_mgf1_md:sha256"], "wrapping the key", k_enc + k_mac, 60)
    header = json.dumps({
        "format": FORMAT, **fields, "cipher": "aes-256-ctr", "iv": iv.hex(),
        "key": base64.b64encode(wrapped).decode(), "plaintext_sha256": file_sha256(plain),
        "plaintext_bytes": plain.stat().st_size}, separators=(",", ":")).encode() + b"\n"
    tag = hmac.new(k_mac, header, hashlib.sha256)
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, password.encode() + b"\n")  # 65 bytes: fits the pipe's buffer
        os.close(write_end)
        with out.open("wb") as sink, subprocess.Popen(
                ["openssl", "enc", "-e", "-aes-256-ctr", "-nosalt", "-md", "sha256", "-pass",
                 f"fd:{read_end}", "-iv", iv.hex(), "-in", str(plain)], stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, pass_fds=(read_end,)) as enc:
            os.close(read_end)
            read_end = -1
            sink.write(header)
            assert enc.stdout is not None and enc.stderr is not None
            while chunk := enc.stdout.read(CHUNK):
                tag.update(chunk)
                sink.write(chunk)
            error = enc.stderr.read().decode(errors="replace")
            if enc.wait() != 0:
                raise Failed(f"openssl enc: {error.strip()}")
            sink.write(tag.digest())
    finally:
        if read_end >= 0:
            os.close(read_end)


# --------------------------------------------------------------- S3 (Spaces), SigV4


@dataclass(frozen=True)
class Bucket:
    endpoint: str
    region: str
    name: str
    access_key: str
    secret_key: str


def sign(bucket: Bucket, method: str, url: str, payload_sha256: str, when: dt.datetime
         ) -> dict[str, str]:
    """The headers of an AWS Signature Version 4 request (host, date, payload hash, auth).

    Per AWS's "Create a signed AWS API request" (canonical request, string to sign, signing
    key HMAC chain); S3 paths are encoded once, not normalised (botocore auth.py
    S3SigV4Auth).
    """
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    amz_date = when.strftime("%Y%m%dT%H%M%SZ")
    headers = {"host": host, "x-amz-content-sha256": payload_sha256, "x-amz-date": amz_date}
    query = sorted((urllib.parse.quote(k, safe="-_.~"), urllib.parse.quote(v, safe="-_.~"))
                   for k, v in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    signed = ";".join(sorted(headers))
    canonical = "\n".join([
        method, parts.path or "/",  # already encoded once (object_url)
        "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)), signed, payload_sha256])
    scope = f"{amz_date[:8]}/{bucket.region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + bucket.secret_key).encode()
    for part in (amz_date[:8], bucket.region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (f"AWS4-HMAC-SHA256 Credential={bucket.access_key}/{scope}, "
                                f"SignedHeaders={signed}, Signature={signature}")
    return headers


def object_url(bucket: Bucket, key: str = "", query: dict[str, str] | None = None) -> str:
    """Path-style URL (Spaces serves both styles; no DNS name per bucket needed)."""
    url = f"{bucket.endpoint.rstrip('/')}/{bucket.name}"
    url += "/" + urllib.parse.quote(key, safe="/-_.~") if key else ""
    return url + ("?" + urllib.parse.urlencode(query, quote_via=urllib.parse.quote)
                  if query else "")


def s3(bucket: Bucket, method: str, url: str, body: Path | None = None) -> bytes:
    payload = file_sha256(body) if body else hashlib.sha256(b"").hexdigest()
    headers = sign(bucket, method, url, payload, dt.datetime.now(UTC))  # the real time
    del headers["host"]  # urllib sends the same
    handle: BinaryIO | None = body.open("rb") if body else None
    if body:
        headers |= {"content-length": str(body.stat().st_size),
                    "content-type": "application/octet-stream"}
    request = urllib.request.Request(url, data=handle, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return bytes(response.read())
    except urllib.error.HTTPError as e:
        try:
            code = ET.fromstring(e.read()).findtext("Code") or ""
        except (ET.ParseError, OSError):
            code = ""
        raise Failed(f"{method} {urllib.parse.urlsplit(url).path}: HTTP {e.code} {code}"
                     .rstrip()) from None
    except (urllib.error.URLError, OSError) as e:
        raise Failed(f"{method} {bucket.endpoint}: {e}") from None
    finally:
        if handle:
            handle.close()


def list_keys(bucket: Bucket, prefix: str) -> list[str]:
    """ListObjectsV2 under `prefix`, every page."""
    keys: list[str] = []
    token = None
    while True:
        query = {"list-type": "2", "prefix": prefix}
        if token:
            query["continuation-token"] = token
        root = ET.fromstring(s3(bucket, "GET", object_url(bucket, query=query)))
        for element in root.iter():
            if element.tag.rpartition("}")[2] == "Key" and element.text:
                keys.append(element.text)
        token = next((e.text for e in root if e.tag.endswith("NextContinuationToken")), None)
        if not token:
            return keys


def prune(bucket: Bucket, prefix: str, keep: int) -> list[str]:
    """Delete all but the newest `keep` of our objects under `prefix` (keys sort by time)."""
    ours = sorted(k for k in list_keys(bucket, prefix)
                  if k.endswith(".pbk") and "/" not in k[len(prefix):])
    doomed = ours[:max(len(ours) - keep, 0)]
    for key in doomed:
        s3(bucket, "DELETE", object_url(bucket, key))
    return doomed


# ----------------------------------------------------------------------------- a pass


def take(settings: Settings, bucket: Bucket, recipient: bytes, etcdctl: list[str],
         now: dt.datetime, daily: bool) -> dict[str, str | None]:
    """Snapshot, pack, seal, upload; the record's new keys."""
    node = settings.node_name or socket.gethostname()
    ident = f"{now.strftime('%Y%m%dT%H%M%SZ')}-{node}"
    work_root = Path(settings.work_dir)
    work_root.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(work_root, 0o700)  # the archive holds every secret of the cluster
    for stale in work_root.iterdir():  # a pass killed midway (we hold the lock)
        shutil.rmtree(stale, ignore_errors=True)
    work = Path(tempfile.mkdtemp(dir=work_root))
    try:
        db = work / "snapshot.db"
        snapshot(settings, etcdctl, ident, db)
        size = db.stat().st_size
        taken_at = now.strftime(STAMP)
        meta = {"format": FORMAT, "environment": settings.environment, "id": ident,
                "taken_at": taken_at, "node": node, "snapshot_sha256": file_sha256(db),
                "snapshot_bytes": size}
        pki = Path(os.environ.get("PROVISION_PKI_DIR") or "/etc/kubernetes/pki")
        pack(db, meta, pki, work / "archive.tar.gz")
        db.unlink()
        sealed = work / "object.pbk"
        seal(work / "archive.tar.gz", sealed, recipient, {
            "id": ident, "environment": settings.environment, "taken_at": taken_at}, work)
        prefix = settings.prefix.strip("/")
        key = f"{prefix}/hourly/{ident}.pbk"
        s3(bucket, "PUT", object_url(bucket, key), sealed)
        changes: dict[str, str | None] = {
            "last-snapshot-at": taken_at, "last-snapshot-key": key, "last-snapshot-node": node,
            "last-snapshot-bytes": str(sealed.stat().st_size)}
        if daily:
            s3(bucket, "PUT", object_url(bucket, f"{prefix}/daily/{ident}.pbk"), sealed)
            changes["last-daily-day"] = now.strftime("%Y-%m-%d")
        log(f"uploaded {key} ({sealed.stat().st_size} bytes){' and its daily copy' * daily}")
        return changes
    finally:
        shutil.rmtree(work, ignore_errors=True)


def announce(settings: Settings) -> None:
    """Mark this node's Node as running the agent (what `provision backup` and `upgrade`
    look for: nodes made before backups were set have none). Best effort."""
    node = settings.node_name or socket.gethostname()
    done = kubectl(settings, "get", "node", node, "-o",
                   "jsonpath={.metadata.annotations.provision\\.dev/etcd-backup-agent}")
    if done.returncode == 0 and done.stdout.strip() == "1":
        return
    marked = kubectl(settings, "annotate", "node", node, "--overwrite", f"{ANNOUNCE}=1")
    if marked.returncode != 0:
        log(f"could not annotate Node {node}: {marked.stderr.strip()[-300:]}")


def cluster_settings(settings: Settings, secret: dict[str, Any]) -> Settings:
    """The schedule, bucket and retention `up` last applied (``settings.json`` in the Secret)
    over the ones cloud-init wrote at boot, so a changed ``backups:`` reaches running nodes."""
    raw = (secret.get("data") or {}).get("settings.json")
    if not raw:
        return settings
    try:
        given = json.loads(base64.b64decode(raw))
        changes = {k: given[k] for k in CLUSTER_SETTINGS if k in given}
        return dataclasses.replace(settings, **changes)
    except (ValueError, TypeError) as e:
        raise Failed(f"Secret {SECRET[0]}/{SECRET[1]} has unusable settings.json: "
                     f"{type(e).__name__} {e}") from None


def run_pass(settings: Settings, now: dt.datetime) -> int:
    """One pass; the exit code (0: done, not leader, not due or not configured)."""
    secret = read_object(settings, "secret", SECRET)
    if secret is None:
        log(f"no Secret {SECRET[0]}/{SECRET[1]} yet: nothing to do")
        return 0
    announce(settings)
    etcdctl = etcdctl_command()
    if not is_leader(etcdctl):  # the followers stay quiet: no last-error from them
        return 0
    record = (read_object(settings, "configmap", RECORD) or {}).get("data") or {}
    try:
        settings = cluster_settings(settings, secret)
    except Failed as e:
        log(str(e))
        patch_record(settings, {"last-error": str(e), "last-error-at": now.strftime(STAMP)})
        return 1
    reason = due(record, now, settings.every_seconds)
    if reason is None:
        return 0
    log(f"taking a snapshot: {reason}")
    daily = settings.keep_daily > 0 and record.get("last-daily-day") != now.strftime("%Y-%m-%d")
    # The request this pass answers (or fails), echoed back by value for `provision backup`.
    request = record.get("requested-at") or None
    changes: dict[str, str | None] = {}
    try:
        try:
            data = {k: base64.b64decode(v) for k, v in (secret.get("data") or {}).items()}
            bucket = Bucket(settings.endpoint, settings.region, settings.bucket,
                            data["access-key-id"].decode().strip(),
                            data["secret-access-key"].decode().strip())
            recipient = data["recipient.pem"]
        except (KeyError, ValueError) as e:
            raise Failed(f"Secret {SECRET[0]}/{SECRET[1]} is unusable: {type(e).__name__} "
                         f"{e}") from None
        changes = take(settings, bucket, recipient, etcdctl, now, daily)
        prefix = settings.prefix.strip("/")
        for kind, keep in (("hourly", settings.keep_hourly), ("daily", settings.keep_daily)):
            for gone in prune(bucket, f"{prefix}/{kind}/", keep):
                log(f"deleted {gone} (keeping the newest {keep})")
    except Exception as e:  # recorded for `status` and `check`, then the exit code
        message = str(e) if isinstance(e, Failed) else f"{type(e).__name__}: {e}"
        log(f"snapshot failed: {message}")
        # an uploaded snapshot is recorded even when pruning failed after it
        patch_record(settings, {**changes, "last-error": message[:1000],
                                "last-error-at": now.strftime(STAMP), "failed-request": request})
        return 1
    patch_record(settings, {**changes, "last-error": None, "last-error-at": None,
                            "answered-request": request, "failed-request": None})
    return 0


@contextlib.contextmanager
def locked(path: str) -> Iterator[bool]:
    """Whether this pass holds the lock (another pass still running: skip, never queue)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True


def main(argv: list[str]) -> int:
    """``etcd_backup.py [--config PATH] run``: one pass."""
    parser = argparse.ArgumentParser(prog="provision-etcd-backup", description=__doc__)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("command", choices=["run"])
    options = parser.parse_args(argv)
    global _log_file
    try:
        settings = Settings.load(options.config)
        _log_file = settings.log_file
        with locked(settings.lock_file) as mine:
            if not mine:
                log("another pass is still running")
                return 0
            return run_pass(settings, dt.datetime.now(UTC))
    except Exception as e:
        log(f"pass failed: {type(e).__name__}: {e}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
