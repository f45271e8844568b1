"""Which CA a run uses: the one on disk, checked against the one the cluster was built with.

The work folder's ``secrets/`` is a cache. What the cluster was built with is recorded
where the Terraform state lives, so it survives the loss of the work folder with the state:

* local state: ``state/cluster-ca.sha256`` beside ``terraform.tfstate``, the CA's
  fingerprint (kubeadm's discovery hash);
* remote state (Spaces): ``<state key>.provision-secrets`` beside the state object, the
  secrets sealed with ``PROVISION_SECRETS_KEY`` (sealed.py), their fingerprint in clear.
  A fresh work folder (a CI runner) gets them back from there.

Every online run compares before Terraform runs, so a CA that does not match the cluster is
refused before any plan or apply, not found later as a TLS error. A new CA is made only
when nothing records one for a cluster that exists.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from provisioner.bootstrap.pki import (
    BACKUP_KEY,
    CA_CRT,
    RECOVERY,
    ClusterSecrets,
    SecretsError,
    make_secrets,
    read_secrets,
    save_secrets,
    with_shared_keys,
)
from provisioner.bootstrap.private_files import private_folder, write_private
from provisioner.config.model import Environment
from provisioner.errors import WorkdirError

RECORD = "cluster-ca.sha256"
LOCAL_STATE_FILE = "terraform.tfstate"

Report = Callable[[str], None]


def cluster_secrets(folder: Path, state_dir: Path, env: Environment, online: bool = True,
                    report: Report | None = None) -> ClusterSecrets | None:
    """The environment's secrets, checked against the record beside its state.

    Offline (``plan --offline``) with remote state nothing is fetched or made: None when
    the folder holds no CA yet (the next online run restores or makes it).
    """
    say = report or (lambda message: None)
    private_folder(folder)
    local = read_secrets(folder)
    if env.state.backend == "spaces":
        if not online:
            return local
        return _with_backup_key(folder, env, _beside_remote_state(folder, env, local, say),
                                say)
    return _with_backup_key(folder, env, _beside_local_state(folder, state_dir, env, local),
                            say)


def _with_backup_key(folder: Path, env: Environment, found: ClusterSecrets,
                     say: Report) -> ClusterSecrets:
    """``found`` with the backup recipient key, made (and kept like the CA) the first time
    the environment asks for backups. Never made again over one that exists: the snapshots
    already taken open only with it."""
    if env.backups is None or found.backup_key is not None:
        return found
    from provisioner.bootstrap.backup_keys import new_backup_key

    made = replace(found, backup_key=new_backup_key())
    if env.state.backend == "spaces":
        from provisioner.bootstrap.sealed import key_from_environment, seal
        from provisioner.cloud.spaces import StateBucket

        bucket = StateBucket.of(env)
        key = key_from_environment("to keep the backup key sealed beside the remote state")
        bucket.put(bucket.secrets_key, seal(made, env.name, key).to_bytes())
    save_secrets(folder, made)
    say(f"made the key etcd backups are encrypted to: {folder / BACKUP_KEY} (keep it with "
        "the CA; without it no snapshot can be opened)")
    return made


def _mismatch(folder: Path, local: ClusterSecrets, recorded: str, where: str) -> SecretsError:
    return SecretsError(
        f"the CA in {folder / CA_CRT} ({local.ca_cert_hash}) is not the CA the cluster was "
        f"built with ({recorded}, recorded in {where}); nothing was planned or applied. "
        f"Put the cluster's own ca.crt and ca.key back into {folder}: {RECOVERY}")


def _beside_local_state(folder: Path, state_dir: Path, env: Environment,
                        local: ClusterSecrets | None) -> ClusterSecrets:
    from provisioner.cloud.spaces import state_text_has_resources

    record = state_dir / RECORD
    tfstate = state_dir / LOCAL_STATE_FILE
    try:
        recorded = record.read_text().strip() if record.is_file() else None
        body = tfstate.read_bytes() if tfstate.is_file() else None
    except OSError as e:
        raise WorkdirError(f"cannot read {state_dir}: {e.strerror}") from e
    if body is not None and not _is_json(body):
        # Whether it held a cluster cannot be told, so neither a new CA nor an apply is safe.
        raise WorkdirError(f"{tfstate} is damaged (not a Terraform state, not even JSON): "
                           f"put back the last good copy (Terraform keeps one in "
                           f"{tfstate.name}.backup beside it) or your own backup, then run again")
    cluster_exists = body is not None and state_text_has_resources(body)
    if local is None:
        if cluster_exists:
            raise SecretsError(f"{folder} holds no CA, but the Terraform state {tfstate} "
                               "holds a cluster built with one"
                               + (f" ({recorded})" if recorded else "") + f": {RECOVERY}")
        local = make_secrets(env.name)
        save_secrets(folder, local)
    elif recorded is not None and recorded != local.ca_cert_hash and cluster_exists:
        raise _mismatch(folder, local, recorded, str(record))
    if not local.shared and not cluster_exists:
        # A folder from before provision made them, for a cluster not built yet: kubeadm
        # init will use these. Never for a cluster that exists: its first node made its own.
        local = with_shared_keys(local, env.name)
        save_secrets(folder, local)
    if recorded != local.ca_cert_hash:
        # Before the first apply (or with no cluster left): this CA is the environment's now.
        private_folder(state_dir)
        write_private(record, (local.ca_cert_hash + "\n").encode())
    return local


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _beside_remote_state(folder: Path, env: Environment, local: ClusterSecrets | None,
                         say: Report, attempts: int = 2) -> ClusterSecrets:
    from provisioner.bootstrap.sealed import SealedCopy, key_from_environment, seal, unseal
    from provisioner.cloud.spaces import StateBucket

    bucket = StateBucket.of(env)
    where = bucket.url(bucket.secrets_key)
    stored = bucket.get(bucket.secrets_key)
    if stored is not None:
        copy = SealedCopy.from_bytes(stored, where)
        if local is not None and local.ca_cert_hash != copy.ca_cert_hash:
            raise _mismatch(folder, local, copy.ca_cert_hash, where)
        key = key_from_environment(f"to open the cluster secrets sealed at {where}")
        kept = unseal(copy, env.name, key, where)
        if not kept.shared and not (local and local.shared) \
                and not bucket.state_has_resources():
            kept = with_shared_keys(kept, env.name)  # a cluster not built yet (see local)
            bucket.put(bucket.secrets_key, seal(kept, env.name, key).to_bytes())
        if local is not None and not local.shared and kept.shared:
            local = replace(local, shared=kept.shared)
            save_secrets(folder, local)
        if local is not None and kept.backup_key and local.backup_key != kept.backup_key:
            # The sealed copy's backup key is the one snapshots were encrypted to.
            local = replace(local, backup_key=kept.backup_key)
            save_secrets(folder, local)
        if local is None:
            save_secrets(folder, kept)
            say(f"restored the cluster secrets from {where}")
            return kept
        if kept != local:  # same CA, join tokens made again since: keep the copy current
            bucket.put(bucket.secrets_key, seal(local, env.name, key).to_bytes())
        return local
    key = key_from_environment(f"to keep the cluster secrets sealed beside the remote state "
                               f"({where}), so a fresh work folder can get them back")
    if local is None:
        if bucket.state_has_resources():
            raise SecretsError(
                f"{folder} holds no CA and {where} does not exist, but the state "
                f"{bucket.url(bucket.state_key)} holds a cluster built with one. Put its "
                f"ca.crt, ca.key and bootstrap.json into {folder} (e.g. from the "
                "PROVISION_CLUSTER_SECRETS CI secret) and run again: provision then stores "
                "the sealed copy")
        made = make_secrets(env.name)
    else:
        made = local if local.shared or bucket.state_has_resources() \
            else with_shared_keys(local, env.name)
    if not bucket.put(bucket.secrets_key, seal(made, env.name, key).to_bytes(),
                      only_if_absent=True):
        if attempts <= 1:
            raise SecretsError(f"{where} keeps changing while provision writes it; run again")
        # Another run stored its CA first: theirs is the environment's (or ours mismatches).
        return _beside_remote_state(folder, env, local, say, attempts - 1)
    if made is not local:
        save_secrets(folder, made)
    say(f"stored the cluster secrets sealed at {where}")
    return made
