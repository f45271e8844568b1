"""The cluster secrets on disk: whole or absent, a matching pair, never a silent new CA.

Driven through `provision plan --offline` (local state), as an operator runs it; the full
disk is a real one for the process: RLIMIT_FSIZE makes the kernel refuse writes past the
limit with EFBIG (setrlimit(2); CPython ignores SIGXFSZ, so the write fails instead of the
process being killed), exactly where ENOSPC would hit on a full filesystem.
"""

from __future__ import annotations

import errno
import os
import resource
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from provisioner.bootstrap import private_files
from provisioner.bootstrap.pki import make_secrets
from provisioner.bootstrap.sealed import seal, unseal
from provisioner.cli.main import cli
from provisioner.errors import ProvisionError, WorkdirError
from tests.support.rendering import ROOT

NAMES = ["bootstrap.json", "ca.crt", "ca.key"]


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples/production.yaml").read_text())
    return config


def _plan(config: Path) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["plan", str(config), "--offline"])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception  # a traceback is a bug, not an answer
    return result.exit_code, result.stderr


def _secrets_dir(tmp_path: Path) -> Path:
    return tmp_path / ".provision" / "prod" / "secrets"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_a_failed_write_leaves_the_previous_file_and_no_temporary(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC half-way through a write, or at the rename: the old file is still whole."""
    target = tmp_path / "ca.key"
    private_files.write_private(target, b"the good key\n")
    real_write = os.write

    def half_then_full(fd: int, data: bytes | memoryview) -> int:
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(private_files.os, "write", half_then_full)
    with pytest.raises(WorkdirError, match=r"ca\.key: No space left on device"):
        private_files.write_private(target, b"x" * 4096)
    monkeypatch.undo()
    assert target.read_bytes() == b"the good key\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ca.key"], "temporary file left behind"

    def no_rename(src: str, dst: str) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(private_files.os, "replace", no_rename)
    with pytest.raises(WorkdirError):
        private_files.write_private(target, b"new key\n")
    monkeypatch.undo()
    assert target.read_bytes() == b"the good key\n"
    assert [p.name for p in tmp_path.iterdir()] == ["ca.key"]


def test_a_full_disk_while_making_the_ca_leaves_nothing_broken(tmp_path: Path) -> None:
    """A real write limit while the CA is made: a clear error, no partial file, and the next
    run (with room again) makes a good CA instead of failing forever on a 0-byte ca.key."""
    config = _config(tmp_path)
    assert _plan(config)[0] == 0  # renders everything, so the limited run writes little
    folder = _secrets_dir(tmp_path)
    for path in folder.iterdir():  # the CA, the tokens and the shared control-plane keys
        path.unlink()
    state = tmp_path / ".provision" / "prod" / "state"
    if state.exists():
        for path in state.iterdir():
            path.unlink()

    def limit() -> None:  # the PEM certificate (~1.1 kB) and key (~1.7 kB) do not fit
        resource.setrlimit(resource.RLIMIT_FSIZE, (1024, 1024))

    full = subprocess.run([sys.executable, "-m", "provisioner", "plan", str(config),
                           "--offline"], capture_output=True, text=True, preexec_fn=limit,
                          cwd=tmp_path, env=dict(os.environ), timeout=120)
    assert full.returncode == 1, full.stdout + full.stderr
    assert sorted(p.name for p in folder.iterdir()) == [], "partial or temporary files left"
    assert "cannot write" in full.stderr and "File too large" in full.stderr, full.stderr
    assert "Traceback" not in full.stderr

    code, stderr = _plan(config)
    assert code == 0, stderr
    files = _snapshot(folder)
    # The example sets `backups:`: the key snapshots are encrypted to is kept here too.
    assert sorted(files) == sorted([*NAMES, "etcd-ca.crt", "etcd-ca.key", "front-proxy-ca.crt",
                                    "front-proxy-ca.key", "sa.key", "sa.pub",
                                    "backup-recipient.key"])
    assert files["ca.key"].startswith(b"-----BEGIN RSA PRIVATE KEY-----")


@pytest.mark.parametrize(("gone", "kept"), [("ca.key", "ca.crt"), ("ca.crt", "ca.key")])
def test_half_a_ca_is_refused_never_replaced(tmp_path: Path, gone: str, kept: str) -> None:
    config = _config(tmp_path)
    assert _plan(config)[0] == 0
    folder = _secrets_dir(tmp_path)
    (folder / gone).unlink()
    before = _snapshot(folder)

    code, stderr = _plan(config)
    assert code == 2, stderr
    assert f"{folder / gone} is missing but {folder / kept} exists" in stderr
    assert "restore the secrets folder from your backup" in stderr
    assert _snapshot(folder) == before, "nothing may be made over what is left of a CA"


def test_an_empty_key_is_refused_naming_the_file(tmp_path: Path) -> None:
    """What the old in-place write left on a full disk: a 0-byte ca.key."""
    config = _config(tmp_path)
    assert _plan(config)[0] == 0
    folder = _secrets_dir(tmp_path)
    (folder / "ca.key").write_bytes(b"")
    code, stderr = _plan(config)
    assert code == 2 and f"{folder / 'ca.key'} is empty" in stderr, stderr
    assert "Traceback" not in stderr


def test_a_key_from_another_ca_is_refused(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _plan(config)[0] == 0
    folder = _secrets_dir(tmp_path)
    (folder / "ca.key").write_bytes(make_secrets("other").ca_key_pem)
    code, stderr = _plan(config)
    assert code == 2, stderr
    assert f"{folder / 'ca.key'} is not the key of {folder / 'ca.crt'}" in stderr


def test_a_new_ca_is_refused_while_local_state_holds_a_cluster(tmp_path: Path) -> None:
    """Both CA files gone (or replaced) while the state beside them records resources:
    refused, naming the fingerprint the cluster was built with; without resources (never
    applied, or destroyed) a new CA is fine and becomes the recorded one."""
    config = _config(tmp_path)
    assert _plan(config)[0] == 0
    folder = _secrets_dir(tmp_path)
    state = tmp_path / ".provision" / "prod" / "state"
    record = (state / "cluster-ca.sha256").read_text().strip()
    assert record.startswith("sha256:") and len(record) == 71
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    (state / "terraform.tfstate").write_text('{"version": 4, "resources": [{"type": '
                                             '"digitalocean_droplet"}]}')

    (folder / "ca.crt").unlink()
    (folder / "ca.key").unlink()
    code, stderr = _plan(config)
    assert code == 2 and "holds a cluster built with one" in stderr and record in stderr
    assert not (folder / "ca.key").exists()

    other = make_secrets("other")
    (folder / "ca.crt").write_bytes(other.ca_crt_pem)
    (folder / "ca.key").write_bytes(other.ca_key_pem)
    code, stderr = _plan(config)
    assert code == 2, stderr
    assert f"is not the CA the cluster was built with ({record}" in stderr

    (state / "terraform.tfstate").write_text('{"version": 4, "resources": []}')
    assert _plan(config)[0] == 0
    assert (state / "cluster-ca.sha256").read_text().strip() == other.ca_cert_hash


def test_secrets_are_private_whatever_the_umask(tmp_path: Path) -> None:
    config = _config(tmp_path)
    old = os.umask(0)
    try:
        assert _plan(config)[0] == 0
    finally:
        os.umask(old)
    folder = _secrets_dir(tmp_path)
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    for path in folder.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_a_sealed_copy_opens_only_for_its_environment_and_key() -> None:
    secrets = make_secrets("prod")
    key = os.urandom(32)
    copy = seal(secrets, "prod", key)
    assert secrets.ca_key_pem not in copy.to_bytes() and secrets.bootstrap_token.encode() \
        not in copy.to_bytes()
    assert unseal(copy, "prod", key, "here") == secrets
    with pytest.raises(ProvisionError, match="not 'staging'"):
        unseal(copy, "staging", key, "here")
    moved = type(copy)("staging", copy.ca_cert_hash, copy.key_id, copy.nonce, copy.ciphertext)
    with pytest.raises(ProvisionError, match="integrity"):  # the environment is bound in
        unseal(moved, "staging", key, "here")


@pytest.mark.parametrize("nonce", ["", "eHh4", "eHh4" * 70])  # 0, 3 and 210 bytes
def test_a_sealed_copy_with_a_damaged_nonce_is_a_clear_refusal(nonce: str) -> None:
    """AES-GCM refuses a nonce outside 8..128 bytes with a ValueError before any integrity
    check (cryptography's AESGCM._check_params), which was an `internal error`; provision
    always writes 12 bytes (NIST SP 800-38D's recommended IV length), so anything else is
    a damaged copy."""
    import json

    from provisioner.bootstrap.sealed import SealedCopy

    key = os.urandom(32)
    doc = json.loads(seal(make_secrets("prod"), "prod", key).to_bytes())
    doc["nonce"] = nonce
    with pytest.raises(ProvisionError, match="is not a sealed copy") as refused:
        unseal(SealedCopy.from_bytes(json.dumps(doc).encode(), "s3://b/prod.sealed"), "prod",
               key, "s3://b/prod.sealed")
    assert refused.value.exit_code == 2
