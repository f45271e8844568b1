"""Make the generated files beside the vendored .proto files (grpcio-tools, tests only).

* ``externalgrpc_pb2.py``, ``.pyi`` and ``externalgrpc_pb2_grpc.py``: the messages and the
  service of ``externalgrpc.proto``, compiled from the repository root so that their
  imports are the package's own (``provisioner.autoscaler.protos``).
* ``k8s_core_v1.binpb``: a FileDescriptorSet of ``k8s.io/api/core/v1/generated.proto`` and
  its imports. Python cannot import a package named ``k8s.io``, so the Node message is
  built from this set at run time (:mod:`provisioner.autoscaler.node_proto`) instead of
  from generated modules; the upstream files stay byte for byte as released.

``python -m provisioner.autoscaler.protos.generate`` rewrites them in place;
tests/contract/test_autoscaler_protos.py regenerates into a scratch folder and compares.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]  # the folder holding the provisioner package
PACKAGE_PATH = "provisioner/autoscaler/protos"
GENERATED = ("externalgrpc_pb2.py", "externalgrpc_pb2.pyi", "externalgrpc_pb2_grpc.py",
             "k8s_core_v1.binpb")


def generate(out: Path) -> dict[str, Path]:
    """Compile into ``out``; the generated files by name."""
    import grpc_tools  # the test extra's grpcio-tools
    from grpc_tools import protoc

    includes = str(Path(grpc_tools.__file__).parent / "_proto")
    out.mkdir(parents=True, exist_ok=True)
    service = ["protoc", f"-I{ROOT}", f"-I{includes}", f"--python_out={out}",
               f"--pyi_out={out}", f"--grpc_python_out={out}",
               f"{PACKAGE_PATH}/externalgrpc.proto"]
    node = ["protoc", f"-I{HERE}", f"-I{includes}", "--include_imports",
            f"--descriptor_set_out={out / 'k8s_core_v1.binpb'}",
            "k8s.io/api/core/v1/generated.proto"]
    for args in (service, node):
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args[1:])}")
    made = out / PACKAGE_PATH
    files = {name: made / name for name in GENERATED[:3]}
    files["k8s_core_v1.binpb"] = out / "k8s_core_v1.binpb"
    return files


def main() -> int:
    import tempfile

    with tempfile.TemporaryDirectory() as scratch:
        for name, path in generate(Path(scratch)).items():
            (HERE / name).write_bytes(path.read_bytes())
    return 0


if __name__ == "__main__":
    sys.exit(main())
