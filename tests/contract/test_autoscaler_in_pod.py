"""The autoscaler service run as its pod runs it: from the code archive, with nothing but
the standard library and the three pinned wheels, finding the API server as a pod does.

The pod (render/autoscaler_code.py) is the stock python image, the wheels of grpcio,
protobuf and typing-extensions installed with ``pip install --require-hashes``, and
provision's modules unpacked from the archive. Here the same: the archive is unpacked
into a folder and the three distributions' own files (as their installed RECORDs list
them) are linked into another; the service runs in ``python -I -S`` (no site-packages, no
PYTHON* variables) with only those two folders on its path.

In-cluster discovery is the Kubernetes documentation's ("Accessing the Kubernetes API from
a Pod", kubernetes.io/docs/tasks/run-application/access-api-from-pod/, and client-go's
rest.InClusterConfig, staging/src/k8s.io/client-go/rest/config.go): the address from
``KUBERNETES_SERVICE_HOST`` / ``KUBERNETES_SERVICE_PORT``, the bearer token and the CA
from ``token`` and ``ca.crt`` in /var/run/secrets/kubernetes.io/serviceaccount. The test
cannot write that folder, so the runner points the module's constant at a folder laid
out the same way; everything else is what the pod has. The fake API server serves TLS
with a certificate for 127.0.0.1 and knows only the service account's token.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import grpc

from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
from provisioner.render import autoscaler_code
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.kubeapi import FakeKubeAPI, TLSMaterial, issue_client_cert, make_tls
from tests.support.autoscaler import CA_HASH, ENV, KUBE_TOKEN, KUBE_USER, REGION, TOKEN, pool

RUNNER = """
import sys
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2]]
from provisioner.autoscaler import kubeclient
kubeclient.SERVICE_ACCOUNT = Path(sys.argv[3])
from provisioner.autoscaler.serve import main
sys.exit(main(["--settings", sys.argv[4]]))
"""
STARTUP = 120.0  # seconds: a loaded 2-core machine imports grpc slowly


def wheels_only(folder: Path) -> Path:
    """The installed files of the pinned distributions, linked into ``folder``."""
    for wheel in autoscaler_code.WHEELS:
        dist = metadata.distribution(wheel.name)
        assert dist.version == wheel.version  # the tested versions are the pinned ones
        for file in dist.files or ():
            if file.parts[0] == ".." or "__pycache__" in file.parts:
                continue  # scripts outside site-packages; caches
            target = folder / file
            target.parent.mkdir(parents=True, exist_ok=True)
            if not target.exists():
                target.symlink_to(Path(str(dist.locate_file(file))).resolve())
    return folder


def unpack_archive(folder: Path) -> Path:
    with tarfile.open(fileobj=io.BytesIO(autoscaler_code.archive()), mode="r:gz") as tar:
        tar.extractall(folder, filter="data")
    return folder


@dataclass
class Pod:
    process: subprocess.Popen[str]
    port: int
    stderr: list[str]
    tls: TLSMaterial  # the service's certificate and the CA of its clients


@contextmanager
def pod(tmp_path: Path, kube: FakeKubeAPI, do_origin: str, vpc: str,
        account: Path) -> Iterator[Pod]:
    code, site = unpack_archive(tmp_path / "code"), wheels_only(tmp_path / "site")
    tls = make_tls(("localhost", "127.0.0.1"))
    files = tmp_path / "mounted"
    files.mkdir()
    for name, data in (("tls.crt", tls.cert_pem), ("tls.key", tls.key_pem),
                       ("ca.crt", tls.ca_pem), ("token", TOKEN.encode()),
                       ("values.json", json.dumps({"ca_cert_hash": CA_HASH}).encode())):
        (files / name).write_bytes(data)
    settings: dict[str, Any] = {
        "environment": ENV, "listen": "127.0.0.1:0",
        "tls": {"cert": str(files / "tls.crt"), "key": str(files / "tls.key"),
                "client_ca": str(files / "ca.crt")},
        "do_api_url": do_origin, "do_token_file": str(files / "token"),
        "secret_values_file": str(files / "values.json"),
        "kube_api": None,  # as rendered: the pod's service account
        "pools": [pool("general", 1, 4, vpc)]}
    (files / "settings.json").write_text(json.dumps(settings))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "KUBERNETES_SERVICE_HOST": "127.0.0.1",
           "KUBERNETES_SERVICE_PORT": str(kube.port)}
    process = subprocess.Popen(
        [sys.executable, "-I", "-S", "-c", RUNNER, str(code), str(site), str(account),
         str(files / "settings.json")],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: list[str] = []
    ready = threading.Event()
    port: list[int] = []

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "serving the externalgrpc cloud provider on port" in line:
                port.append(int(line.split("on port ")[1].split()[0]))
                ready.set()
        ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        ready.wait(STARTUP)
        yield Pod(process, port[0] if port else 0, lines, tls)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        reader.join(timeout=10)


def service_account(folder: Path, kube: FakeKubeAPI) -> Path:
    folder.mkdir()
    (folder / "token").write_text(KUBE_TOKEN)
    (folder / "ca.crt").write_bytes(kube.ca_pem or b"")
    (folder / "namespace").write_text("provision-system")
    return folder


@contextmanager
def apis(tmp_path: Path) -> Iterator[tuple[FakeDigitalOcean, FakeKubeAPI, str]]:
    with FakeDigitalOcean(tmp_path / "account.json", TOKEN, validate=True) as fake, \
            FakeKubeAPI(tls=True, tokens={KUBE_TOKEN: KUBE_USER}) as kube:
        fake.seed()
        vpc = str(fake.provider_create("digitalocean_vpc", name=f"{ENV}-net",
                                       region=REGION)["id"])
        yield fake, kube, vpc
        assert fake.violations == []


def test_the_pod_scales_up_with_only_the_wheels_and_its_service_account(
        tmp_path: Path) -> None:
    """IncreaseSize in the pod's interpreter: droplets made through urllib, the join token's
    Secret created over TLS as the service account, and SIGTERM ends it with 0."""
    with apis(tmp_path) as (fake, kube, vpc):
        account = service_account(tmp_path / "serviceaccount", kube)
        with pod(tmp_path, kube, fake.origin, vpc, account) as running:
            assert running.port, "".join(running.stderr)
            cert, key = issue_client_cert(running.tls, "cluster-autoscaler", ())
            credentials = grpc.ssl_channel_credentials(
                root_certificates=running.tls.ca_pem, private_key=key, certificate_chain=cert)
            with grpc.secure_channel(f"localhost:{running.port}", credentials) as channel:
                stub: Any = pb_grpc.CloudProviderStub(channel)  # type: ignore[no-untyped-call]
                stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(
                    id=f"{ENV}-general", delta=2), timeout=60)
            assert len(fake.requests("POST", "/v2/droplets")) == 1  # one multi-create
            with fake.cloud.transaction() as held:
                made = [d for d in held.table("digitalocean_droplet").values()
                        if f"provision:{ENV}:autoscaled" in (d.get("tags") or [])]
            assert len(made) == 2
            creates = kube.requests("POST", "/api/v1/namespaces/kube-system/secrets")
            assert [r.user for r in creates] == [KUBE_USER]
            assert creates[0].status == 201
            running.process.send_signal(signal.SIGTERM)
            assert running.process.wait(timeout=60) == 0
        assert TOKEN not in "".join(running.stderr)
        assert KUBE_TOKEN not in "".join(running.stderr)


def test_a_pod_without_its_service_account_token_stops_at_start(tmp_path: Path) -> None:
    """automountServiceAccountToken off (no token file): one line naming the file, exit 2,
    before the port is opened."""
    with apis(tmp_path) as (fake, kube, vpc):
        account = tmp_path / "serviceaccount"
        account.mkdir()
        with pod(tmp_path, kube, fake.origin, vpc, account) as running:
            assert running.process.wait(timeout=STARTUP) == 2
        assert running.port == 0
        text = "".join(running.stderr).strip()
        assert text.count("\n") == 0 and "Traceback" not in text
        assert f"cannot read the service account token {account / 'token'}" in text

