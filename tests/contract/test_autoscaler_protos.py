"""The autoscaler's generated protocol code is what grpcio-tools makes from the vendored
.proto files today, byte for byte (provisioner/autoscaler/protos/README.md: the
cluster-autoscaler 1.36.1 externalgrpc.proto and k8s.io/api v0.36.2's core/v1 protos)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from provisioner.autoscaler.protos import generate

# sha256 of the vendored files as released upstream (the externalgrpc.proto below its
# provenance header): a change to any is a change of protocol, made on purpose.
# Computed from the tags' blobs (git show TAG:PATH | sha256sum).
UPSTREAM = {
    "externalgrpc.proto":
        "0897df2cde8058f9412bb3484105fa9dadcdb8874afde6c6a7116e598c2f5fc2",
    "k8s.io/api/core/v1/generated.proto":
        "b1879943525fb1b0d7055570ad1a9ff6ef7502b95ee7962e0fa99d2546c52760",
    "k8s.io/apimachinery/pkg/api/resource/generated.proto":
        "78274163443c9942fd5cfd41d2c0cb6d5bb06ff109f37c33be23147dcf63771a",
    "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto":
        "055dd5d588bbe7cff216d570ad0968833eddaea755701e47d01e59ad61625eba",
    "k8s.io/apimachinery/pkg/runtime/generated.proto":
        "19a098984ebde051f717387ef35ae0069104eab9c0534a4bb37470ea1d47fcc9",
    "k8s.io/apimachinery/pkg/runtime/schema/generated.proto":
        "f6c8cc582d36e639e022c9edc2faf213ab16fe07045fabf54f5edc2241eda3e5",
    "k8s.io/apimachinery/pkg/util/intstr/generated.proto":
        "3595eaaeb57a233568c50c9e16d81efa50238f63e9f7d8d00f18b188fa8fdcb2",
}
HEADER_LINES = 5  # the provenance header above externalgrpc.proto's upstream text


def test_the_generated_files_match_a_fresh_generation(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools")
    made = generate.generate(tmp_path)
    assert sorted(made) == sorted(generate.GENERATED)
    for name, path in made.items():
        committed = (generate.HERE / name).read_bytes()
        assert committed == path.read_bytes(), (
            f"{name} differs from a fresh generation: run "
            "python -m provisioner.autoscaler.protos.generate")


@pytest.mark.parametrize("name", sorted(UPSTREAM))
def test_the_vendored_protos_are_upstream_byte_for_byte(name: str) -> None:
    data = (generate.HERE / name).read_bytes()
    if name == "externalgrpc.proto":
        lines = data.split(b"\n")
        header = lines[:HEADER_LINES]
        assert all(line.startswith(b"// ") for line in header)
        assert b"cluster-autoscaler-1.36.1" in header[1] and b"Apache-2.0" in header[3]
        data = b"\n".join(lines[HEADER_LINES:])
    assert hashlib.sha256(data).hexdigest() == UPSTREAM[name]


def test_the_node_class_is_kubernetes_node() -> None:
    from provisioner.autoscaler import node_proto

    fields = {f.name: f.number for f in node_proto.node_class().DESCRIPTOR.fields}
    assert fields == {"metadata": 1, "spec": 2, "status": 3}
