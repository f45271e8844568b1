"""`provision backup CONFIG --fetch ID --to DIR`: one snapshot, checked, opened, unpacked.

The object is downloaded to a private temporary file beside DIR, its tag checked and its
archive decrypted with the environment's recipient key (backup/envelope.py), then unpacked
into a private staging folder beside DIR (backup/archive.py). Only when everything matches
what was asked is the staging folder moved to DIR, so a refused object leaves nothing there.

What must match: the header's and meta.json's ID and environment (an object copied under
another name, or another environment's), and the archive's PKI against the cluster secrets
provision holds. The last one matters because the recipient key's public half is not secret
(every node and the Secret hold it): anyone can make an object that opens, so opening proves
only that the bytes were not changed since whoever made them sealed them.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.backup import BackupError
from provisioner.bootstrap.pki import SHARED_FILES, ClusterSecrets
from provisioner.config.model import Backups, Environment
from provisioner.errors import EXIT_USAGE, UsageError

LATEST = "latest"
# `<UTC time %Y%m%dT%H%M%SZ>-<node name>` (the agent's ID): never a "/" or "..".
_ID = re.compile(r"[0-9]{8}T[0-9]{6}Z-[A-Za-z0-9][A-Za-z0-9.-]*")
# The archive's pki/ members and the secret each must equal (kubeadm's names).
PKI_FILES = ("ca.crt", "ca.key", *SHARED_FILES)


class ForeignSnapshot(BackupError):
    """The object opens but is not the snapshot asked for, or not this cluster's (exit 2)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class Fetched:
    """What was written."""

    id: str
    key: str
    environment: str
    node: str
    taken_at: str
    folder: Path
    snapshot_bytes: int
    snapshot_sha256: str

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "key": self.key, "environment": self.environment,
                "node": self.node, "taken_at": self.taken_at, "dir": str(self.folder),
                "snapshot": {"path": str(self.folder / "snapshot.db"),
                             "bytes": self.snapshot_bytes, "sha256": self.snapshot_sha256},
                "files": sorted(str(p.relative_to(self.folder))
                                for p in self.folder.rglob("*") if p.is_file())}


def check_destination(dest: Path) -> None:
    """DIR must not exist or be an empty folder, in a folder that exists (exit 2)."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise UsageError(f"--to {dest}: not a folder; name a new or empty folder")
    if dest.is_dir() and any(dest.iterdir()):
        raise UsageError(f"--to {dest}: the folder is not empty; name a new or empty folder "
                         "(nothing in it is overwritten)")
    if not dest.absolute().parent.is_dir():
        raise UsageError(f"--to {dest}: its parent folder {dest.absolute().parent} does not "
                         "exist; create it first")


def held_secrets(config: Path, env: Environment, workdir: Path | None) -> ClusterSecrets:
    """The cluster secrets provision holds, read without making or changing any: with
    remote state the sealed copy beside it (PROVISION_SECRETS_KEY), else the work folder's
    secrets/, checked against the CA fingerprint recorded beside the local state."""
    from provisioner.bootstrap.custody import RECORD
    from provisioner.bootstrap.pki import BACKUP_KEY, RECOVERY, SecretsError, read_secrets
    from provisioner.workdir import Workdir

    work = Workdir.for_config(config, env, workdir)
    found: ClusterSecrets | None = None
    where = str(work.secrets)
    if env.state.backend == "spaces":
        from provisioner.bootstrap.sealed import SealedCopy, key_from_environment, unseal
        from provisioner.cloud.spaces import StateBucket

        bucket = StateBucket.of(env)
        where = bucket.url(bucket.secrets_key)
        stored = bucket.get(bucket.secrets_key)
        if stored is not None:
            key = key_from_environment(f"to open the cluster secrets sealed at {where}")
            found = unseal(SealedCopy.from_bytes(stored, where), env.name, key, where)
        else:
            where = str(work.secrets)
    if found is None:
        found = read_secrets(work.secrets)
        if found is None:
            raise SecretsError(f"{work.secrets} holds no cluster secrets, so no snapshot of "
                               f"{env.name!r} can be opened or checked: {RECOVERY}")
        record = work.root / "state" / RECORD
        recorded = record.read_text().strip() if record.is_file() else None
        if recorded and recorded != found.ca_cert_hash:
            raise SecretsError(f"the CA in {work.secrets} ({found.ca_cert_hash}) is not the "
                               f"cluster's ({recorded}, recorded in {record}): {RECOVERY}")
    if found.backup_key is None:
        raise SecretsError(f"no backup recipient key in {where} ({BACKUP_KEY}): snapshots "
                           "are encrypted to it and open with nothing else; restore it from "
                           "your backup of the cluster secrets")
    return found


def taken_by(ident: str, env_name: str) -> bool:
    """Whether the snapshot ``ident`` was taken by one of ``env_name``'s control planes.

    IDs are ``<UTC time>-<node>`` and the nodes are ``<env>-cp-<n>`` (agents/etcd_backup.py,
    terraform/controllers.tf): two environments copied from one file may share a bucket and
    prefix, and `latest` must be this one's newest, not a neighbour's whose name begins the
    same (prod and prod-eu).
    """
    return re.fullmatch(r"[0-9]{8}T[0-9]{6}Z-" + re.escape(env_name) + r"-cp-[0-9]+",
                        ident) is not None


def object_key(backups: Backups, ident: str) -> list[str]:
    """Where an ID's object may be: its hourly key, then its daily one."""
    if not _ID.fullmatch(ident):
        raise UsageError(f"--fetch {ident!r}: not a snapshot ID (like "
                         f"20261207T100000Z-{backups.prefix}-cp-1) nor `latest`; "
                         "`provision backup CONFIG --list` shows the IDs")
    return [f"{backups.prefix}/{kind}/{ident}.pbk" for kind in ("hourly", "daily")]


def fetch(config: Path, env: Environment, workdir: Path | None, backups: Backups,
          ident: str, dest: Path) -> Fetched:
    """Download, open, check and unpack the snapshot ``ident`` (or ``latest``) into dest."""
    from provisioner.cloud.backup_bucket import BackupBucket

    check_destination(dest)
    secrets = held_secrets(config, env, workdir)
    store = BackupBucket(backups)
    where = f"s3://{backups.bucket}/{backups.prefix}/"
    if ident == LATEST:
        hourly = [s for s in store.snapshots() if s.kind == "hourly" and taken_by(s.id, env.name)]
        if not hourly:
            raise UsageError(f"no hourly snapshot of {env.name} under {where} yet: "
                             "`provision backup CONFIG --list` shows what the bucket holds")
        ident, keys = hourly[0].id, [hourly[0].key]
    else:
        keys = object_key(backups, ident)
    parent = dest.absolute().parent
    handle, download = tempfile.mkstemp(dir=parent, prefix=f".{dest.name}.", suffix=".pbk")
    staging = Path(tempfile.mkdtemp(dir=parent, prefix=f".{dest.name}.", suffix=".fetch"))
    try:
        key = None
        with open(handle, "wb") as sink:  # mkstemp made it 0600
            for candidate in keys:
                sink.seek(0)
                sink.truncate()  # a failed attempt may have written some
                if store.download(candidate, sink):
                    key = candidate
                    break
        if key is None:
            raise UsageError(f"no snapshot {ident} under {where} (hourly or daily): "
                             "`provision backup CONFIG --list` shows the IDs")
        meta = _open_and_check(Path(download).read_bytes(), env.name, ident, key, secrets,
                               staging)
        _move_into(staging, dest)
    finally:
        Path(download).unlink(missing_ok=True)
        shutil.rmtree(staging, ignore_errors=True)
    db = dest / "snapshot.db"
    return Fetched(ident, key, env.name, str(meta.get("node", "")),
                   str(meta.get("taken_at", "")), dest, db.stat().st_size,
                   str(meta["snapshot_sha256"]))


def _open_and_check(data: bytes, environment: str, ident: str, key: str,
                    secrets: ClusterSecrets, staging: Path) -> dict[str, Any]:
    """The tag first (envelope), then what the object claims to be, then its PKI."""
    from provisioner.backup.archive import unpack
    from provisioner.backup.envelope import open_archive, read_header

    assert secrets.backup_key is not None
    plaintext = open_archive(data, secrets.backup_key, ident)
    header = read_header(data, ident)  # authenticated now: the tag covers the header line
    _check_claims(key, "header", header, environment, ident)
    meta = unpack(plaintext, staging)
    _check_claims(key, "meta.json", meta, environment, ident)
    differ = [name for name in PKI_FILES if not _same_pki(name, staging / "pki" / name,
                                                          _held(secrets, name))]
    if differ:
        raise ForeignSnapshot(
            f"{key}: its PKI is not this cluster's ({', '.join(differ)} differ from the "
            "cluster secrets provision holds): a snapshot of another cluster, or one made "
            "by someone else (the recipient key is public, so anyone can make an object "
            "that opens); refused, nothing was written")
    return meta


def _check_claims(key: str, what: str, claims: dict[str, Any], environment: str,
                  ident: str) -> None:
    if claims.get("id") != ident or claims.get("environment") != environment:
        raise ForeignSnapshot(
            f"{key}: its {what} names snapshot {claims.get('id')!r} of environment "
            f"{claims.get('environment')!r}, not {ident!r} of {environment!r} (an object "
            "renamed, or copied from another environment's prefix); refused, nothing was "
            "written")


def _held(secrets: ClusterSecrets, name: str) -> bytes | None:
    if name == "ca.crt":
        return secrets.ca_crt_pem
    if name == "ca.key":
        return secrets.ca_key_pem
    return secrets.shared.get(name)


def _same_pki(name: str, path: Path, held: bytes | None) -> bool:
    """Whether the archive's file is the secret held: the same certificate, or a key with
    the same public key (PEM wrapping and key encoding may differ on the node).

    A cluster whose first node made its own shared keys (before provision held them) has
    none to compare: only its CA is checked."""
    if held is None:
        return True
    try:
        theirs = path.read_bytes()
    except OSError:
        return False
    if theirs.strip() == held.strip():
        return True
    try:
        return _public(name, theirs) == _public(name, held)
    except (ValueError, TypeError):
        return False


def _public(name: str, pem: bytes) -> bytes:
    """The DER a certificate or key stands for (a private key: its public half)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if name.endswith(".crt"):
        return x509.load_pem_x509_certificate(pem).public_bytes(serialization.Encoding.DER)
    if name.endswith(".pub"):
        return serialization.load_pem_public_key(pem).public_bytes(*spki)
    key = serialization.load_pem_private_key(pem, password=None)
    return key.public_key().public_bytes(*spki)


def _move_into(staging: Path, dest: Path) -> None:
    """The checked files into dest: renamed whole when dest is new, else entry by entry."""
    if not dest.exists():
        os.rename(staging, dest)  # mkdtemp made it 0700
        return
    dest.chmod(0o700)  # it holds the cluster's CA keys
    for entry in staging.iterdir():
        os.rename(entry, dest / entry.name)


def next_steps(fetched: Fetched) -> str:
    """The manual restore, briefly (README: Etcd backups, Restoring by hand)."""
    db = fetched.folder / "snapshot.db"
    return (
        "\nTo restore etcd from it by hand (README: Etcd backups, \"Restoring by hand\"):\n"
        f"  1. copy {db} to one control-plane node\n"
        "  2. on every control-plane node, move etcd.yaml and kube-apiserver.yaml out of\n"
        "     /etc/kubernetes/manifests (the kubelet stops those static pods)\n"
        "  3. on that node: etcdutl snapshot restore snapshot.db --data-dir\n"
        "     /var/lib/etcd-restored --name NODE --initial-cluster NODE=https://IP:2380\n"
        "     --initial-advertise-peer-urls https://IP:2380 (NODE and IP as in etcd.yaml),\n"
        "     swap /var/lib/etcd-restored for /var/lib/etcd, move its manifests back\n"
        "  4. the other control-plane nodes re-join one at a time: empty /var/lib/etcd,\n"
        "     `etcdctl member add`, --initial-cluster-state=existing, manifests back\n"
        "  5. restart the kubelet on every node\n")


def summary(fetched: Fetched) -> str:
    """What was written, where from."""
    from provisioner.pipeline.backup_now import size_text

    return (f"snapshot {fetched.id} ({fetched.key}) written to {fetched.folder}\n"
            f"  snapshot.db: {size_text(fetched.snapshot_bytes)} ({fetched.snapshot_bytes} "
            f"bytes), sha256 {fetched.snapshot_sha256}\n"
            f"  taken at: {fetched.taken_at} on {fetched.node}\n"
            "  also: meta.json and pki/ (the cluster's CAs and service-account keys: "
            "keep the folder private, delete it when done)\n")
