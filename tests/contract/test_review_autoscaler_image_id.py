"""Review finding: a snapshot (or any numeric image id) must reach POST /v2/droplets as an
integer, as Terraform's own droplets get it.

DigitalOcean's droplet create (tests/data/digitalocean-openapi/resources/droplets/models/
droplet_create.yml) types ``image`` as ``oneOf: [string, integer]``: "The image ID of a
public or private image or the slug identifier for a public image"; a string is a slug.
terraform-provider-digitalocean (digitalocean/droplet/resource_droplet.go, create) turns a
numeric ``image`` into ``godo.DropletCreateImage{ID: n}`` (``strconv.Atoi``), which godo
marshals as a JSON number; only a non-numeric one is sent as ``Slug``. The service's
settings carry the snapshot id Terraform resolved as a string (cluster/autoscaler.py
``str(image)``), and groups.py ``_spec`` passes it on unchanged, so the API would be asked
for an image whose *slug* is "170000010".
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from provisioner.autoscaler import serve, settings
from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
from tests.support.autoscaler import ENV, World, running

SNAPSHOT_ID = "170000010"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running(tmp_path) as started:
        yield started


def test_a_numeric_image_is_sent_as_an_id(world: World, tmp_path: Path) -> None:
    import grpc

    conf = json.loads(world.settings_path.read_text())
    for pool in conf["pools"]:
        pool["image"] = SNAPSHOT_ID  # as cluster/autoscaler.py writes Terraform's output
    path = tmp_path / "settings-snapshot.json"
    path.write_text(json.dumps(conf))
    server, port = serve.build(settings.load(path))
    server.start()
    try:
        cert, key = world.client_cert
        channel = grpc.secure_channel(f"localhost:{port}", grpc.ssl_channel_credentials(
            root_certificates=world.tls.ca_pem, private_key=key, certificate_chain=cert))
        make: Any = pb_grpc.CloudProviderStub  # generated, untyped
        stub = make(channel)
        stub.NodeGroupIncreaseSize(
            pb.NodeGroupIncreaseSizeRequest(id=f"{ENV}-batch", delta=1), timeout=30)
    finally:
        server.stop(grace=None)
    bodies = [r.body for r in world.fake.requests("POST", "/v2/droplets")]
    assert bodies, "the service created no droplet"
    assert bodies[-1]["image"] == int(SNAPSHOT_ID), (
        f"image sent as {bodies[-1]['image']!r}: a string is a slug to the API")
