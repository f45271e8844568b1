"""The autoscaler service driven through the cluster-autoscaler's own protocol.

The client is generated from the vendored proto of cluster-autoscaler 1.36.1
(kubernetes/autoscaler tag cluster-autoscaler-1.36.1, commit 35e8a280425c,
cluster-autoscaler/cloudprovider/externalgrpc/protos/externalgrpc.proto); what the
autoscaler does with each answer is read from that tag's externalgrpc_cloud_provider.go,
externalgrpc_node_group.go, clusterstate/clusterstate.go and core/static_autoscaler.go.
The service runs for real (mutual TLS on a localhost port) against the fake DigitalOcean
API (real HTTP, its traffic held to DigitalOcean's OpenAPI description) and the fake
Kubernetes API server.
"""

from __future__ import annotations

import base64
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import yaml

from provisioner.autoscaler.protos import externalgrpc_pb2 as pb
from tests.fakes.kubeapi import make_tls
from tests.support.autoscaler import CA_HASH, ENV, KUBE_USER, TOKEN, World, node, running

GENERAL, BATCH = f"{ENV}-general", f"{ENV}-batch"
PROTOS = Path(__file__).resolve().parents[2] / "provisioner" / "autoscaler" / "protos"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    with running(tmp_path) as started:
        yield started


def code_of(call: Any, *args: Any, **kwargs: Any) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call(*args, **kwargs)
    code: grpc.StatusCode = caught.value.code()
    return code


def posts(world: World) -> list[Any]:
    return world.fake.requests("POST", "/v2/droplets")


def test_each_autoscaled_pool_is_a_group_above_the_terraform_floor(world: World) -> None:
    """NodeGroups: min 0, max = autoscale max - min (Terraform keeps min)."""
    groups = world.stub().NodeGroups(pb.NodeGroupsRequest(), timeout=30).nodeGroups
    assert [(g.id, g.minSize, g.maxSize) for g in groups] == [(GENERAL, 0, 3), (BATCH, 0, 12)]


def decode_node(data: bytes) -> str:
    """protoc's own decoding of the bytes against k8s.io/api v0.36.2's generated.proto,
    independent of the service's descriptor set (the autoscaler runs apiv1.Node.Unmarshal)."""
    result = subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{PROTOS}",
         "--decode=k8s.io.api.core.v1.Node", "k8s.io/api/core/v1/generated.proto"],
        input=data, capture_output=True, check=True, timeout=120)
    return result.stdout.decode()


def test_scale_up_from_zero_from_the_template(world: World) -> None:
    """The template of an empty group carries the size's capacity, the pool's labels and
    taints; IncreaseSize then creates droplets as Terraform creates the pool's workers,
    each joining with a bootstrap token minted for this scale-up."""
    stub = world.stub()
    data = stub.NodeGroupTemplateNodeInfo(
        pb.NodeGroupTemplateNodeInfoRequest(id=BATCH), timeout=30).nodeBytes
    text = " ".join(decode_node(data).split())
    for fragment in ('capacity { key: "cpu" value { string: "4" } }',
                     # 8192 MiB less the kernel's 235 (template.py; by hand: 8192/64
                     # + 16 + 64 + 8 + 0.175 % of 8192 (14.3) + 4 = 234.3, rounded up).
                     'capacity { key: "memory" value { string: "7957Mi" } }',
                     'capacity { key: "pods" value { string: "110" } }',
                     'allocatable { key: "memory" value { string: "7857Mi" } }',
                     'labels { key: "tier" value: "batch" }',
                     'labels { key: "node.kubernetes.io/instance-type" value: "s-4vcpu-8gb" }',
                     'labels { key: "topology.kubernetes.io/region" value: "fra1" }',
                     'taints { key: "dedicated" value: "batch" effect: "NoSchedule" }'):
        assert fragment in text, (fragment, text)

    assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=BATCH),
                                    timeout=30).targetSize == 0
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=BATCH, delta=2), timeout=30)

    made = world.autoscaled()
    assert len(made) == 2 and len(posts(world)) == 1
    assert posts(world)[0].body["names"] == [d["name"] for d in made]
    for droplet in made:
        assert droplet["name"].startswith(f"{BATCH}-as-") and len(droplet["name"]) == len(
            f"{BATCH}-as-") + 8
        assert sorted(droplet["tags"]) == sorted([
            f"provision:{ENV}", f"provision:{ENV}:worker", f"provision:{ENV}:pool:batch",
            f"provision:{ENV}:autoscaled"])
        assert (droplet["region"], droplet["size"], droplet["vpc_uuid"]) == (
            "fra1", "s-4vcpu-8gb", world.vpc)
    joined = world.user_data(int(made[0]["id"]))
    token = joined.split("--token ")[1].split()[0]
    assert joined.startswith("#!/bin/sh\nkubeadm join 10.10.0.5:6443 --token ")
    assert joined.rstrip().endswith(f"--discovery-token-ca-cert-hash {CA_HASH}")
    assert world.user_data(int(made[1]["id"])) == joined  # one token per call
    secret = world.kube.get("v1", "Secret", f"bootstrap-token-{token.split('.')[0]}",
                            "kube-system")
    assert secret is not None
    fields = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    assert fields["token-secret"] == token.split(".")[1]
    assert fields["usage-bootstrap-authentication"] == "true"
    assert fields["auth-extra-groups"] == "system:bootstrappers:kubeadm:default-node-token"
    # Made over TLS with the service account's bearer token (kubeclient.py), as that user.
    creates = world.kube.requests("POST", "/api/v1/namespaces/kube-system/secrets")
    assert creates and {r.user for r in creates} == {KUBE_USER}

    assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=BATCH),
                                    timeout=30).targetSize == 2
    instances = stub.NodeGroupNodes(pb.NodeGroupNodesRequest(id=BATCH), timeout=30).instances
    assert sorted(i.id for i in instances) == sorted(f"digitalocean://{d['id']}" for d in made)
    assert {i.status.errorInfo.errorCode for i in instances} == {""}
    mine = stub.NodeGroupForNode(pb.NodeGroupForNodeRequest(
        node=node(f"digitalocean://{made[0]['id']}")), timeout=30).nodeGroup
    assert (mine.id, mine.maxSize) == (BATCH, 12)


def test_terraform_droplets_and_strangers_are_in_no_group(world: World) -> None:
    """NodeGroupForNode answers id "" (not autoscaled) for a Terraform worker of the same
    pool, an unknown droplet and a node without a DigitalOcean providerID."""
    stub = world.stub()
    stub.Refresh(pb.RefreshRequest(), timeout=30)
    for provider_id in (f"digitalocean://{world.terraform_worker}", "digitalocean://999",
                        "", "aws:///eu-west-1a/i-1"):
        answer = stub.NodeGroupForNode(pb.NodeGroupForNodeRequest(node=node(provider_id)),
                                       timeout=30)
        assert answer.nodeGroup.id == ""


def test_more_than_ten_droplets_go_in_requests_of_ten(world: World) -> None:
    """droplets_create.yml: "Up to ten Droplets may be created this way at a time"."""
    world.stub().NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=BATCH, delta=12),
                                       timeout=60)
    assert [len(p.body["names"]) for p in posts(world)] == [10, 2]
    assert len(world.autoscaled()) == 12


def test_scale_down_deletes_exactly_the_node_given(world: World) -> None:
    stub = world.stub()
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=3), timeout=30)
    ids = sorted(int(d["id"]) for d in world.autoscaled())
    victim = ids[1]
    stub.NodeGroupDeleteNodes(pb.NodeGroupDeleteNodesRequest(
        id=GENERAL, nodes=[node(f"digitalocean://{victim}", "some-node")]), timeout=30)
    assert [r.path for r in world.fake.requests("DELETE")] == [f"/v2/droplets/{victim}"]
    assert sorted(int(d["id"]) for d in world.autoscaled()) == [ids[0], ids[2]]
    assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=GENERAL),
                                    timeout=30).targetSize == 2

    # A repeated delete (the answer was lost) deletes nothing more and succeeds.
    stub.NodeGroupDeleteNodes(pb.NodeGroupDeleteNodesRequest(
        id=GENERAL, nodes=[node(f"digitalocean://{victim}")]), timeout=30)
    assert len(world.fake.requests("DELETE")) == 1


def test_nodes_outside_the_group_are_refused_and_nothing_is_deleted(world: World) -> None:
    """DeleteNodes: "Error is returned ... if the given node doesn't belong to this node
    group" (externalgrpc.proto); all or nothing, so a Terraform droplet is never lost."""
    stub = world.stub()
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=1), timeout=30)
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=BATCH, delta=1), timeout=30)
    general, batch = (next(int(d["id"]) for d in world.autoscaled()
                           if f"provision:{ENV}:pool:{p}" in d["tags"])
                      for p in ("general", "batch"))
    for stranger in (f"digitalocean://{world.terraform_worker}", f"digitalocean://{batch}", ""):
        request = pb.NodeGroupDeleteNodesRequest(
            id=GENERAL, nodes=[node(f"digitalocean://{general}"), node(stranger, "n")])
        assert code_of(stub.NodeGroupDeleteNodes, request,
                       timeout=30) == grpc.StatusCode.INVALID_ARGUMENT
    assert world.fake.requests("DELETE") == []
    assert code_of(stub.NodeGroupDeleteNodes, pb.NodeGroupDeleteNodesRequest(
        id="prod-nope", nodes=[node(f"digitalocean://{general}")]),
        timeout=30) == grpc.StatusCode.NOT_FOUND


def test_max_is_enforced_and_min_never_crossed(world: World) -> None:
    stub = world.stub()

    def increase(delta: int) -> None:
        stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=delta),
                                   timeout=30)

    assert code_of(increase, 4) == grpc.StatusCode.OUT_OF_RANGE
    assert code_of(increase, 0) == grpc.StatusCode.INVALID_ARGUMENT
    assert posts(world) == []
    increase(3)
    assert code_of(increase, 1) == grpc.StatusCode.OUT_OF_RANGE
    assert len(world.autoscaled()) == 3 and len(posts(world)) == 1
    # DecreaseTargetSize may not delete existing droplets (externalgrpc.proto).
    assert code_of(stub.NodeGroupDecreaseTargetSize, pb.NodeGroupDecreaseTargetSizeRequest(
        id=GENERAL, delta=-1), timeout=30) == grpc.StatusCode.FAILED_PRECONDITION
    assert world.fake.requests("DELETE") == [] and len(world.autoscaled()) == 3


@pytest.mark.parametrize(("inject", "error_code", "error_class"), [
    ("limit", "unprocessable_entity", 1),  # OutOfResourcesErrorClass
    ("server", "server_error", 99),  # OtherErrorClass
])
def test_a_refused_creation_is_reported_as_instances_in_error(
        world: World, inject: str, error_code: str, error_class: int) -> None:
    """The autoscaler learns of failed creates from NodeGroupNodes: instances Creating with
    an ErrorInfo (clusterstate.go buildInstanceToErrorCodeMappings); it backs the group off
    and deletes them by fake nodes whose providerID is the instance id
    (static_autoscaler.go deleteCreatedNodesWithErrors, clusterstate.go FakeNode)."""
    stub = world.stub()
    if inject == "limit":
        with world.fake.cloud.transaction() as account:
            world.fake.faults.droplet_limit = len(account.table("digitalocean_droplet"))
    else:
        world.fake.faults.latency = 0
    stub.Refresh(pb.RefreshRequest(), timeout=30)
    if inject == "server":
        world.fake.faults.fail(1, 500, method="POST")
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=2), timeout=30)
    assert world.autoscaled() == []
    instances = stub.NodeGroupNodes(pb.NodeGroupNodesRequest(id=GENERAL), timeout=30).instances
    assert len(instances) == 2
    for instance in instances:
        assert instance.status.instanceState == pb.InstanceStatus.instanceCreating
        assert instance.status.errorInfo.errorCode == error_code
        assert instance.status.errorInfo.instanceErrorClass == error_class
    assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=GENERAL),
                                    timeout=30).targetSize == 2
    found = stub.NodeGroupForNode(pb.NodeGroupForNodeRequest(node=node(instances[0].id)),
                                  timeout=30)
    assert found.nodeGroup.id == GENERAL

    stub.NodeGroupDeleteNodes(pb.NodeGroupDeleteNodesRequest(
        id=GENERAL, nodes=[node(i.id) for i in instances]), timeout=30)
    assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=GENERAL),
                                    timeout=30).targetSize == 0
    assert world.fake.requests("DELETE") == []
    if inject == "limit":
        assert "droplet limit" in instances[0].status.errorInfo.errorMessage


def test_a_scale_up_whose_answer_came_too_late_is_not_repeated(tmp_path: Path) -> None:
    """The autoscaler's deadline passes while the API is still creating (2 s latency, a 3 s
    deadline: the listing takes 2 s, the create's answer would come at 4 s). The service
    does not re-send the create; the droplets made are counted at the next Refresh, so the
    autoscaler's next decision sees them, and a repeat of the call cannot pass max."""
    with running(tmp_path, latency=2.0) as world:
        stub = world.stub()
        request = pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=2)
        assert code_of(stub.NodeGroupIncreaseSize, request,
                       timeout=3.0) == grpc.StatusCode.DEADLINE_EXCEEDED
        give_up = time.monotonic() + 60
        while len(world.autoscaled()) < 2 and time.monotonic() < give_up:
            time.sleep(0.1)
        time.sleep(1.0)  # the service's handler finishes with the lost answer
        world.fake.faults.latency = 0
        stub.Refresh(pb.RefreshRequest(), timeout=30)
        assert stub.NodeGroupTargetSize(pb.NodeGroupTargetSizeRequest(id=GENERAL),
                                        timeout=30).targetSize == 2
        assert code_of(stub.NodeGroupIncreaseSize, request,
                       timeout=30) == grpc.StatusCode.OUT_OF_RANGE
        assert len(world.autoscaled()) == 2 and len(posts(world)) == 1


def test_a_rate_limited_api_is_waited_out(world: World) -> None:
    """429 with Retry-After: waited, then the scale-up goes on (cloud/throttle.py)."""
    world.fake.faults.throttle(2, retry_after=1)
    world.stub().NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=1),
                                       timeout=30)
    assert [r.status for r in world.fake.request_log][:2] == [429, 429]
    assert len(world.autoscaled()) == 1 and len(posts(world)) == 1


def test_a_429_longer_than_the_default_deadline_is_waited_out_within_the_rendered_one(
        world: World) -> None:
    """Two 429s of Retry-After 3 s: within the rendered cloud-config's ``grpc_timeout``
    (30 s) the scale-up goes on; within the 5 s externalgrpc uses when it is unset
    (externalgrpc README at cluster-autoscaler-1.36.1) the service gives up before the
    deadline, RESOURCE_EXHAUSTED, having created nothing."""
    from provisioner.render.autoscaler_objects import cloud_config
    from tests.unit.test_autoscaler_render import go_duration

    rendered = go_duration(yaml.safe_load(cloud_config())["grpc_timeout"])
    world.fake.faults.throttle(2, retry_after=3)
    assert code_of(world.stub().NodeGroupIncreaseSize, pb.NodeGroupIncreaseSizeRequest(
        id=GENERAL, delta=1), timeout=5) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert world.autoscaled() == [] and posts(world) == []
    world.fake.faults.throttle(2, retry_after=3)
    world.stub().NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=1),
                                       timeout=rendered)
    assert len(world.autoscaled()) == 1 and len(posts(world)) == 1


def test_only_a_client_with_a_certificate_from_the_ca_is_served(world: World,
                                                                tmp_path: Path) -> None:
    """The autoscaler's cloud-config gives cert, key and cacert (externalgrpc_cloud_provider
    .go, newExternalGrpcCloudProviderClient); the service requires the client certificate."""
    request = pb.NodeGroupsRequest()
    assert world.stub().NodeGroups(request, timeout=30).nodeGroups
    assert code_of(world.stub(with_client_cert=False).NodeGroups, request,
                   timeout=30) == grpc.StatusCode.UNAVAILABLE
    other = make_tls(("localhost",))
    assert code_of(world.stub(ca=other.ca_pem).NodeGroups, request,
                   timeout=30) == grpc.StatusCode.UNAVAILABLE
    insecure = grpc.insecure_channel(f"localhost:{world.port}")
    from provisioner.autoscaler.protos import externalgrpc_pb2_grpc as pb_grpc
    stub: Any = pb_grpc.CloudProviderStub  # generated, untyped
    assert code_of(stub(insecure).NodeGroups, request,
                   timeout=30) == grpc.StatusCode.UNAVAILABLE


def test_the_api_token_is_in_no_log_or_answer(world: World,
                                              caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stub = world.stub()
    stub.NodeGroupIncreaseSize(pb.NodeGroupIncreaseSizeRequest(id=GENERAL, delta=1), timeout=30)
    world.fake.faults.fail(3, 503)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Refresh(pb.RefreshRequest(), timeout=30)
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert TOKEN not in caplog.text and TOKEN not in str(caught.value.details())
    assert "503" in str(caught.value.details())


def test_the_entry_point_serves_until_terminated(world: World) -> None:
    """`python -m provisioner.autoscaler.serve --settings PATH`, as the Deployment runs it:
    serves over mutual TLS, stops cleanly on SIGTERM (exit 0)."""
    import os
    import re
    import signal

    root = str(PROTOS.parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, [root, os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-m", "provisioner.autoscaler.serve", "--settings",
         str(world.settings_path)], env=env, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        port = re.search(r"on port (\d+) \(mutual TLS\)", line)
        assert port, line
        world.port = int(port.group(1))
        groups = world.stub().NodeGroups(pb.NodeGroupsRequest(), timeout=30).nodeGroups
        assert [g.id for g in groups] == [GENERAL, BATCH]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0
        assert TOKEN not in line + process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
