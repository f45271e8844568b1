"""The first control-plane node's side of `provision restore`, run for real.

The bootstrap script is taken from the production example's RENDERED controller-init
user-data (as the droplet gets it: tests/support/rendering.py) and sourced by bash without
its final ``main "$@"`` call; its own ``restore_etcd`` and ``init_control_plane`` run with
``PROVISION_ROOT`` pointing /etc/provision and /var/lib/etcd at a folder of the test.
/etc/provision/restore.env and kubeadm.yaml are the files that user-data writes, with the
restore values spliced in as Terraform would and the node's address filled in as
``fill_node_values`` does.

Real: a REAL etcd (Debian's etcd 3.4.23, tests/support/real_etcd.py) holding the keys, its
``etcdctl snapshot save``, the copy sealed by provisioner/backup/restore_copy.seal served by
an HTTP server on the loopback interface at a presigned-looking URL (``&`` and ``%`` in
it), curl, openssl, sha256sum, and etcd started again from the restored data folder.

Replaced at the subprocess boundary only, by small programs first on PATH:
* ``kubeadm``: ``config images list`` prints one image per line, as kubeadm's text
  printer does (cmd/kubeadm/app/cmd/config.go, ``ImagesList.Run`` / ``imageTextPrinter``;
  the bootstrap script's pause-image lookup reads the same output), the control-plane
  images of 1.36 with the etcd image kubeadm 1.36 runs, ``registry.k8s.io/etcd:3.6.9-0``
  (constants.go SupportedEtcdVersion, see tests/contract/test_restore_bootstrap.py; only
  the etcd line is used); ``config images pull`` records the pulls; ``init`` records its
  arguments.
* ``ctr``: checks the image was pulled and every path it is given lies inside the one bind
  mount, then runs the command locally, ``/usr/local/bin/etcdutl`` (where etcd's image has
  it: etcd v3.6.9 Dockerfile) as etcd 3.4's ``etcdctl``, whose ``snapshot restore`` takes
  the same flags (etcd v3.4.23 etcdctl/ctlv3/command/snapshot_command.go, v3.6.9
  etcdutl/etcdutl/snapshot_command.go) but two: ``--bump-revision N`` and
  ``--mark-compacted`` came to etcdctl 3.4 only in v3.4.27 (etcd PR #16193,
  CHANGELOG-3.4.md) and 3.4.23 refuses them ("unknown flag: --bump-revision", tried). The
  stub records them (the call line) and REQUIRES both, N a positive number, failing the
  restore without them (a restore whose revisions go back: etcd-io/etcd#16028, the flags
  came with PR #16029; tests/contract/test_restore_bootstrap.py pins the value), then strips
  them for 3.4.23, so the data the drill starts etcd on carries no revision bump.
  ``init`` (the whole of it) also does what its kubelet-start and mark-control-plane phases
  do to the Node objects: the kubelet registers (below), the Node gets kubeadm's label and
  taint; ``init phase mark-control-plane`` fails while the Node does not exist (kubeadm waits
  for it), ``init phase upload-certs`` records its arguments.
* ``hostname``: the droplet's name, in capitals to show kubeadm's lowercasing is followed.
* ``kubectl``: plays the API's Node objects, one JSON file each in a folder of the test, as far
  as the script uses it (``get nodes -l KEY -o custom-columns=...``, which prints ``<none>``
  for an unset field; ``get node NAME``, NotFound and status 1 when there is none; ``delete
  node NAME --ignore-not-found``), and records its arguments.
* ``systemctl``: records its arguments; ``restart kubelet`` starts a kubelet that registers
  as the kubelet does (kubernetes pkg/kubelet/kubelet_node_status.go, see
  tests/contract/test_restore_bootstrap.py): a Node of its name that exists is adopted as it
  is, its providerID untouched; otherwise one is created with the kubelet's --provider-id
  and the uninitialized taint of an external cloud provider.
* ``openssl`` and ``curl`` are the real ones behind a wrapper that records their arguments,
  so the test can show the key and the URL are never on a command line.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.backup.restore_copy import Sealed, seal
from provisioner.render.markers import join, segments
from tests.support import real_etcd
from tests.support.rendering import NODE_VALUES, late_values, rendered, written

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not real_etcd.available() or not shutil.which("openssl"),
                       reason="etcd/etcdctl or openssl not installed (Debian: apt-get install "
                              "etcd-server etcd-client openssl)"),
]

BOOTSTRAP = "/usr/local/sbin/provision-bootstrap"
ETCD_IMAGE = "registry.k8s.io/etcd:3.6.9-0"
IMAGES = ["registry.k8s.io/kube-apiserver:v1.36.2",
          "registry.k8s.io/kube-controller-manager:v1.36.2",
          "registry.k8s.io/kube-scheduler:v1.36.2", "registry.k8s.io/kube-proxy:v1.36.2",
          "registry.k8s.io/coredns/coredns:v1.12.1", "registry.k8s.io/pause:3.10.1", ETCD_IMAGE]
HOSTNAME = "Production-CP-1"
MEMBER = "production-cp-1"  # kubeadm: GetHostname lowercases
# The kubelet's --provider-id on this droplet (kubeadm.yaml, filled in by fill_node_values).
PROVIDER_ID = f"digitalocean://{NODE_VALUES['__DROPLET_ID__']}"
PEER = f"https://{NODE_VALUES['__PRIVATE_IPV4__']}:2380"
KEYS = 2000
# The object path and query a Spaces presigned GET has (SigV4 query parameters).
OBJECT = "/production/restore/20261207T210000Z.db.enc"
QUERY = ("?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=DO00EXAMPLE%2F20261207%2Ffra1"
         "%2Fs3%2Faws4_request&X-Amz-Date=20261207T210000Z&X-Amz-Expires=3600"
         "&X-Amz-SignedHeaders=host&X-Amz-Signature=" + "5e" * 32)

KUBEADM = """#!/bin/bash
set -euo pipefail
echo "kubeadm $*" >>"$CALLS"
case "$1 ${2:-} ${3:-}" in
  "config images list") printf '%s\\n' {images} ;;
  "config images pull") printf '%s\\n' {images} >>"$PULLED" ;;
  "init phase mark-control-plane") node-api mark ;;
  "init phase upload-certs") ;;
  "init --config "*) node-api register; node-api mark ;;
  *) echo "kubeadm stub: unexpected $*" >&2; exit 2 ;;
esac
"""
CTR = """#!/bin/bash
set -euo pipefail
echo "ctr $*" >>"$CALLS"
if [[ "$1 $2 $3 $4 $5" != "-n k8s.io run --rm --mount" ]]; then
  echo "ctr stub: unexpected $*" >&2; exit 2
fi
mount=$6 image=$7
shift 8
grep -qxF "$image" "$PULLED" || { echo "ctr: image $image not pulled" >&2; exit 1; }
[[ "$mount" =~ ^type=bind,src=([^,]+),dst=([^,]+),options=rbind:rw$ ]] || exit 2
src=${BASH_REMATCH[1]} dst=${BASH_REMATCH[2]}
[[ "$src" == "$dst" ]] || { echo "ctr stub: maps $src to $dst" >&2; exit 2; }
[[ "$1" == /usr/local/bin/etcdutl ]] || { echo "ctr stub: not etcdutl: $1" >&2; exit 2; }
shift
args=() bump="" compacted=no
while (($#)); do
  case "$1" in
    --bump-revision) bump=${2:-}; shift 2 ;;
    --mark-compacted) compacted=yes; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
if [[ ! "$bump" =~ ^[1-9][0-9]*$ || "$compacted" != yes ]]; then
  echo "ctr stub: snapshot restore without --bump-revision N --mark-compacted" >&2; exit 2
fi
for arg in "${args[@]}"; do
  if [[ "$arg" == /* && "$arg" != "$dst"/* ]]; then
    echo "ctr: $arg is not inside the container's mount $dst" >&2; exit 1
  fi
done
# etcdctl 3.4.23 has neither flag (see the module docstring).
exec {etcdctl} "${args[@]}"
"""
NODES_API = """#!{python}
# kubectl (as `kubectl ...`) or a kubelet/kubeadm acting on the Nodes (as `node-api ...`).
import json, os, sys
from pathlib import Path

nodes = Path(os.environ["NODES"])
name, args = Path(sys.argv[0]).name, sys.argv[1:]
if name == "kubectl":
    with open(os.environ["CALLS"], "a") as calls:
        calls.write("kubectl " + " ".join(args) + "\\n")
    if args[:2] != ["--kubeconfig", "/etc/kubernetes/admin.conf"]:
        sys.exit("kubectl stub: not the admin kubeconfig: " + " ".join(args))
    args = args[2:]


def path(node):
    return nodes / (node + ".json")


def value(obj, dotted):
    for part in dotted.strip(".").split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return "<none>" if obj in (None, "") else str(obj)


me, provider = os.environ["NODE_NAME"], os.environ["PROVIDER_ID"]
if args[:3] == ["get", "nodes", "-l"] and args[4:6] == ["--no-headers", "-o"]:
    key, _, wanted = args[3].partition("=")
    columns = [c.split(":", 1)[1] for c in args[6].removeprefix("custom-columns=").split(",")]
    for file in sorted(nodes.glob("*.json")):
        node = json.loads(file.read_text())
        labels = node["metadata"].get("labels", {})
        if key in labels and (not wanted or labels[key] == wanted):
            print("   ".join(value(node, c) for c in columns))
elif args[:2] == ["get", "node"] and len(args) == 3:
    if not path(args[2]).exists():
        sys.exit('Error from server (NotFound): nodes "%s" not found' % args[2])
    print(args[2] + "   Ready   control-plane")
elif args[:2] == ["delete", "node"] and args[3:] == ["--ignore-not-found"]:
    if path(args[2]).exists():
        path(args[2]).unlink()
        print('node "%s" deleted' % args[2])
elif args == ["register"]:
    # kubelet tryRegisterWithAPIServer: an existing Node is adopted, providerID untouched.
    if not path(me).exists():
        taint = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true",
                 "effect": "NoSchedule"}
        path(me).write_text(json.dumps({
            "metadata": {"name": me, "labels": {"kubernetes.io/hostname": me}},
            "spec": {"providerID": provider, "taints": [taint]}}))
elif args == ["mark"]:
    # kubeadm's markcontrolplane: waits for the Node, then its label and taint.
    if not path(me).exists():
        sys.exit('error: nodes "%s" not found' % me)
    node = json.loads(path(me).read_text())
    node["metadata"].setdefault("labels", {})["node-role.kubernetes.io/control-plane"] = ""
    taint = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    taints = node["spec"].setdefault("taints", [])
    if taint not in taints:
        taints.append(taint)
    path(me).write_text(json.dumps(node))
else:
    sys.exit(name + " stub: unexpected " + " ".join(sys.argv[1:]))
"""
SYSTEMCTL = """#!/bin/bash
set -euo pipefail
echo "systemctl $*" >>"$CALLS"
[[ "$*" == "restart kubelet" ]] || { echo "systemctl stub: unexpected $*" >&2; exit 2; }
node-api register
"""
RECORDING = """#!/bin/bash
printf '%s\\n' "{name} $*" >>"$CALLS"
exec {real} "$@"
"""


@dataclass
class Server:
    root: Path
    base: str
    requested: list[str] = field(default_factory=list)
    # Statuses answered, one per request, before the file is served.
    refusals: list[int] = field(default_factory=list)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "www"
    root.mkdir()
    requested: list[str] = []
    refusals: list[int] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            if refusals:
                self.send_error(refusals.pop(0))
                return
            super().do_GET()

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(root, f"http://127.0.0.1:{httpd.server_address[1]}", requested, refusals)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=30)


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, dict[str, str]]:
    """(snapshot.db, the keys in it): KEYS keys written to a real etcd, then
    ``etcdctl snapshot save``."""
    folder = tmp_path_factory.mktemp("source-etcd")
    items = {f"/registry/configmaps/default/app-{i:05d}": f"value-{i}-" + "x" * (i % 50)
             for i in range(KEYS)}
    with real_etcd.etcd_cluster(folder) as (member,):
        member.put_many(sorted(items.items()))
        member.etcdctl("snapshot", "save", str(folder / "snapshot.db"))
    return (folder / "snapshot.db").read_bytes(), items


@dataclass
class Node:
    """A node's folders and the stubs' records."""

    root: Path
    calls: Path
    bin: Path
    library: Path

    @property
    def etcd_data(self) -> Path:
        return self.root / "var/lib/etcd"

    @property
    def nodes(self) -> Path:
        """The API's Node objects, one JSON file each (the kubectl stub's world)."""
        return self.root.parent / "api-nodes"

    def node_objects(self) -> dict[str, dict[str, Any]]:
        return {p.stem: json.loads(p.read_text()) for p in sorted(self.nodes.glob("*.json"))}

    def run(self, command: str) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "PROVISION_ROOT": str(self.root), "CALLS": str(self.calls),
               "PULLED": str(self.root / "pulled"), "PATH": f"{self.bin}:{os.environ['PATH']}",
               "NODES": str(self.nodes), "NODE_NAME": MEMBER, "PROVIDER_ID": PROVIDER_ID}
        return subprocess.run(["bash", "-c", f'set -euo pipefail; source "$0"; {command}',
                               str(self.library)], env=env, capture_output=True, text=True,
                              timeout=600)

    def recorded(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


def user_data(values: dict[str, str]) -> dict[str, str]:
    """path -> content of the write_files of the production controller-init user-data, as
    cloud-init writes them on a node whose address fill_node_values put in."""
    text = join(segments(rendered("production")["cloud-init/controller-init.yaml"]),
                {**late_values(), **values})
    for placeholder, value in NODE_VALUES.items():
        text = text.replace(placeholder, value)
    return {str(f["path"]): written(f) for f in yaml.safe_load(text)["write_files"]}


def make_node(tmp_path: Path, url: str, key: str, sha256: str) -> Node:
    files = user_data({"restore_url": url, "restore_key": key, "restore_sha256": sha256})
    root = tmp_path / "node"
    (root / "etc/provision").mkdir(parents=True)
    (root / "var/lib").mkdir(parents=True)
    for name in ("kubeadm.yaml", "restore.env"):
        path = root / "etc/provision" / name
        path.write_text(files[f"/etc/provision/{name}"])
        path.chmod(0o600)
    script = files[BOOTSTRAP]
    assert script.rstrip().endswith('\nmain "$@"')
    library = tmp_path / "bootstrap-functions.sh"
    library.write_text(script.rstrip().removesuffix('main "$@"'))
    stubs = tmp_path / "bin"
    stubs.mkdir()
    programs = {
        "kubeadm": KUBEADM.replace("{images}", " ".join(IMAGES)),
        "ctr": CTR.replace("{etcdctl}", real_etcd.ETCDCTL),
        "hostname": f"#!/bin/bash\necho {HOSTNAME}\n",
        "kubectl": NODES_API.replace("{python}", sys.executable),
        "node-api": NODES_API.replace("{python}", sys.executable),
        "systemctl": SYSTEMCTL,
        **{name: RECORDING.replace("{name}", name).replace("{real}", str(shutil.which(name)))
           for name in ("openssl", "curl")},
    }
    for name, text in programs.items():
        (stubs / name).write_text(text)
        (stubs / name).chmod(0o755)
    (tmp_path / "api-nodes").mkdir()
    return Node(root, tmp_path / "calls", stubs, library)


def serve(server: Server, body: bytes) -> str:
    path = server.root / OBJECT.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(body)
    return server.base + OBJECT + QUERY


def files_holding(folder: Path, digest: str) -> list[Path]:
    """Every file under `folder` whose content has this sha256 (a plaintext left behind)."""
    return [p for p in folder.rglob("*")
            if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == digest]


@contextmanager
def etcd_on(data_dir: Path, folder: Path) -> Iterator[real_etcd.Member]:
    """Real etcd started on a restored data folder with the flags kubeadm's manifest gives
    this member (cmd/kubeadm/app/phases/etcd/local.go getEtcdCommand: --name <node name>,
    --initial-advertise-peer-urls and --initial-cluster with https://<advertiseAddress>:2380),
    listening on the loopback interface (the test cannot bind the node's address)."""
    client_port, peer_port = real_etcd._free_ports(2)
    member = real_etcd.Member(MEMBER, client_port, peer_port, data_dir)
    log = folder / "restored-etcd.log"
    with log.open("ab") as output:
        member.process = subprocess.Popen(
            [real_etcd.ETCD, "--name", MEMBER, "--data-dir", str(data_dir),
             "--listen-client-urls", member.client_url, "--advertise-client-urls",
             member.client_url, "--listen-peer-urls", member.peer_url,
             "--initial-advertise-peer-urls", PEER, "--initial-cluster", f"{MEMBER}={PEER}"],
            stdout=output, stderr=subprocess.STDOUT)
    try:
        real_etcd._wait_healthy(member, log)
        yield member
    finally:
        real_etcd._stop(member)


def test_restore_drill_with_a_real_etcd(tmp_path: Path, server: Server,
                                        snapshot: tuple[bytes, dict[str, str]]) -> None:
    """Every key written before the snapshot is read back from etcd started on the data the
    node restored, as the member kubeadm's etcd manifest will run; the work folder, the
    key and the plaintext are gone; the key and the URL were on no command line and in no
    log line."""
    db, items = snapshot
    sealed = seal(db)
    url = serve(server, sealed.body)
    node = make_node(tmp_path, url, sealed.password, sealed.sha256)

    started = time.monotonic()
    done = node.run("restore_etcd")
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    assert server.requested == [OBJECT + QUERY], "the URL reached the server whole"
    assert (node.etcd_data / "member").is_dir()
    assert sorted(p.name for p in node.etcd_data.iterdir()) == ["member"]
    assert (node.etcd_data.stat().st_mode & 0o777) == 0o700
    assert not (node.root / "var/lib/etcd.restore").exists()
    assert files_holding(tmp_path / "node", sealed.sha256) == [], "plaintext left"
    recorded = "\n".join(node.recorded())
    for secret in (sealed.password, url, QUERY[1:]):
        assert secret not in recorded, "on a command line"
        assert secret not in done.stderr + done.stdout, "logged"
    calls = [c.split()[0] + " " + " ".join(c.split()[1:3]) for c in node.recorded()]
    assert calls.index("kubeadm config images") < calls.index("ctr -n k8s.io")
    assert "restoring etcd from a snapshot" in done.stderr
    assert f"etcd restored as member {MEMBER} ({PEER})" in done.stderr

    with etcd_on(node.etcd_data, tmp_path) as member:
        members = json.loads(member.etcdctl("member", "list", "-w", "json"))["members"]
        assert [(m["name"], m["peerURLs"]) for m in members] == [(MEMBER, [PEER])]
        back = member.get_prefix("/registry/")
    assert back == items
    print(f"\n[restore drill] {len(items)} keys written, {len(back)} restored, snapshot "
          f"{len(db)} bytes, node restore {elapsed:.1f}s")


def _damaged(kind: str, sealed: Sealed) -> tuple[bytes, str]:
    """(the copy served, the sha256 in restore.env)."""
    if kind == "flipped byte":
        body = bytearray(sealed.body)
        body[len(body) // 2] ^= 0x01
        return bytes(body), sealed.sha256
    if kind == "truncated":
        return sealed.body[: len(sealed.body) - 4096], sealed.sha256
    assert kind == "wrong sha256"
    return sealed.body, hashlib.sha256(b"another snapshot").hexdigest()


@pytest.mark.parametrize("kind", ["flipped byte", "truncated", "wrong sha256", "not found"])
def test_a_bad_copy_stops_before_etcd_sees_a_byte(tmp_path: Path, server: Server,
                                                  snapshot: tuple[bytes, dict[str, str]],
                                                  kind: str) -> None:
    """A damaged, truncated or unexpected copy, or a failed download, stops the bootstrap
    (status other than 0, under set -e) with one clear line before kubeadm init;
    /var/lib/etcd was never created, etcdutl never ran, and neither the plaintext nor the
    key is left."""
    sealed = seal(snapshot[0])
    if kind == "not found":
        url = serve(server, sealed.body).replace(".db.enc", ".missing")
        sha256 = sealed.sha256
    else:
        body, sha256 = _damaged(kind, sealed)
        url = serve(server, body)
    node = make_node(tmp_path, url, sealed.password, sha256)
    done = node.run(with_claim_recorded("init_control_plane; echo reached-the-next-step"))
    assert done.returncode != 0
    assert "reached-the-next-step" not in done.stdout
    assert not [c for c in node.recorded() if c.startswith("kubeadm init")]
    assert len(server.requested) == 1, "a refused copy is not fetched again"
    expected = ("could not download the snapshot: etcd left untouched" if kind == "not found"
                else "snapshot checksum mismatch (not the copy provision sealed): etcd left "
                     "untouched")
    assert expected in done.stderr, done.stderr
    assert not node.etcd_data.exists()
    assert not (node.root / "var/lib/etcd.restore").exists()
    assert files_holding(tmp_path / "node", sealed.sha256) == []
    assert not [c for c in node.recorded() if c.startswith("ctr ")]
    assert sealed.password not in done.stderr and url not in done.stderr


def with_claim_recorded(command: str) -> str:
    """The floating IP's claim (/usr/bin/python3 .../failover.py, an absolute path no
    PATH stub can stand in for) recorded instead of run; every other retry runs."""
    return ('eval "original_$(declare -f retry)"; '
            'retry() { if [[ "$3" == /usr/bin/python3 ]]; then echo "claim ${*:3}" >>"$CALLS";'
            ' else original_retry "$@"; fi; }; ' + command)


# kubeadm init in a restore: no kubeadm-certs (restore_nodes uploads it), the data dir meant.
RESTORE_INIT = ("kubeadm init --config {root}/etc/provision/kubeadm.yaml "
                "--skip-phases=upload-certs --skip-token-print --skip-certificate-key-print "
                "--ignore-preflight-errors=DirAvailable--var-lib-etcd")
ADMIN = "kubectl --kubeconfig /etc/kubernetes/admin.conf"
CONTROL_PLANE = "node-role.kubernetes.io/control-plane"
UNINITIALIZED = {"key": "node.cloudprovider.kubernetes.io/uninitialized", "value": "true",
                 "effect": "NoSchedule"}


def api_node(name: str, droplet: int, control_plane: bool) -> dict[str, Any]:
    """A Node as the snapshot's etcd holds it: registered by the old droplet's kubelet,
    initialised by the cloud controller manager, Ready when the snapshot was taken."""
    labels = {"kubernetes.io/hostname": name, **({CONTROL_PLANE: ""} if control_plane else {})}
    return {"metadata": {"name": name, "labels": labels},
            "spec": {"providerID": f"digitalocean://{droplet}",
                     "taints": ([{"key": CONTROL_PLANE, "effect": "NoSchedule"}]
                                if control_plane else [])},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}


def put_nodes(node: Node, *objects: dict[str, Any]) -> None:
    for obj in objects:
        (node.nodes / f"{obj['metadata']['name']}.json").write_text(json.dumps(obj))


def test_without_a_restore_kubeadm_init_is_as_before(tmp_path: Path, server: Server) -> None:
    """restore.env with an empty URL (every ordinary boot): no download, no etcd image run,
    and kubeadm init gets exactly today's arguments, without the preflight exception."""
    node = make_node(tmp_path, "", "", "")
    done = node.run(with_claim_recorded("init_control_plane"))
    assert done.returncode == 0, done.stderr
    assert node.recorded() == [
        "claim /usr/bin/python3 /usr/local/lib/provision/failover.py claim",
        f"kubeadm init --config {node.root}/etc/provision/kubeadm.yaml --upload-certs "
        "--skip-token-print --skip-certificate-key-print"]
    assert server.requested == []
    assert not node.etcd_data.exists()
    assert not (node.root / "var/lib/provision").exists()


def test_a_restore_claims_the_address_then_restores_then_inits(
        tmp_path: Path, server: Server, snapshot: tuple[bytes, dict[str, str]]) -> None:
    """The floating IP first (the endpoint must answer, as on every init), then the restore,
    then kubeadm init told that the non-empty data dir is meant (its DirAvailable check)."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    done = node.run(with_claim_recorded("init_control_plane"))
    assert done.returncode == 0, done.stderr
    steps = [c.split()[0] for c in node.recorded()]
    assert steps[0] == "claim"
    init = node.recorded().index(RESTORE_INIT.format(root=node.root))
    assert steps.index("curl") < steps.index("ctr") < init


def test_a_retried_bootstrap_keeps_the_restored_member(
        tmp_path: Path, server: Server, snapshot: tuple[bytes, dict[str, str]]) -> None:
    """The bootstrap run again after its restore finished (kubeadm init failed, an operator
    reruns it): the member folder is a whole restore (it arrives by one rename, last) that
    etcd may already have written to, and the copy's URL may have expired, so it is kept,
    not downloaded and restored over, and kubeadm init still gets the preflight exception.
    A work folder a killed run left (here with a plaintext in it) is removed."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    first = node.run("restore_etcd")
    assert first.returncode == 0, first.stderr
    restored = {p.relative_to(node.etcd_data): p.read_bytes()
                for p in node.etcd_data.rglob("*") if p.is_file()}
    server.requested.clear()
    node.calls.unlink()

    done = node.run(with_claim_recorded("init_control_plane"))
    assert done.returncode == 0, done.stderr
    assert "etcd data restored by an earlier run of this bootstrap: kept" in done.stderr
    assert server.requested == []
    assert [c.split()[0] for c in node.recorded()][:2] == ["claim", "kubeadm"]
    assert node.recorded()[1] == RESTORE_INIT.format(root=node.root)
    assert {p.relative_to(node.etcd_data): p.read_bytes()
            for p in node.etcd_data.rglob("*") if p.is_file()} == restored

    # A run killed mid-way leaves its work folder; the next one starts clean.
    shutil.rmtree(node.etcd_data)
    leftover = node.root / "var/lib/etcd.restore"
    leftover.mkdir()
    (leftover / "db").write_bytes(snapshot[0])
    again = node.run("restore_etcd")
    assert again.returncode == 0, again.stderr
    assert not leftover.exists()
    assert (node.etcd_data / "member").is_dir()
    assert files_holding(tmp_path / "node", sealed.sha256) == []


def test_a_passing_storage_error_is_retried(tmp_path: Path, server: Server,
                                            snapshot: tuple[bytes, dict[str, str]]) -> None:
    """Spaces answering 503 once (a transient error for curl's --retry: curl 7.88
    docs/cmdline-opts/retry.d) costs one retry after 10 s, not the restore."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    server.refusals.append(503)
    done = node.run("restore_etcd")
    assert done.returncode == 0, done.stderr
    assert server.requested == [OBJECT + QUERY] * 2
    assert (node.etcd_data / "member").is_dir()


def test_a_restore_replaces_the_stale_control_plane_nodes(
        tmp_path: Path, server: Server, snapshot: tuple[bytes, dict[str, str]]) -> None:
    """The restored etcd holds the Nodes of the replaced control-plane droplets, names
    reused, providerIDs of deleted droplets. Init runs without kubeadm-certs (no control
    plane can join yet); then every control-plane Node whose providerID is not this
    droplet's is deleted (this node's own stale one too, which its kubelet had adopted as
    it was) and never a worker's; the kubelet, restarted because its own Node was stale,
    registers anew with this droplet's providerID and the uninitialized taint the cloud
    controller manager lifts; kubeadm's label and taint go on the new Node; kubeadm-certs
    is uploaded last, its key never printed."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    worker = api_node("production-general-1", 3001, control_plane=False)
    put_nodes(node, api_node(MEMBER, 1001, True), api_node("production-cp-2", 1002, True),
              api_node("production-cp-3", 1003, True), worker)

    done = node.run(with_claim_recorded("init_control_plane"))
    assert done.returncode == 0, done.stderr
    calls = node.recorded()
    config = f"{node.root}/etc/provision/kubeadm.yaml"
    init = calls.index(RESTORE_INIT.format(root=node.root))
    deletes = [calls.index(f"{ADMIN} delete node {name} --ignore-not-found")
               for name in (MEMBER, "production-cp-2", "production-cp-3")]
    restart = calls.index("systemctl restart kubelet")
    mark = calls.index(f"kubeadm init phase mark-control-plane --config {config}")
    upload = calls.index(f"kubeadm init phase upload-certs --upload-certs --config {config} "
                         "--skip-certificate-key-print")
    assert init < min(deletes) and max(deletes) < restart < mark < upload == len(calls) - 1
    assert not [c for c in calls if "delete" in c and "production-general-1" in c]
    assert all(c.startswith(ADMIN) for c in calls if c.startswith("kubectl"))

    objects = node.node_objects()
    assert sorted(objects) == [MEMBER, "production-general-1"]
    assert objects["production-general-1"] == worker
    mine = objects[MEMBER]
    assert mine["spec"]["providerID"] == PROVIDER_ID
    assert CONTROL_PLANE in mine["metadata"]["labels"]
    assert UNINITIALIZED in mine["spec"]["taints"]
    assert (node.root / "var/lib/provision/restore-init").exists()
    assert (node.root / "var/lib/provision/restore-certs").exists()
    assert ("deleting control-plane Node production-cp-2: providerID digitalocean://1002 "
            "is not this droplet's") in done.stderr
    key = re.search(r"^certificateKey: '(.*)'$", (node.root / "etc/provision/kubeadm.yaml")
                    .read_text(), re.M)
    assert key and key.group(1) not in done.stderr + done.stdout + "\n".join(calls)


@pytest.mark.parametrize("own", ["registered anew", "deleted, not yet registered"])
def test_a_rerun_after_init_goes_on_from_the_nodes(
        tmp_path: Path, server: Server, snapshot: tuple[bytes, dict[str, str]],
        own: str) -> None:
    """The bootstrap run again after kubeadm init succeeded and a later step failed: init is
    not run again (its preflight checks would stop it: ports in use, manifests there) and
    nothing is downloaded. Deleting is repeated for what is left: the Node already carrying
    this droplet's providerID is kept, the kubelet is not restarted; a Node of its own that
    the failed run deleted before the kubelet registered again does get the restart."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    (node.root / "var/lib/provision").mkdir()
    (node.root / "var/lib/provision/restore-init").touch()
    if own == "registered anew":
        put_nodes(node, api_node(MEMBER, int(NODE_VALUES["__DROPLET_ID__"]), True))
    put_nodes(node, api_node("production-cp-2", 1002, True),
              api_node("production-general-1", 3001, False))

    done = node.run(with_claim_recorded("init_control_plane"))
    assert done.returncode == 0, done.stderr
    calls = node.recorded()
    assert server.requested == []
    assert not [c for c in calls if c.startswith("kubeadm init --config")]
    assert [c for c in calls if " delete " in c] == [
        f"{ADMIN} delete node production-cp-2 --ignore-not-found"]
    restarted = "systemctl restart kubelet" in calls
    assert restarted == (own != "registered anew")
    assert calls[-2].startswith("kubeadm init phase mark-control-plane")
    assert calls[-1].startswith("kubeadm init phase upload-certs --upload-certs")
    objects = node.node_objects()
    assert sorted(objects) == [MEMBER, "production-general-1"]
    assert objects[MEMBER]["spec"]["providerID"] == PROVIDER_ID


def test_a_rerun_after_kubeadm_certs_went_up_deletes_nothing(
        tmp_path: Path, server: Server, snapshot: tuple[bytes, dict[str, str]]) -> None:
    """Once kubeadm-certs is uploaded the other control planes join: production-cp-2's new
    droplet registers a Node with its own (new) providerID. The bootstrap run again by hand
    on the first node after that (say an add-on failed) must not take it for a stale Node:
    nothing is deleted, the kubelet is not restarted, no kubeadm phase runs again, nothing is
    downloaded, and every Node is left as it is."""
    sealed = seal(snapshot[0])
    node = make_node(tmp_path, serve(server, sealed.body), sealed.password, sealed.sha256)
    put_nodes(node, api_node(MEMBER, 1001, True), api_node("production-cp-2", 1002, True),
              api_node("production-general-1", 3001, False))
    first = node.run(with_claim_recorded("init_control_plane"))
    assert first.returncode == 0, first.stderr
    # production-cp-2's new droplet joins (kubeadm join, its kubelet registers anew).
    put_nodes(node, api_node("production-cp-2", 2002, True))
    before = node.node_objects()
    server.requested.clear()
    node.calls.unlink()

    again = node.run(with_claim_recorded("init_control_plane"))
    assert again.returncode == 0, again.stderr
    assert node.node_objects() == before
    assert before["production-cp-2"]["spec"]["providerID"] == "digitalocean://2002"
    assert node.recorded() == [
        "claim /usr/bin/python3 /usr/local/lib/provision/failover.py claim"]
    assert server.requested == []
    assert ("control plane restored by an earlier run of this bootstrap: Nodes left as they "
            "are") in again.stderr
