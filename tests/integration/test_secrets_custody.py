"""Cluster secrets beside remote state: a fresh work folder needs only the tokens and the key.

`provision up` against the simulated cloud with its state in a fake Spaces (moto over real
HTTP, tests/fakes/s3.py, as tests/contract/test_remote_state.py uses it): the secrets are
sealed (AES-256-GCM) beside the state object; after the work folder is lost, the next run
restores them byte for byte, or refuses with a clear message when the key is missing,
wrong, or the copy was altered; a CA that is not the cluster's is refused before Terraform
plans anything. The conditional create of the sealed copy uses `If-None-Match: *` on
PutObject, which moto 5.2.1 answers with 412 when the object exists (see tests/fakes/s3.py).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.s3 import FakeS3, fake_s3
from tests.support.sim import Result, Simulation, simulation

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("inside_production_window")]

KEY_VAR = "PROVISION_SECRETS_KEY"
STATE_KEY = "prod/terraform.tfstate"
SEALED = STATE_KEY + ".provision-secrets"


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        yield running


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with fake_s3() as server:
        yield server


def _use_spaces(sim: Simulation, s3: FakeS3) -> str:
    sim.write_config({"state": {"backend": "spaces", "bucket": s3.bucket, "region": "fra1",
                                "endpoint": s3.endpoint}})
    sim.env["SPACES_ACCESS_KEY_ID"] = s3.access_key
    sim.env["SPACES_SECRET_ACCESS_KEY"] = s3.secret_key
    key = base64.b64encode(os.urandom(32)).decode()
    sim.env[KEY_VAR] = key
    return key


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.exists() else {}


def _said(result: Result) -> str:
    return result.stdout + result.stderr


def test_a_fresh_work_folder_restores_the_sealed_secrets(sim: Simulation, s3: FakeS3) -> None:
    key = _use_spaces(sim, s3)
    up = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert up.code == 0, up.stderr
    folder = sim.workdir / "secrets"
    original = _files(folder)
    assert sorted(original) == ["bootstrap.json", "ca.crt", "ca.key", "etcd-ca.crt",
                                "etcd-ca.key", "front-proxy-ca.crt", "front-proxy-ca.key",
                                "sa.key", "sa.pub"]

    sealed = s3.get(SEALED)
    assert sealed is not None, s3.keys()
    envelope = json.loads(sealed)
    assert envelope["environment"] == "prod" and envelope["cipher"] == "AES-256-GCM"
    tokens = json.loads(original["bootstrap.json"])
    for secret in (original["ca.key"].splitlines()[1], tokens["bootstrap_token"].encode(),
                   tokens["certificate_key"].encode(), key.encode()):
        assert secret not in sealed, "the copy beside the state is sealed"
    outputs = [_said(up)]

    shutil.rmtree(sim.workdir)  # a new CI runner

    del sim.env[KEY_VAR]
    refused = sim.run("plan", str(sim.config))
    assert refused.code == 2, refused.stderr
    assert f"{KEY_VAR} is not set" in refused.stderr and SEALED in refused.stderr
    assert "ca.key" not in _files(folder), "no new CA made in its place"

    sim.env[KEY_VAR] = base64.b64encode(os.urandom(32)).decode()
    wrong = sim.run("plan", str(sim.config))
    assert wrong.code == 2 and f"{KEY_VAR} is not the key" in wrong.stderr, wrong.stderr
    outputs += [_said(refused), _said(wrong)]

    sim.env[KEY_VAR] = key
    altered = dict(envelope)
    cipher = bytearray(base64.b64decode(envelope["ciphertext"]))
    cipher[len(cipher) // 2] ^= 0x01
    altered["ciphertext"] = base64.b64encode(bytes(cipher)).decode()
    s3.put(SEALED, json.dumps(altered).encode())
    tampered = sim.run("plan", str(sim.config))
    assert tampered.code == 2 and "fails its integrity check" in tampered.stderr, tampered.stderr
    assert "ca.key" not in _files(folder)
    outputs.append(_said(tampered))

    s3.put(SEALED, sealed)
    again = sim.run("plan", str(sim.config), "--exit-code")
    assert again.code == 0, again.stdout + again.stderr  # the same secrets: nothing to change
    assert _files(folder) == original
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in folder.iterdir())
    outputs.append(_said(again))
    for said in outputs:
        assert key not in said, "the key is never printed"
        assert tokens["bootstrap_token"] not in said


def test_a_ca_that_is_not_the_clusters_is_refused_before_terraform(sim: Simulation,
                                                                    s3: FakeS3) -> None:
    from provisioner.bootstrap.pki import make_secrets

    _use_spaces(sim, s3)
    assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
    droplets = sim.droplet_names()
    folder = sim.workdir / "secrets"
    recorded = json.loads(s3.get(SEALED) or b"{}")["ca_cert_hash"]

    other = make_secrets("prod")  # e.g. the secrets folder of another copy of the env
    (folder / "ca.crt").write_bytes(other.ca_crt_pem)
    (folder / "ca.key").write_bytes(other.ca_key_pem)
    plans = sim.workdir / "plans"
    shutil.rmtree(plans)
    refused = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert refused.code == 2, refused.stderr
    assert f"is not the CA the cluster was built with ({recorded}" in refused.stderr
    assert "nothing was planned or applied" in refused.stderr
    assert not plans.exists(), "Terraform was not asked to plan"
    assert sim.droplet_names() == droplets

    # An environment made before the sealed copy existed, on a fresh runner: refused with
    # the way to bring its secrets (the CI secret of earlier workflows), never a new CA.
    s3.client.delete_object(Bucket=s3.bucket, Key=SEALED)
    shutil.rmtree(sim.workdir)
    orphan = sim.run("plan", str(sim.config))
    assert orphan.code == 2, orphan.stderr
    assert "holds a cluster built with one" in orphan.stderr
    assert "PROVISION_CLUSTER_SECRETS" in orphan.stderr
    assert s3.get(SEALED) is None and "ca.key" not in _files(folder)


def test_the_sealed_copy_is_created_only_once(s3: FakeS3) -> None:
    """Two first runs racing: the second create is refused (412 to `If-None-Match: *`), so
    the second run adopts the first one's CA instead of overwriting it."""
    from provisioner.cloud.spaces import StateBucket

    bucket = StateBucket(s3.endpoint, s3.bucket, STATE_KEY)
    bucket._client = s3.client
    assert bucket.put(bucket.secrets_key, b"first", only_if_absent=True) is True
    assert bucket.put(bucket.secrets_key, b"second", only_if_absent=True) is False
    assert s3.get(SEALED) == b"first"
    assert bucket.get(STATE_KEY + ".absent") is None


def test_a_fresh_runner_does_not_delete_workers_undrained(sim: Simulation, s3: FakeS3) -> None:
    """Remote state, a new work folder (a CI runner): it holds no kubeconfig even when the
    cluster runs, so a pool change cannot be rolled through drains from it. Refused before
    anything changes (before: every old worker deleted in one apply, undrained)."""
    _use_spaces(sim, s3)
    assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
    before = sorted(sim.droplet_names())
    shutil.rmtree(sim.workdir)  # a new CI runner
    sim.write_config({"state": {"backend": "spaces", "bucket": s3.bucket, "region": "fra1",
                                "endpoint": s3.endpoint}},
                     edit=lambda d: d["worker_pools"][0]["labels"].update(tier="next"))
    refused = sim.run("up", str(sim.config), "--yes", "--until", "infra")
    assert refused.code == 2, refused.stderr
    assert "has no kubeconfig to drain them through" in refused.stderr
    assert sorted(sim.droplet_names()) == before
