"""What the autoscaler service runs in the cluster: provision's own modules and pinned wheels.

No image of provision is published, so the service runs in the stock Python image: an
init container installs its third-party packages from the package index with
``pip install --require-hashes`` (the wheels below, digests computed from the files
themselves, so a changed file on the index stops the pod instead of running), and a
second one unpacks provision's modules from a ConfigMap. The modules are exactly those the
service imports (``provisioner.autoscaler`` and, transitively, every ``provisioner``
module it names), packed as a deterministic tar.gz: the code that runs in the cluster is
the code of the provision that rendered it, and a new provision rolls the pod (the
Deployment carries the archive's digest).
"""

from __future__ import annotations

import ast
import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

# The stock image the service runs in; python 3.13 matches the cp313 wheels below.
PYTHON_IMAGE = "docker.io/library/python:3.13-slim"


@dataclass(frozen=True)
class Wheel:
    """One pinned distribution: the version constraints.txt tests, the file's SHA-256."""

    name: str
    version: str
    sha256: str


# The manylinux x86_64 wheels for CPython 3.13 (droplets are x86_64), versions as in
# constraints.txt. grpcio 1.85.4 requires typing-extensions~=4.12 (its METADATA).
WHEELS: tuple[Wheel, ...] = (
    Wheel("grpcio", "1.85.4", "0988d60f32439566cb4e66be42e2c6bf6e1403177d41256dd87b4a34ab8c95f7"),
    Wheel("protobuf", "5.29.6",
          "e3387f44798ac1106af0233c04fb8abf543772ff241169946f698b3a9a3d3ab9"),
    Wheel("typing-extensions", "4.16.0",
          "481caa481374e813c1b176ada14e97f1f67a4539ce9cfeb3f350d78d6370c2e8"),
)
# Import names the wheels provide (what the service's modules may import besides the
# standard library and provisioner).
PROVIDED = frozenset({"grpc", "google", "typing_extensions"})

_PACKAGE = Path(__file__).resolve().parent.parent  # .../provisioner
ENTRY = "provisioner.autoscaler"


def requirements() -> str:
    """requirements.txt for ``pip install --require-hashes``."""
    return "".join(f"{w.name}=={w.version} --hash=sha256:{w.sha256}\n" for w in WHEELS)


def _module_file(module: str) -> Path | None:
    parts = module.split(".")[1:]
    base = _PACKAGE.joinpath(*parts)
    for candidate in (base / "__init__.py", base.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path, module: str) -> set[str]:
    """The provisioner modules one file imports (absolute and relative)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("provisioner"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            if base.startswith("provisioner"):
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
    return found


def modules() -> dict[str, Path]:
    """The service's modules and every provisioner module they import: name -> file."""
    start = [ENTRY, *sorted(f"{ENTRY}.{p.stem}" for p in (_PACKAGE / "autoscaler").glob("*.py")
                            if p.name != "__init__.py")]
    seen: dict[str, Path] = {}
    queue = ["provisioner", *start]
    while queue:
        module = queue.pop()
        if module in seen:
            continue
        path = _module_file(module)
        if path is None:  # an attribute imported from a module, not a module
            continue
        seen[module] = path
        parent = module.rpartition(".")[0]
        if parent:
            queue.append(parent)  # a package's __init__ runs before its modules
        queue.extend(_imports(path, module))
    return seen


def archive() -> bytes:
    """The modules as a gzip-compressed tar: sorted, mtime 0, owner 0, the same bytes for
    the same code (so the Deployment's digest changes only with the code)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        files = {p.relative_to(_PACKAGE.parent).as_posix(): p for p in modules().values()}
        # The service's data (a compiled descriptor set beside its protos), never caches.
        files.update({p.relative_to(_PACKAGE.parent).as_posix(): p
                      for p in (_PACKAGE / "autoscaler").rglob("*")
                      if p.is_file() and p.suffix not in (".py", ".pyc", ".pyi")
                      and "__pycache__" not in p.parts})
        for path in sorted(files.items()):
            data = path[1].read_bytes()
            info = tarfile.TarInfo(path[0])
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)


def digest(data: bytes) -> str:
    """SHA-256 hex of ``data`` (the pod template's annotation)."""
    return hashlib.sha256(data).hexdigest()
