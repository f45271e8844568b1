"""What `up` and `plan` do for etcd backups before any snapshot exists.

* Preflight (online): with `backups:` set, the Spaces key must be exported and the bucket
  must exist (HeadBucket against a fake S3 over real HTTP: moto, tests/fakes/s3.py). S3's
  HeadBucket, as the AWS SDK documents it (@aws-sdk/client-s3 3.218.0,
  dist-types/commands/HeadBucketCommand.d.ts): "If the bucket does not exist or you do not
  have permission to access it, the HEAD request returns a generic 404 Not Found or 403
  Forbidden code"; moto answers 404 for a missing bucket.
* Custody: an RSA 3072 recipient key pair made once for the environment, kept (0600) with
  the CA, sealed beside remote state like the rest (bootstrap/sealed.py), restored by a
  fresh work folder.
* The cluster stage applies Secret kube-system/provision-backup (server-side apply) and
  creates the record ConfigMap only when it is absent, against a fake API server speaking
  TLS with the cluster's CA (as tests/integration/test_cluster_stage.py).
"""

from __future__ import annotations

import base64
import json
import os
import random
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from provisioner.errors import UsageError
from provisioner.pipeline import cluster_stage
from provisioner.pipeline.prepare import Prepared, prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.fakes.s3 import FakeS3, fake_s3
from tests.support import platform
from tests.support.cluster_tls import server_cert
from tests.support.rendering import ROOT
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration

KEY_FILE = "backup-recipient.key"


@pytest.fixture
def s3() -> Iterator[FakeS3]:
    with fake_s3() as server:
        yield server


@pytest.fixture
def sim(tmp_path: Path) -> Iterator[Simulation]:
    with simulation(tmp_path) as running:
        yield running


def _backups(s3: FakeS3, bucket: str | None = None) -> dict[str, Any]:
    return {"bucket": bucket or s3.bucket, "region": "fra1", "endpoint": s3.endpoint,
            "prefix": "production"}


def _with_key(sim: Simulation, s3: FakeS3) -> None:
    sim.env["SPACES_ACCESS_KEY_ID"] = s3.access_key
    sim.env["SPACES_SECRET_ACCESS_KEY"] = s3.secret_key


def test_plan_refuses_without_the_spaces_key_naming_the_variables(sim: Simulation,
                                                                   s3: FakeS3) -> None:
    sim.write_config({"backups": _backups(s3)})
    for name in ("SPACES_ACCESS_KEY_ID", "SPACES_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID",
                 "AWS_SECRET_ACCESS_KEY"):
        sim.env.pop(name, None)
    for args in (["plan"], ["up", "--yes", "--until", "cluster"]):
        result = sim.run(args[0], str(sim.config), *args[1:])
        assert result.code == 2, result.stderr
        assert ("backups: is set but no Spaces key is set: export SPACES_ACCESS_KEY_ID and "
                "SPACES_SECRET_ACCESS_KEY") in result.stderr
        assert "Traceback" not in result.stderr
    assert sim.droplet_names() == [], "nothing was created"


def test_a_missing_bucket_is_refused_before_anything_is_created(sim: Simulation,
                                                                s3: FakeS3) -> None:
    sim.write_config({"backups": _backups(s3, bucket="no-such-bucket-here")})
    _with_key(sim, s3)
    result = sim.run("up", str(sim.config), "--yes", "--until", "cluster")
    assert result.code == 2, result.stderr
    assert (f"backups.bucket: the bucket s3://no-such-bucket-here at {s3.endpoint} does not "
            "exist") in result.stderr
    assert sim.droplet_names() == []
    assert s3.secret_key not in result.stdout + result.stderr


def test_plan_makes_the_recipient_key_once_and_keeps_it_private(sim: Simulation,
                                                               s3: FakeS3) -> None:
    sim.write_config({"backups": _backups(s3)})
    _with_key(sim, s3)
    first = sim.run("plan", str(sim.config))
    assert first.code == 0, first.stderr
    path = sim.workdir / "secrets" / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    made = path.read_bytes()
    again = sim.run("plan", str(sim.config))
    assert again.code == 0, again.stderr
    assert path.read_bytes() == made, "never made again over the one snapshots need"
    for said in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert made.splitlines()[1].decode() not in said


def test_the_recipient_key_is_sealed_beside_remote_state(sim: Simulation, s3: FakeS3) -> None:
    sim.write_config({"state": {"backend": "spaces", "bucket": s3.bucket, "region": "fra1",
                                "endpoint": s3.endpoint}, "backups": _backups(s3)})
    _with_key(sim, s3)
    sim.env["PROVISION_SECRETS_KEY"] = base64.b64encode(os.urandom(32)).decode()
    first = sim.run("plan", str(sim.config))
    assert first.code == 0, first.stderr
    made = (sim.workdir / "secrets" / KEY_FILE).read_bytes()
    sealed = s3.get("prod/terraform.tfstate.provision-secrets")
    assert sealed is not None and made.splitlines()[1] not in sealed
    shutil.rmtree(sim.workdir)  # a new CI runner
    restored = sim.run("plan", str(sim.config))
    assert restored.code == 0, restored.stderr
    assert (sim.workdir / "secrets" / KEY_FILE).read_bytes() == made


# ----------------------------------------------------------------- the cluster stage


@pytest.fixture
def prepared(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Prepared:
    config = tmp_path / "prod.yaml"
    config.write_text((ROOT / "examples" / "production.yaml").read_text())
    monkeypatch.setenv("SPACES_ACCESS_KEY_ID", "DO00EXAMPLEACCESS")
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", "example-secret-value")
    return prepare(config, None)


@pytest.fixture
def kube(prepared: Prepared) -> Iterator[tuple[FakeKubeAPI, str]]:
    endpoint = f"127.0.{random.randint(1, 250)}.{random.randint(2, 250)}"
    cert, key = server_cert(prepared.secrets, endpoint)
    with FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key, ca_pem=prepared.secrets.ca_crt_pem,
                     client_ca_pem=prepared.secrets.ca_crt_pem, host=endpoint,
                     port=6443) as server:
        for i in (1, 2, 3):
            server.add_node(f"prod-cp-{i}", control_plane=True, external_cloud_provider=True)
        for i in (1, 2):
            server.add_node(f"prod-general-{i}-abcde", external_cloud_provider=True)
        platform.install(server)
        yield server, endpoint


def _bring_up(prepared: Prepared, endpoint: str, messages: list[str]) -> None:
    outputs = {"api_endpoint": endpoint,
               "controllers": [{"name": f"prod-cp-{i}"} for i in (1, 2, 3)],
               "workers": {f"general-{i}": {"name": f"prod-general-{i}-abcde"} for i in (1, 2)},
               # terraform/outputs.tf `network`: the node autoscaler's settings need the VPC.
               "network": {"vpc_id": "5a4a8f0e-7b0c-4c2e-9d1e-0c8f6a2b3c4d"}}
    cluster_stage.bring_up(prepared, outputs, "do-token", messages.append, api_timeout=30,
                           nodes_timeout=30, platform_timeout=30,
                           backup=cluster_stage.backup_access(prepared, messages.append))


def _text(secret: dict[str, Any], key: str) -> str:
    return base64.b64decode(secret["data"][key]).decode()


def test_cluster_stage_applies_the_secret_and_creates_the_record_once(
        prepared: Prepared, kube: tuple[FakeKubeAPI, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, endpoint = kube
    messages: list[str] = []
    _bring_up(prepared, endpoint, messages)
    secret = server.get("v1", "Secret", "provision-backup", "kube-system")
    assert secret is not None
    assert _text(secret, "access-key-id") == "DO00EXAMPLEACCESS"
    assert _text(secret, "secret-access-key") == "example-secret-value"
    recipient = serialization.load_pem_public_key(_text(secret, "recipient.pem").encode())
    assert isinstance(recipient, rsa.RSAPublicKey) and recipient.key_size == 3072
    assert prepared.secrets.backup_key is not None
    private = serialization.load_pem_private_key(prepared.secrets.backup_key, password=None)
    assert recipient.public_numbers() == private.public_key().public_numbers()  # type: ignore[union-attr]
    record = server.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
    assert record is not None and not record.get("data")
    assert any("provision-etcd-backup created" in m for m in messages)
    assert not any("example-secret-value" in m for m in messages)
    # The operator's own key went to the nodes: said, with the way to a scoped one.
    assert any("the control-plane nodes get the Spaces key you exported" in m
               and "PROVISION_BACKUP_ACCESS_KEY_ID" in m for m in messages)
    # The schedule travels in the Secret, so a changed `backups:` reaches running nodes.
    settings = json.loads(_text(secret, "settings.json"))
    assert settings["every_seconds"] == 3600 and settings["keep_hourly"] == 24
    assert settings["bucket"] == prepared.env.backups.bucket  # type: ignore[union-attr]

    # The agent recorded a snapshot; the operator rotated the Spaces key; `up` again.
    recorded = {"last-snapshot-at": "2026-12-07T10:00:00Z", "last-daily-day": "2026-12-07"}
    _merge_record(prepared, recorded)
    monkeypatch.setenv("SPACES_SECRET_ACCESS_KEY", "rotated-secret-value")
    messages.clear()
    _bring_up(prepared, endpoint, messages)
    secret = server.get("v1", "Secret", "provision-backup", "kube-system")
    assert secret is not None and _text(secret, "secret-access-key") == "rotated-secret-value"
    record = server.get("v1", "ConfigMap", "provision-etcd-backup", "kube-system")
    assert record is not None and record["data"] == recorded, "the agent's keys are kept"
    assert not any("created" in m for m in messages if "etcd backups" in m)


def _merge_record(prepared: Prepared, data: dict[str, str]) -> None:
    """A merge patch of the record, as the agent's `kubectl patch --type merge` sends it."""

    from provisioner.kube import Kube

    api = cluster_stage.api_client(cluster_stage.kubeconfig_path(prepared))
    Kube(api).request("PATCH", "/api/v1/namespaces/kube-system/configmaps/provision-etcd-backup",
                      [], {"data": data}, "application/merge-patch+json")


def test_the_nodes_get_their_own_spaces_key_when_one_is_exported(
        prepared: Prepared, kube: tuple[FakeKubeAPI, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    server, endpoint = kube
    monkeypatch.setenv("PROVISION_BACKUP_ACCESS_KEY_ID", "DO00SCOPEDBACKUPKEY")
    monkeypatch.setenv("PROVISION_BACKUP_SECRET_ACCESS_KEY", "scoped-secret-value")
    # The production example autoscales: its own scoped token, so no warning is the
    # autoscaler's either.
    monkeypatch.setenv("PROVISION_AUTOSCALER_TOKEN", "do-autoscaler-token")
    messages: list[str] = []
    _bring_up(prepared, endpoint, messages)
    secret = server.get("v1", "Secret", "provision-backup", "kube-system")
    assert secret is not None
    assert _text(secret, "access-key-id") == "DO00SCOPEDBACKUPKEY"
    assert _text(secret, "secret-access-key") == "scoped-secret-value"
    assert not any("warning" in m for m in messages)
    monkeypatch.delenv("PROVISION_BACKUP_SECRET_ACCESS_KEY")
    with pytest.raises(UsageError) as caught:
        cluster_stage.backup_access(prepared, messages.append)
    assert "export both PROVISION_BACKUP_ACCESS_KEY_ID and PROVISION_BACKUP_SECRET_ACCESS_KEY" \
        in str(caught.value)
