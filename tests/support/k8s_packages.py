"""A stand-in for the Kubernetes project's apt repositories (pkgs.k8s.io), over real HTTP.

What it serves is shaped like the real thing, per minor, under the same paths:

* ``/core:/stable:/v<minor>/deb/Packages``: a Debian ``Packages`` index (the flat
  repository that ``deb [signed-by=...] https://pkgs.k8s.io/core:/stable:/v<minor>/deb/ /``
  names; templates/scripts/bootstrap.sh.j2), one stanza per build with ``Package``,
  ``Architecture``, ``Version`` (``<release>-1.1``, the revision pkgs.k8s.io builds carry:
  apt prints ``kubeadm 1.31.7-1.1`` fetched from .../core:/stable:/v1.31/deb, and
  installs ``kubeadm_1.32.2-1.1_arm64.deb``) and ``Filename`` (``<arch>/<name>_<version>_
  <arch>.deb``), for kubeadm, kubelet, kubectl and the cri-tools and kubernetes-cni
  they depend on;
* ``/core:/stable:/v<minor>/deb/Release.key``: an armoured key block (its content is not
  read by provision);
* 404 for a minor it does not hold, as the real host answers for an unknown path.

`RELEASES` is this stand-in's catalogue: patch releases per minor, chosen for the tests
(the examples' 1.36.2 among them), not a record of what upstream has published.
"""

from __future__ import annotations

import gzip
import http.server
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

RELEASES: dict[str, tuple[str, ...]] = {
    "1.35": tuple(f"1.35.{n}" for n in range(9)),
    "1.36": ("1.36.0", "1.36.1", "1.36.2", "1.36.3"),
    "1.37": ("1.37.0", "1.37.1"),
}
_DEPENDENCIES = {"1.35": ("1.35.0", "1.8.0"), "1.36": ("1.36.0", "1.9.1"),
                 "1.37": ("1.37.0", "1.9.1")}  # cri-tools, kubernetes-cni


def _stanza(name: str, version: str, arch: str, depends: str = "") -> str:
    lines = [f"Package: {name}", f"Architecture: {arch}", f"Version: {version}",
             "Priority: optional", "Section: admin",
             "Maintainer: Kubernetes Authors <dev@kubernetes.io>"]
    if depends:
        lines.append(f"Depends: {depends}")
    lines += [f"Filename: {arch}/{name}_{version}_{arch}.deb", "Size: 11534336",
              f"Description: {name} for Kubernetes", " A stand-in build description."]
    return "\n".join(lines) + "\n"


def packages_index(minor: str, releases: Sequence[str]) -> str:
    """A ``Packages`` file of one minor's repository holding `releases`."""
    cri_tools, cni = _DEPENDENCIES.get(minor, (f"{minor}.0", "1.9.1"))
    stanzas = []
    for arch in ("amd64", "arm64"):
        stanzas.append(_stanza("cri-tools", f"{cri_tools}-1.1", arch))
        stanzas.append(_stanza("kubernetes-cni", f"{cni}-1.1", arch))
        for release in releases:
            version = f"{release}-1.1"
            stanzas.append(_stanza("kubeadm", version, arch,
                                   f"cri-tools (>= {cri_tools}), kubernetes-cni (>= {cni})"))
            stanzas.append(_stanza("kubelet", version, arch, "iptables (>= 1.4.21)"))
            stanzas.append(_stanza("kubectl", version, arch))
    return "\n".join(stanzas)


@dataclass
class PackageRepositories:
    """A running stand-in; `url` replaces ``https://pkgs.k8s.io``."""

    url: str
    requested: list[str] = field(default_factory=list)


@contextmanager
def package_repositories(releases: Mapping[str, Sequence[str]] | None = None,
                         gzipped: bool = False, status: int | None = None,
                         truncated: bool = False) -> Iterator[PackageRepositories]:
    """Serve `releases` (default `RELEASES`) on loopback until the block ends; with
    `status`, answer every request with that status and no body (a failing server); with
    `truncated`, a gzipped index cut in half (a proxy or a disk that gave up midway)."""
    catalogue = RELEASES if releases is None else releases
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            body = None if status else self._body()
            self.send_response(status or (404 if body is None else 200))
            self.send_header("Content-Length", str(len(body or b"")))
            self.end_headers()
            self.wfile.write(body or b"")

        def _body(self) -> bytes | None:
            for minor, patches in catalogue.items():
                base = f"/core:/stable:/v{minor}/deb/"
                if self.path == base + "Packages":
                    text = packages_index(minor, patches).encode()
                    packed = gzip.compress(text)
                    if truncated:
                        return packed[: len(packed) // 2]
                    return packed if gzipped else text
                if self.path == base + "Release.key":
                    return (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nstand-in\n"
                            b"-----END PGP PUBLIC KEY BLOCK-----\n")
            return None

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield PackageRepositories(f"http://127.0.0.1:{server.server_address[1]}", requested)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=30)

