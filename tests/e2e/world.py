"""A whole simulated world for `provision up` -> `deploy` -> `status` -> `rollback` -> `destroy`.

DigitalOcean is the fake provider and the fake API sharing one account, whose floating IPs
are handed out on loopback (127.x.y.0/24). Kubernetes is the fake API server, started by a
"bootstrap" thread the moment Terraform has created the floating IP and a droplet whose
user-data runs `kubeadm init`: it listens there on 6443 with TLS, with a certificate signed
by the cluster CA provision generated, and checks provision's client certificate against the
same CA. Each droplet's user-data (as the fake cloud keeps it for the metadata service) is
played as kubeadm would (tests/support/kubeadm.py): init makes the bootstrap token and
uploads the control-plane certificates; a droplet joins, and registers as a node, only while
its token (and, for a control plane, its certificate key) is valid at provision's clock; a
second init counts as a second, empty cluster. Nodes are tainted uninitialized as kubelets
with ``--cloud-provider=external`` are; once the first control-plane node is a node, its
add-ons appear (tests/support/platform.py) and the fake's cloud node controller lifts the
taint when the CCM's pod is Ready. provision's code runs unchanged.

A restore drill (`provision restore`, tests/e2e/test_restore.py): once every
control-plane droplet is gone, no API server is left and the world's stops answering. A
droplet whose user-data runs `kubeadm init` with a non-empty RESTORE_URL in
/etc/provision/restore.env is played as templates/scripts/bootstrap.sh.j2 does it: it
downloads the URL over real HTTP from the fake Spaces bucket, decrypts it
(backup/restore_copy.py ``unseal``, what its openssl does) and checks the SHA-256 (a
mismatch: that droplet never comes up, in ``refused``); then etcd is restored from the
snapshot (``etcdutl snapshot restore``: a one-member cluster holding every key of the
snapshot) and `kubeadm init` runs with the CA in its user-data. kubeadm init with an
existing etcd data dir keeps every object: its phases write through the API server, which
serves what etcd holds (tests/support/kubeadm.py). So a NEW API server starts on the same
floating IP with the same CA, its store loaded from the snapshot (the fake's store dump is
what an etcd snapshot holds: tests/fakes/kubeapi/store.py), and init (run with
``--skip-phases=upload-certs``) makes its token. Nodes of the snapshot are there again,
Ready as they were, each with the providerID of the droplet it was (a Node registered for
droplet D carries ``digitalocean://<D's id>``, the kubelet's --provider-id): as bootstrap.sh's
restore_nodes does, every control-plane Node whose providerID is not the restoring
droplet's is deleted, its own stale one included, its kubelet registers a new Node with
its own providerID, and only then kubeadm-certs is uploaded (tests/contract/
test_restore_bootstrap.py cites why). A joining control plane is refused while a Ready Node
of its name exists (kubernetes cmd/kubeadm/app/cmd/phases/join/kubelet.go); a kubelet
that finds a Node of its name adopts it, providerID unchanged (registration of an existing
Node: tryRegisterWithAPIServer, pkg/kubelet/kubelet_node_status.go), and registers only
once: a worker whose Node the snapshot lacks never comes back by itself. An init droplet
with an EMPTY URL while a cluster existed is a second, empty cluster, as before.

Run it by hand: ``python -m tests.e2e.world`` (prints every command's output).
"""

from __future__ import annotations

import random
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from provisioner import clock
from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.doprovider.resources.compute import user_data
from tests.fakes.kubeapi import catalog, etcd
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import kubeadm, platform
from tests.support.cluster_tls import server_cert
from tests.support.sim import Result, Simulation, simulation


def provider_id(droplet_id: str) -> str:
    """The kubelet's --provider-id on a droplet (bootstrap.sh from the metadata's id)."""
    return f"digitalocean://{droplet_id}"


SECRETS = {"PROD_DATABASE_URL": "postgres://db.internal/prod",
           "PROD_STRIPE_API_KEY": "sk_live_e2e"}


@dataclass
class Bootstrapper:
    """Plays the droplets' cloud-init: an API server on the floating IP, nodes that join."""

    sim: Simulation
    stop: threading.Event = field(default_factory=threading.Event)
    kube: FakeKubeAPI | None = None
    started_at: float | None = None
    claimed: bool = False
    cluster: str = "prod"  # the environment's name, read when its API server starts
    error: BaseException | None = None
    # Seconds a droplet takes to join as a node once it exists (cloud-init and kubeadm
    # join); may be changed while the world runs, e.g. large to hold nodes back, then 0.
    node_delay: float = 0.0
    first_seen: dict[str, float] = field(default_factory=dict)  # droplet id -> monotonic time
    # Droplet id -> how it joined: "init" (ran `kubeadm init`), "control-plane" or "worker".
    joined: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)  # droplet name -> why not (yet)
    # Droplets that ran `kubeadm init` while the cluster existed: each a second, empty
    # cluster beside it (their ids). Tests assert there are none.
    second_inits: set[str] = field(default_factory=set)
    registered: set[str] = field(default_factory=set)  # droplet ids whose kubelet registered
    # Control-plane droplet id -> the etcd member its kubeadm made (init, or join's
    # AddMember once etcd accepted it); the member stops answering when that droplet is gone.
    etcd_ids: dict[str, int] = field(default_factory=dict)
    # The add-ons the first control-plane node applies after `kubeadm init`; images by
    # add-on name override upstream's (e.g. a crash-looping CCM: tests/support/platform.py).
    addons: bool = True
    addon_images: dict[str, str] = field(default_factory=dict)
    addon_logs: dict[str, str] = field(default_factory=dict)  # add-on name -> its pods' log
    addons_installed: bool = False
    # The restore drill: the files the first node's user-data puts in /etc/kubernetes/pki
    # (for the backup agent's archive), whether a cluster ever ran (an init droplet then
    # restores or is a second cluster), the API servers stopped when every control-plane
    # droplet was gone, and the droplets that restored etcd from a snapshot.
    pki: dict[str, bytes] = field(default_factory=dict)
    existed: bool = False
    stopped: list[FakeKubeAPI] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # droplet ids
    restore_refused: set[str] = field(default_factory=set)  # droplet ids

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the test
            self.error = e

    def _run(self) -> None:
        from provisioner.bootstrap.pki import ClusterSecrets

        cloud = Cloud(Path(self.sim.env["DO_SIM_STATE"]))
        while not self.stop.wait(0.1):
            account = cloud.snapshot()
            data = account.get("resources", {})
            droplets = sorted(data.get("digitalocean_droplet", {}).values(),
                              key=lambda d: str(d["name"]))
            names = {d["name"] for d in droplets}
            now = time.monotonic()
            for droplet in droplets:
                self.first_seen.setdefault(str(droplet["id"]), now)
            configs = {str(d["id"]): kubeadm.read_user_data(user_data(account, d["id"]))
                       for d in droplets}
            planes = [d for d in droplets if f"{self.cluster}-cp-" in str(d["name"])]
            if self.kube is not None and not planes:
                self._all_control_planes_gone()
            restoring = next((d for d in planes if (c := configs[str(d["id"])]) and c.init
                              and c.restore.get("RESTORE_URL")
                              and str(d["id"]) not in self.joined
                              and str(d["id"]) not in self.restore_refused), None)
            if restoring is not None:
                if now - self.first_seen[str(restoring["id"])] < self.node_delay:
                    continue
                config = configs[str(restoring["id"])]
                assert config is not None
                self._restore(restoring, config, data)
            if self.kube is None and self.existed:
                for rid, c in configs.items():  # no restore: each init is a new cluster
                    if c and c.init and not c.restore.get("RESTORE_URL"):
                        self.second_inits.add(rid)
                continue
            if self.kube is None:
                try:
                    secrets_dir = self.sim.workdir / "secrets"  # follows the file's `name`
                except (OSError, TypeError, KeyError, ValueError, yaml.YAMLError):
                    continue  # the environment file is being rewritten: look again
                cluster = secrets_dir.parent.name  # the environment's name
                ips = list(data.get("digitalocean_reserved_ip", {}).values())
                init = next((rid for rid, c in configs.items() if c and c.init), None)
                if not ips or init is None or not (secrets_dir / "ca.key").exists():
                    continue
                import json

                values = json.loads((secrets_dir / "bootstrap.json").read_text())
                secrets = ClusterSecrets((secrets_dir / "ca.crt").read_bytes(),
                                         (secrets_dir / "ca.key").read_bytes(),
                                         values["bootstrap_token"], values["certificate_key"])
                ip = ips[0]["ip_address"]
                cert, key = server_cert(secrets, ip)
                # The API server runs the release kubeadm init installed: the file's.
                self.kube = FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key,
                                        ca_pem=secrets.ca_crt_pem,
                                        client_ca_pem=secrets.ca_crt_pem, host=ip, port=6443,
                                        git_version=self._version())
                self.kube.start()
                config = configs[init]
                assert config is not None
                kubeadm.init(self.kube, config, clock.now())
                self.joined[init] = "init"
                self.started_at = time.monotonic()
                self.cluster = cluster
                self.pki = dict(config.pki)
                self.existed = True
            first = f"{self.cluster}-cp-1"
            if not self.claimed and first in names:
                # The first control-plane node claims the floating IP before kubeadm init.
                self.sim.claim_floating_ip(first)
                self.claimed = True
            kubeadm.clean_tokens(self.kube, clock.now())
            known = {n["metadata"]["name"] for n in self.kube.list("v1", "Node")}
            alive = {str(d["id"]) for d in droplets}
            for rid, member_id in self.etcd_ids.items():
                if rid not in alive:  # its droplet is gone (deleted, or replaced by Terraform)
                    self.kube.etcd.stop(member_id)
            for droplet in droplets:
                rid, name = str(droplet["id"]), str(droplet["name"])
                if rid not in self.registered:
                    if now - self.first_seen[rid] < self.node_delay:
                        continue
                    role = self.join_role(rid, name, configs[rid])
                    if role is None:
                        continue
                    self.registered.add(rid)
                    self.refused.pop(name, None)
                    if name not in known:  # a replacement's kubelet takes over its Node
                        self.kube.add_node(name, ready=True, control_plane=role != "worker",
                                           external_cloud_provider=True,
                                           kubelet_version=self._version(),
                                           address=droplet.get("ipv4_address_private"),
                                           provider_id=provider_id(rid))
                        known.add(name)
                if self.joined.get(rid) in ("init", "control-plane") \
                        and rid not in self.etcd_ids:
                    self._etcd_member(rid, name, str(droplet.get("ipv4_address_private")))
            if self.addons and not self.addons_installed and first in known:
                platform.install(self.kube, self._cni(), self.addon_images)
                for addon, log in self.addon_logs.items():
                    self.kube.set_log("kube-system", f"{addon}-", log)
                self.addons_installed = True

    def _etcd_member(self, droplet_id: str, name: str, ip: str) -> None:
        """kubeadm's etcd step on a control-plane droplet: init's new cluster, or join's
        AddMember, which etcd may refuse (tests/fakes/kubeapi/etcd.py, mayAddMember): the
        join fails and bootstrap.sh runs it again, so it is tried again on the next pass
        (its kubelet registered the Node before: kubeadm's kubelet-start phase comes
        before control-plane-join). The member's URLs are the droplet's VPC address."""
        assert self.kube is not None
        cluster = self.kube.etcd
        try:
            member = cluster.join(name, ip) if cluster.exists else cluster.init(name, ip)
        except etcd.EtcdError as e:
            self.refused[name] = f"kubeadm join: adding the etcd member failed: {e}"
            return
        etcd.mirror_pod(self.kube.registry, name, ip)
        self.refused.pop(name, None)
        self.etcd_ids[droplet_id] = member.id

    def join_role(self, droplet_id: str, name: str,
                  config: kubeadm.NodeConfig | None) -> str | None:
        """How the droplet is part of the cluster once its kubeadm has run: "init",
        "control-plane" or "worker"; None while it is not (not yet, or never)."""
        if droplet_id in self.joined:
            return self.joined[droplet_id]  # the first node: init ran when the API started
        if droplet_id in self.second_inits or config is None:
            return None
        if config.init:
            self.second_inits.add(droplet_id)  # its own etcd, its own empty cluster
            return None
        assert self.kube is not None
        why = kubeadm.join_refusal(self.kube, config, clock.now())
        if why is None and self.restored:  # the snapshot's Nodes are back, Ready
            why = kubeadm.ready_node(self.kube, name)
        if why is not None:
            self.refused[name] = why  # bootstrap.sh retries the join
            return None
        role = "control-plane" if config.control_plane else "worker"
        self.joined[droplet_id] = role
        return role

    def _all_control_planes_gone(self) -> None:
        """No control-plane droplet is left: no API server, no etcd member answers."""
        assert self.kube is not None
        self.kube.stop()
        self.stopped.append(self.kube)
        self.kube = None
        self.claimed = False
        self.etcd_ids.clear()

    def _restore(self, droplet: dict[str, Any], config: kubeadm.NodeConfig,
                 data: dict[str, Any]) -> None:
        """bootstrap.sh's restore on the first node, then `kubeadm init` on the restored
        etcd: a new API server on the floating IP, same CA, the snapshot's objects."""
        import hashlib
        import json
        import urllib.request

        from provisioner.backup.restore_copy import unseal
        from provisioner.bootstrap.pki import ClusterSecrets

        rid, name = str(droplet["id"]), str(droplet["name"])
        try:
            with urllib.request.urlopen(config.restore["RESTORE_URL"], timeout=30) as answer:
                body = answer.read()
        except OSError as e:
            self.refused[name] = f"restore: downloading the snapshot copy failed: {e}"
            return  # bootstrap.sh retries the download
        snapshot = unseal(body, config.restore.get("RESTORE_KEY", ""))
        if hashlib.sha256(snapshot).hexdigest() != config.restore.get("RESTORE_SHA256"):
            self.refused[name] = "restore: the snapshot copy's SHA-256 is not RESTORE_SHA256"
            self.restore_refused.add(rid)  # bootstrap.sh stops: kubeadm never runs
            return
        if self.kube is not None:  # the restored node takes the endpoint over
            self._all_control_planes_gone()
        secrets_dir = self.sim.workdir / "secrets"
        values = json.loads((secrets_dir / "bootstrap.json").read_text())
        secrets = ClusterSecrets(config.pki["ca.crt"], config.pki["ca.key"],
                                 values["bootstrap_token"], values["certificate_key"])
        ip = next(iter(data.get("digitalocean_reserved_ip", {}).values()))["ip_address"]
        cert, key = server_cert(secrets, ip)
        kube = FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key, ca_pem=secrets.ca_crt_pem,
                           client_ca_pem=secrets.ca_crt_pem, host=ip, port=6443,
                           git_version=self._version())
        kube.restore(snapshot)
        if self.addons_installed:  # the CCM's Deployment came back from etcd: it runs again
            platform.run_cloud_controller(kube)
        kube.start()
        kubeadm.init(kube, config, clock.now(), upload_certs=False)
        self.kube = kube
        self.joined[rid] = "init"
        self.restored.append(rid)
        self.refused.pop(name, None)
        self.pki = dict(config.pki)
        self._restore_nodes(kube, droplet, config)

    def _restore_nodes(self, kube: FakeKubeAPI, droplet: dict[str, Any],
                       config: kubeadm.NodeConfig) -> None:
        """bootstrap.sh's restore_nodes after the restored init: every control-plane Node
        whose providerID is not this droplet's is deleted (its own stale one included),
        its kubelet, restarted, registers its Node anew with its own providerID (then
        `kubeadm init phase mark-control-plane`: the label and taint add_node gives a
        control plane), and only then kubeadm-certs is uploaded, so no control plane
        joins while a stale Node of its name is there. Workers' Nodes stay."""
        rid, name = str(droplet["id"]), str(droplet["name"])
        own = provider_id(rid)
        for node in kube.objects("v1", "Node"):
            labels = node["metadata"].get("labels") or {}
            if kubeadm.CONTROL_PLANE_LABEL in labels and \
                    (node.get("spec") or {}).get("providerID") != own:
                kube.registry.delete(catalog.get("v1", "Node"), "", node["metadata"]["name"])
        if kube.get("v1", "Node", name) is None:
            kube.add_node(name, ready=True, control_plane=True, external_cloud_provider=True,
                          kubelet_version=self._version(),
                          address=droplet.get("ipv4_address_private"), provider_id=own)
        self.registered.add(rid)
        kubeadm.upload(kube, config, clock.now())

    def _version(self) -> str:
        """The Kubernetes release the environment file's nodes install (v-prefixed)."""
        try:
            doc = yaml.safe_load(self.sim.config.read_text()) or {}
        except (OSError, yaml.YAMLError):
            doc = {}
        return "v" + str((doc.get("kubernetes") or {}).get("version") or "1.36.2")

    def _cni(self) -> str:
        """The environment file's CNI (calico unless it says flannel)."""
        try:
            doc = yaml.safe_load(self.sim.config.read_text()) or {}
        except (OSError, yaml.YAMLError):
            return "calico"
        return str((doc.get("kubernetes") or {}).get("cni") or "calico")


@dataclass
class World:
    """The simulation plus the bootstrapper, and a way to run provision in it."""

    sim: Simulation
    boot: Bootstrapper

    def provision(self, *args: str) -> Result:
        """Run provision in-process, as a user would in this world."""
        return self.sim.run(*args)


def free_pool() -> str:
    """A loopback /24 whose floating IP (its .10) has port 6443 free.

    Worlds of other tests, benchmarks or a developer's run may be alive on this machine:
    a collision would put provision in front of another world's API server and CA.
    """
    pick = random.SystemRandom()
    for _ in range(50):
        prefix = f"127.{pick.randint(16, 250)}.{pick.randint(1, 250)}"
        with socket.socket() as probe:
            try:
                probe.bind((f"{prefix}.10", 6443))
            except OSError:
                continue
        return f"{prefix}.0/24"
    raise RuntimeError("no free loopback address for the simulated floating IP")


@contextmanager
def world(tmp_path: Path) -> Iterator[World]:
    """Everything up; torn down at exit."""
    pool = free_pool()
    with simulation(tmp_path) as sim:
        sim.env.update(SECRETS)
        with Cloud(Path(sim.env["DO_SIM_STATE"])).transaction() as account:
            account.data["pools"] = {"reserved_ip": pool}
        boot = Bootstrapper(sim)
        thread = threading.Thread(target=boot.run, daemon=True)
        thread.start()
        try:
            yield World(sim, boot)
        finally:
            boot.stop.set()
            thread.join(timeout=10)
            if boot.kube is not None:
                with suppress(Exception):
                    boot.kube.stop()


def _show(label: str, result: Result) -> None:
    print(f"$ provision {label}  -> exit {result.code}")
    sys.stdout.write(result.stderr + result.stdout)


def main() -> int:
    """The developer's command: the whole pipeline once, with its output."""
    with tempfile.TemporaryDirectory() as tmp, world(Path(tmp)) as w:
        config = str(w.sim.config)
        steps: list[tuple[str, tuple[str, ...]]] = [
            ("up", ("up", config, "--yes", "--override-window", "--reason", "e2e")),
            ("status", ("status", config)),
            ("deploy", ("deploy", config, "--override-window", "--reason", "e2e")),
            ("rollback", ("rollback", config)),
            ("destroy", ("destroy", config, "--yes", "--force")),
        ]
        for label, args in steps:
            result: Any = w.provision(*args)
            _show(label, result)
            if result.code != 0:
                return int(result.code)
    return 0


if __name__ == "__main__":
    sys.exit(main())
