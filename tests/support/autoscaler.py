"""The autoscaler service running for real against the fake DigitalOcean and Kubernetes
APIs, and a gRPC client generated from the vendored proto (contract tests, benchmark)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from provisioner.autoscaler import serve, settings
from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
from tests.fakes.doapi import FakeDigitalOcean
from tests.fakes.kubeapi import FakeKubeAPI, TLSMaterial, issue_client_cert, make_tls

ENV = "prod"
TOKEN = "autoscaler-do-token-0123456789"
REGION = "fra1"
# The service account token the fake API server knows, and the user it stands for.
KUBE_TOKEN = "autoscaler-service-account-token"
KUBE_USER = "system:serviceaccount:provision-system:provision-autoscaler"
WORKER_TAGS = [f"provision:{ENV}", f"provision:{ENV}:worker"]
CA_HASH = "sha256:" + "ab" * 32
USER_DATA = [{"text": "#!/bin/sh\nkubeadm join "}, {"ref": "api_endpoint"},
             {"text": " --token "}, {"ref": "bootstrap_token"},
             {"text": " --discovery-token-ca-cert-hash "}, {"ref": "ca_cert_hash"},
             {"text": "\n"}]


@dataclass
class World:
    fake: FakeDigitalOcean
    kube: FakeKubeAPI
    tls: TLSMaterial
    client_cert: tuple[bytes, bytes]
    port: int
    vpc: str
    terraform_worker: int  # a droplet Terraform owns in the general pool
    settings_path: Path

    def channel(self, with_client_cert: bool = True, ca: bytes | None = None) -> grpc.Channel:
        cert, key = self.client_cert
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca or self.tls.ca_pem,
            private_key=key if with_client_cert else None,
            certificate_chain=cert if with_client_cert else None)
        return grpc.secure_channel(f"localhost:{self.port}", credentials)

    def stub(self, **kwargs: Any) -> Any:
        make: Any = pb_grpc.CloudProviderStub  # generated, untyped
        return make(self.channel(**kwargs))

    def autoscaled(self) -> list[dict[str, Any]]:
        """Droplets carrying the autoscaled tag, as the account holds them."""
        with self.fake.cloud.transaction() as account:
            return [dict(d) for d in account.table("digitalocean_droplet").values()
                    if f"provision:{ENV}:autoscaled" in (d.get("tags") or [])]

    def user_data(self, droplet_id: int) -> str:
        with self.fake.cloud.transaction() as account:
            return str(account.data["user_data"][str(droplet_id)])


def pool(name: str, minimum: int, maximum: int, vpc: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "min": minimum, "max": maximum, "size": "s-2vcpu-4gb",
            "region": REGION, "image": "ubuntu-24-04-x64", "vpc_uuid": vpc, "ssh_keys": [],
            "tags": [*WORKER_TAGS, f"provision:{ENV}:pool:{name}"],
            "labels": {"tier": name}, "taints": [], "user_data": USER_DATA,
            "values": {"api_endpoint": "10.10.0.5:6443", "vpc_id": vpc}, **extra}


@contextmanager
def running(tmp_path: Path, latency: float = 0.0) -> Iterator[World]:
    """Fake APIs, settings files and the real service on a localhost port."""
    with FakeDigitalOcean(tmp_path / "account.json", TOKEN, validate=True) as fake, \
            FakeKubeAPI(tls=True, tokens={KUBE_TOKEN: KUBE_USER}) as kube:
        fake.seed()
        vpc = str(fake.provider_create("digitalocean_vpc", name=f"{ENV}-net",
                                       region=REGION)["id"])
        terraform_worker = fake.add_droplet(
            f"{ENV}-general-1-abcde", region=REGION, size="s-2vcpu-4gb",
            tags=[*WORKER_TAGS, f"provision:{ENV}:pool:general"], vpc_uuid=vpc)
        tls = make_tls(("localhost", "127.0.0.1"))
        files = tmp_path / "service"
        files.mkdir()
        for name, data in (("tls.crt", tls.cert_pem), ("tls.key", tls.key_pem),
                           ("ca.crt", tls.ca_pem), ("token", TOKEN.encode()),
                           ("values.json", json.dumps({"ca_cert_hash": CA_HASH}).encode()),
                           ("kube-token", KUBE_TOKEN.encode()),
                           ("kube-ca.crt", kube.ca_pem or b"")):
            (files / name).write_bytes(data)
        conf: dict[str, Any] = {
            "environment": ENV, "listen": "127.0.0.1:0",
            "tls": {"cert": str(files / "tls.crt"), "key": str(files / "tls.key"),
                    "client_ca": str(files / "ca.crt")},
            "do_api_url": fake.origin, "do_token_file": str(files / "token"),
            "secret_values_file": str(files / "values.json"),
            "kube_api": {"server": kube.base_url, "token_file": str(files / "kube-token"),
                         "ca_file": str(files / "kube-ca.crt")},
            "pools": [pool("general", 1, 4, vpc),
                      pool("batch", 0, 12, vpc, size="s-4vcpu-8gb",
                           taints=[{"key": "dedicated", "value": "batch",
                                    "effect": "NoSchedule"}])],
        }
        path = files / "settings.json"
        path.write_text(json.dumps(conf))
        server, port = serve.build(settings.load(path))
        server.start()
        fake.faults.latency = latency
        try:
            yield World(fake, kube, tls, issue_client_cert(tls, "cluster-autoscaler", ()),
                        port, vpc, terraform_worker, path)
        finally:
            server.stop(grace=None)
        assert fake.violations == []


def node(provider_id: str, name: str = "") -> Any:
    return pb.ExternalGrpcNode(providerID=provider_id, name=name or provider_id)
