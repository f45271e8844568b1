"""`provision backup CONFIG --fetch ID --to DIR`: the real CLI against a fake S3 (moto over
HTTP, tests/fakes/s3.py), with objects made by the node agent's own functions
(provisioner/agents/etcd_backup.py: ``pack`` and ``seal``, which run the openssl CLI) from
the environment's own recipient key and PKI, as custody prepares them for `up`.

S3 facts relied on: GetObject of a missing key answers 404 NoSuchKey, ListObjectsV2 by
prefix lists the keys under it (the AWS S3 API reference, GetObject and ListObjectsV2;
moto implements both). The rest is provision's own contract with its agent (issue 15:
the object format "provision-etcd-backup/1" and the archive's members).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from provisioner.agents import etcd_backup
from provisioner.bootstrap.backup_keys import recipient_of
from provisioner.bootstrap.pki import ClusterSecrets, make_secrets
from provisioner.cli.main import cli
from provisioner.config import load_environment
from provisioner.workdir import Workdir
from tests.fakes.s3 import FakeS3, fake_s3
from tests.support.rendering import ROOT

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(shutil.which("openssl") is None,
                                 reason="the openssl CLI the agent seals with is missing")]

OLD, NEW, NEWEST = ("20260307T010000Z-prod-cp-2", "20260307T020000Z-prod-cp-1",
                    "20260307T025900Z-prod-cp-3")


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with fake_s3() as server:
        yield server


@pytest.fixture
def config(tmp_path: Path, s3: FakeS3) -> Path:
    doc = yaml.safe_load((ROOT / "examples" / "production.yaml").read_text())
    doc.pop("state", None)  # local state: the work folder's secrets are the cluster's
    doc["backups"] = {"bucket": s3.bucket, "endpoint": s3.endpoint, "prefix": "production"}
    path = tmp_path / "prod.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def secrets(config: Path) -> ClusterSecrets:
    """What custody made for this environment (CA, shared keys, recipient key), as `plan`
    or `up` would before the first node."""
    env = load_environment(config)
    made = Workdir.for_config(config, env, None).cluster_secrets(env)
    assert made.backup_key is not None and made.shared
    return made


def _pki_folder(folder: Path, secrets: ClusterSecrets) -> Path:
    """/etc/kubernetes/pki as the nodes hold it: provision's CA and shared keys."""
    pki = folder / "pki"
    (pki / "etcd").mkdir(parents=True)
    (pki / "ca.crt").write_bytes(secrets.ca_crt_pem)
    (pki / "ca.key").write_bytes(secrets.ca_key_pem)
    for name, pem in secrets.shared.items():
        (pki / name).write_bytes(pem)
    return pki


def _sealed(work: Path, secrets: ClusterSecrets, ident: str, environment: str = "prod",
            pki_of: ClusterSecrets | None = None, meta_id: str | None = None) -> bytes:
    """An object exactly as the agent's pass makes one (etcd_backup.take: pack, seal)."""
    work.mkdir(parents=True)
    db = work / "snapshot.db"
    db.write_bytes(os.urandom(50_000))  # random: a real snapshot does not compress away
    taken_at = f"{ident[:4]}-{ident[4:6]}-{ident[6:8]}T{ident[9:11]}:{ident[11:13]}:" \
               f"{ident[13:15]}Z"
    node = ident.split("-", 1)[1]
    meta = {"format": etcd_backup.FORMAT, "environment": environment, "id": meta_id or ident,
            "taken_at": taken_at, "node": node, "snapshot_sha256": etcd_backup.file_sha256(db),
            "snapshot_bytes": db.stat().st_size}
    etcd_backup.pack(db, meta, _pki_folder(work, pki_of or secrets), work / "archive.tar.gz")
    recipient = recipient_of(secrets)
    assert recipient is not None
    etcd_backup.seal(work / "archive.tar.gz", work / "object.pbk", recipient,
                     {"id": meta_id or ident, "environment": environment,
                      "taken_at": taken_at}, work)
    (work / "snapshot.db").rename(work / "original.db")
    return (work / "object.pbk").read_bytes()


def _run(s3: FakeS3, *args: str) -> Result:
    env = {"SPACES_ACCESS_KEY_ID": s3.access_key, "SPACES_SECRET_ACCESS_KEY": s3.secret_key}
    result = CliRunner(env=env).invoke(cli, ["backup", *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".restore"))


def test_fetch_writes_every_file_private_and_says_what_it_wrote(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    body = _sealed(tmp_path / "agent", secrets, NEW)
    s3.put(f"production/hourly/{NEW}.pbk", body)
    dest = tmp_path / "restore"
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(dest), "--output", "json")
    assert result.exit_code == 0, result.stderr
    original = (tmp_path / "agent" / "original.db").read_bytes()
    out = json.loads(result.stdout)
    assert out["id"] == NEW and out["key"] == f"production/hourly/{NEW}.pbk"
    assert (out["node"], out["taken_at"], out["environment"]) == (
        "prod-cp-1", "2026-03-07T02:00:00Z", "prod")
    assert out["snapshot"] == {"path": str(dest / "snapshot.db"), "bytes": len(original),
                               "sha256": hashlib.sha256(original).hexdigest()}
    assert out["files"] == sorted(["meta.json", "snapshot.db",
                                   *(f"pki/{n}" for n in etcd_backup.PKI_FILES)])
    assert (dest / "snapshot.db").read_bytes() == original
    assert (dest / "pki" / "etcd" / "ca.key").read_bytes() == secrets.shared["etcd/ca.key"]
    assert _mode(dest) == 0o700 and _mode(dest / "pki") == 0o700
    assert _mode(dest / "pki" / "etcd") == 0o700
    for path in dest.rglob("*"):
        if path.is_file():
            assert _mode(path) == 0o600, path
    assert _leftovers(tmp_path) == [], "the download and staging folder are removed"


def test_text_output_gives_the_runbook_and_a_daily_only_id_is_found(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    """An hourly object pruned away still has its daily copy (keep_daily > keep_hourly)."""
    s3.put(f"production/daily/{OLD}.pbk", _sealed(tmp_path / "agent", secrets, OLD))
    dest = tmp_path / "restore"
    dest.mkdir(mode=0o755)  # an empty folder is fine; it is made private
    result = _run(s3, str(config), "--fetch", OLD, "--to", str(dest))
    assert result.exit_code == 0, result.stderr
    original = (tmp_path / "agent" / "original.db").read_bytes()
    lines = result.stdout.splitlines()
    assert lines[0] == f"snapshot {OLD} (production/daily/{OLD}.pbk) written to {dest}"
    assert f"sha256 {hashlib.sha256(original).hexdigest()}" in lines[1]
    assert lines[2] == "  taken at: 2026-03-07T01:00:00Z on prod-cp-2"
    assert 'README: Etcd backups, "Restoring by hand"' in result.stdout
    assert "etcdutl snapshot restore snapshot.db" in result.stdout
    assert _mode(dest) == 0o700 and (dest / "snapshot.db").read_bytes() == original


def test_latest_is_the_newest_hourly(tmp_path: Path, s3: FakeS3, config: Path,
                                     secrets: ClusterSecrets) -> None:
    for ident in (OLD, NEW):
        s3.put(f"production/hourly/{ident}.pbk", _sealed(tmp_path / ident, secrets, ident))
    # Newer, but only a daily key: `latest` names the newest hourly snapshot.
    s3.put(f"production/daily/{NEWEST}.pbk", _sealed(tmp_path / NEWEST, secrets, NEWEST))
    result = _run(s3, str(config), "--fetch", "latest", "--to", str(tmp_path / "restore"),
                  "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == NEW
    assert (tmp_path / "restore" / "snapshot.db").read_bytes() == \
        (tmp_path / NEW / "original.db").read_bytes()


def test_latest_is_this_environments_newest_under_a_shared_prefix(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    """prod-eu.yaml copied from prod.yaml keeps bucket and prefix: its newer snapshot is not
    prod's `latest` (before: picked by name, then refused as another environment's)."""
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / NEW, secrets, NEW))
    neighbour = "20260307T030000Z-prod-eu-cp-1"
    s3.put(f"production/hourly/{neighbour}.pbk",
           _sealed(tmp_path / neighbour, secrets, neighbour, environment="prod-eu"))
    result = _run(s3, str(config), "--fetch", "latest", "--to", str(tmp_path / "restore"),
                  "-o", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["id"] == NEW


@pytest.mark.parametrize("existing", [False, True])
def test_a_flipped_byte_is_refused_and_nothing_is_left(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets,
        existing: bool) -> None:
    body = bytearray(_sealed(tmp_path / "agent", secrets, NEW))
    body[len(body) // 2] ^= 0x01
    s3.put(f"production/hourly/{NEW}.pbk", bytes(body))
    dest = tmp_path / "restore"
    if existing:
        dest.mkdir()
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(dest))
    assert result.exit_code == 1, result.stderr
    assert (f"snapshot {NEW} is corrupted or truncated: its checksum does not match"
            in result.stderr)
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert (list(dest.iterdir()) == []) if existing else not dest.exists()
    assert _leftovers(tmp_path) == []


def test_another_environments_object_is_refused(tmp_path: Path, s3: FakeS3, config: Path,
                                                secrets: ClusterSecrets) -> None:
    """Same recipient key and PKI (one operator's two environments sharing nothing else
    would differ in both; this isolates the environment check)."""
    s3.put(f"production/hourly/{NEW}.pbk",
           _sealed(tmp_path / "agent", secrets, NEW, environment="staging"))
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert (f"production/hourly/{NEW}.pbk: its header names snapshot '{NEW}' of environment "
            "'staging', not") in result.stderr
    assert not (tmp_path / "restore").exists() and _leftovers(tmp_path) == []


def test_a_renamed_object_is_refused(tmp_path: Path, s3: FakeS3, config: Path,
                                     secrets: ClusterSecrets) -> None:
    """An old snapshot copied under a newer ID would be restored as if it were recent."""
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, OLD))
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert f"names snapshot '{OLD}' of environment 'prod', not '{NEW}'" in result.stderr
    assert not (tmp_path / "restore").exists()


def test_a_meta_json_naming_another_snapshot_is_refused(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    """A header made to match the key around an archive of another snapshot."""
    body = _sealed(tmp_path / "agent", secrets, NEW, meta_id=OLD)
    header = body.split(b"\n", 1)[0]
    assert json.loads(header)["id"] == OLD
    # Re-seal with the right header: the agent's seal takes the header fields separately.
    work = tmp_path / "again"
    work.mkdir()
    recipient = recipient_of(secrets)
    assert recipient is not None
    etcd_backup.seal(tmp_path / "agent" / "archive.tar.gz", work / "object.pbk", recipient,
                     {"id": NEW, "environment": "prod", "taken_at": "2026-03-07T02:00:00Z"},
                     work)
    s3.put(f"production/hourly/{NEW}.pbk", (work / "object.pbk").read_bytes())
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert f"its meta.json names snapshot '{OLD}'" in result.stderr
    assert not (tmp_path / "restore").exists() and _leftovers(tmp_path) == []


def test_an_object_with_another_clusters_pki_is_refused(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    """Anyone with the public recipient key (every node, the Secret) can make an object
    that opens: only its PKI tells this cluster's snapshot from a forged one."""
    other = make_secrets("prod")
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, NEW,
                                                   pki_of=other))
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert (f"production/hourly/{NEW}.pbk: its PKI is not this cluster's (ca.crt, ca.key, "
            "sa.key, sa.pub, front-proxy-ca.crt, front-proxy-ca.key, etcd/ca.crt, "
            "etcd/ca.key differ") in result.stderr
    assert "a snapshot of another cluster, or one made by someone else" in result.stderr
    assert not (tmp_path / "restore").exists() and _leftovers(tmp_path) == []
    # One key swapped is enough (the service-account key signs every token).
    one = replace(secrets, shared={**secrets.shared, "sa.key": other.shared["sa.key"]})
    s3.put(f"production/hourly/{OLD}.pbk", _sealed(tmp_path / "one", secrets, OLD,
                                                   pki_of=one))
    result = _run(s3, str(config), "--fetch", OLD, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert "its PKI is not this cluster's (sa.key differ" in result.stderr


def test_a_non_empty_folder_is_refused_untouched(tmp_path: Path, s3: FakeS3, config: Path,
                                                 secrets: ClusterSecrets) -> None:
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, NEW))
    dest = tmp_path / "restore"
    dest.mkdir()
    (dest / "snapshot.db").write_text("an earlier restore's")
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(dest))
    assert result.exit_code == 2, result.stderr
    assert f"--to {dest}: the folder is not empty" in result.stderr
    assert [p.name for p in dest.iterdir()] == ["snapshot.db"]
    assert (dest / "snapshot.db").read_text() == "an earlier restore's"


def test_a_missing_id_exits_2_naming_list(tmp_path: Path, s3: FakeS3, config: Path,
                                          secrets: ClusterSecrets) -> None:
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, NEW))
    for ident, said in ((OLD, f"no snapshot {OLD} under s3://{s3.bucket}/production/"),
                        ("../staging/hourly/x", "not a snapshot ID")):
        result = _run(s3, str(config), "--fetch", ident, "--to", str(tmp_path / "restore"))
        assert result.exit_code == 2, result.stderr
        assert said in result.stderr and "provision backup CONFIG --list" in result.stderr
        assert not (tmp_path / "restore").exists() and _leftovers(tmp_path) == []


def test_latest_of_an_empty_bucket_and_half_the_options_exit_2(
        tmp_path: Path, s3: FakeS3, config: Path, secrets: ClusterSecrets) -> None:
    result = _run(s3, str(config), "--fetch", "latest", "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert "no hourly snapshot of prod under" in result.stderr and "--list" in result.stderr
    for args in (["--fetch", "latest"], ["--to", "x"], ["--list", "--fetch", "latest",
                                                        "--to", "x"]):
        result = _run(s3, str(config), *args)
        assert result.exit_code == 2, args
        assert "--fetch ID and --to DIR go together" in result.stderr


def test_without_the_recipient_key_exit_2_naming_it(tmp_path: Path, s3: FakeS3, config: Path,
                                                    secrets: ClusterSecrets) -> None:
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, NEW))
    (tmp_path / ".provision" / "prod" / "secrets" / "backup-recipient.key").unlink()
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 2, result.stderr
    assert "no backup recipient key in" in result.stderr
    assert not (tmp_path / ".provision" / "prod" / "secrets" / "backup-recipient.key"
                ).exists(), "fetch never makes a new key (nothing could open old snapshots)"


def test_with_remote_state_the_sealed_copy_opens_it_from_a_fresh_work_folder(
        tmp_path: Path, s3: FakeS3, config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI runner or a new laptop: no work folder, the recipient key only in the sealed
    copy beside the remote state (bootstrap/custody.py), opened with PROVISION_SECRETS_KEY."""
    import base64

    doc = yaml.safe_load(config.read_text())
    doc["state"] = {"backend": "spaces", "bucket": s3.bucket, "region": "fra1",
                    "endpoint": s3.endpoint}
    config.write_text(yaml.safe_dump(doc, sort_keys=False))
    for name, value in {"SPACES_ACCESS_KEY_ID": s3.access_key,
                        "SPACES_SECRET_ACCESS_KEY": s3.secret_key,
                        "PROVISION_SECRETS_KEY": base64.b64encode(os.urandom(32)).decode()
                        }.items():
        monkeypatch.setenv(name, value)
    env = load_environment(config)
    secrets = Workdir.for_config(config, env, None).cluster_secrets(env)
    assert s3.keys("") != [] and secrets.backup_key is not None
    shutil.rmtree(tmp_path / ".provision")
    s3.put(f"production/hourly/{NEW}.pbk", _sealed(tmp_path / "agent", secrets, NEW))
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "restore"))
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "restore" / "snapshot.db").read_bytes() == \
        (tmp_path / "agent" / "original.db").read_bytes()
    assert not (tmp_path / ".provision" / "prod" / "secrets").exists(), "nothing written"
    monkeypatch.delenv("PROVISION_SECRETS_KEY")
    result = _run(s3, str(config), "--fetch", NEW, "--to", str(tmp_path / "again"))
    assert result.exit_code == 2, result.stderr
    assert "PROVISION_SECRETS_KEY is not set; it is needed to open the cluster secrets " \
           "sealed at" in result.stderr
