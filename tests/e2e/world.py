"""A whole simulated world for `provision up` -> `deploy` -> `status` -> `rollback` -> `destroy`.

DigitalOcean is the fake provider and the fake API sharing one account, whose floating IPs
are handed out on loopback (127.x.y.0/24). Kubernetes is the fake API server, started by a
"bootstrap" thread the moment Terraform has created the floating IP: it listens there on
6443 with TLS, with a certificate signed by the cluster CA provision generated, and checks
provision's client certificate against the same CA. Droplets register as nodes as they
appear, as kubeadm joins would make them, tainted uninitialized as kubelets with
``--cloud-provider=external`` are; once the first control-plane node is a node, its
add-ons appear (tests/support/platform.py) and the fake's cloud node controller lifts the
taint when the CCM's pod is Ready. provision's code runs unchanged.

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

from tests.fakes.doprovider.cloud import Cloud
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import platform
from tests.support.cluster_tls import server_cert
from tests.support.sim import Result, Simulation, simulation

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
    first_seen: dict[str, float] = field(default_factory=dict)  # droplet -> monotonic time
    # The add-ons the first control-plane node applies after `kubeadm init`; images by
    # add-on name override upstream's (e.g. a crash-looping CCM: tests/support/platform.py).
    addons: bool = True
    addon_images: dict[str, str] = field(default_factory=dict)
    addon_logs: dict[str, str] = field(default_factory=dict)  # add-on name -> its pods' log
    addons_installed: bool = False

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # surfaced by the test
            self.error = e

    def _run(self) -> None:
        from provisioner.bootstrap.pki import ClusterSecrets

        cloud = Cloud(Path(self.sim.env["DO_SIM_STATE"]))
        while not self.stop.wait(0.1):
            data = cloud.snapshot().get("resources", {})
            droplets = {d["name"] for d in data.get("digitalocean_droplet", {}).values()}
            now = time.monotonic()
            for name in droplets:
                self.first_seen.setdefault(name, now)
            if self.kube is None:
                try:
                    secrets_dir = self.sim.workdir / "secrets"  # follows the file's `name`
                except (OSError, TypeError, KeyError, ValueError, yaml.YAMLError):
                    continue  # the environment file is being rewritten: look again
                cluster = secrets_dir.parent.name  # the environment's name
                ips = list(data.get("digitalocean_reserved_ip", {}).values())
                if not ips or not (secrets_dir / "ca.key").exists():
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
                self.started_at = time.monotonic()
                self.cluster = cluster
            first = f"{self.cluster}-cp-1"
            if not self.claimed and first in droplets:
                # The first control-plane node claims the floating IP before kubeadm init.
                self.sim.claim_floating_ip(first)
                self.claimed = True
            known = {n["metadata"]["name"] for n in self.kube.list("v1", "Node")}
            for name in sorted(droplets - known):
                if now - self.first_seen[name] >= self.node_delay:
                    self.kube.add_node(name, ready=True, control_plane="-cp-" in name,
                                       external_cloud_provider=True,
                                       kubelet_version=self._version())
                    known.add(name)
            if self.addons and not self.addons_installed and first in known:
                platform.install(self.kube, self._cni(), self.addon_images)
                for addon, log in self.addon_logs.items():
                    self.kube.set_log("kube-system", f"{addon}-", log)
                self.addons_installed = True

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
