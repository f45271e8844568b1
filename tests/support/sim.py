"""A simulated DigitalOcean for whole-command tests: fake provider + fake API, one account.

`Simulation` starts the fake API on loopback, seeds the account with SSH keys, points
Terraform (through its CLI config) and python-digitalocean (through DIGITALOCEAN_END_POINT)
at it, and writes an environment file whose ssh_keys are the seeded keys. Commands run
either in-process (CliRunner, fast) or as real processes (for signals).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli
from provisioner.cloud.releases import HOST_ENV
from tests.fakes.doapi import FakeDigitalOcean, generate_ssh_public_key
from tests.fakes.doprovider.cloud import Cloud
from tests.oracles.terraform import prepare_plugin_env
from tests.support.clock import subprocess_env
from tests.support.k8s_packages import package_repositories
from tests.support.rendering import ROOT, example_document

TOKEN = "sim-token"
# The scoped token operators give the failover agent (README: Secrets); `up` and `plan`
# refuse to put the full API token in the control-plane user-data without it.
FAILOVER_TOKEN = "sim-failover-token"


@dataclass
class Result:
    """A finished command."""

    code: int
    stdout: str
    stderr: str


@dataclass
class Simulation:
    """One simulated account and an environment file to drive against it."""

    root: Path
    api: FakeDigitalOcean
    env: dict[str, str]
    config: Path
    fingerprints: list[str] = field(default_factory=list)

    def write_config(self, changes: Mapping[str, Any] | None = None, example: str = "production",
                     edit: Any = None) -> Path:
        """Write the example with this account's keys; ``edit(doc)`` may change it further."""
        doc = example_document(example)  # without backups, unless ``changes`` gives them
        doc["digitalocean"]["ssh_keys"] = self.fingerprints
        doc.update(changes or {})
        if edit is not None:
            edit(doc)
        # Whole or not at all: the world's bootstrapper reads this file while tests run.
        partial = self.config.with_suffix(".partial")
        partial.write_text(yaml.safe_dump(doc, sort_keys=False))
        partial.replace(self.config)
        return self.config

    def run(self, *args: str) -> Result:
        """Run provision in-process with this simulation's environment."""
        result = CliRunner(env=self.env).invoke(cli, list(args))
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Result(result.exit_code, result.stdout, result.stderr)

    def popen(self, *args: str, extra: Mapping[str, str] | None = None,
              cwd: Path | None = None, **options: Any) -> subprocess.Popen[str]:
        """Start provision as a real process (for signals, concurrency, working folders)."""
        streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, **options}
        return subprocess.Popen([sys.executable, "-m", "tests.support.pinned_cli", *args],
                                cwd=cwd or self.root,
                                env=subprocess_env({**self.env, **(extra or {})}),
                                text=True, **streams)

    def run_in(self, cwd: Path, *args: str, timeout: float = 600) -> Result:
        """Run provision as a real process in ``cwd``, as an operator in a shell would."""
        process = self.popen(*args, cwd=cwd, stdin=subprocess.DEVNULL)
        stdout, stderr = process.communicate(timeout=timeout)
        return Result(process.returncode, stdout, stderr)

    def resources(self, type_name: str) -> list[dict[str, Any]]:
        """Records of one resource type in the simulated account."""
        data = Cloud(Path(self.env["DO_SIM_STATE"])).snapshot()
        return list(data.get("resources", {}).get(type_name, {}).values())

    def droplet_names(self) -> list[str]:
        """Sorted names of every droplet in the account."""
        return sorted(d["name"] for d in self.resources("digitalocean_droplet"))

    def claim_floating_ip(self, droplet: str) -> str:
        """Assign the floating IP to ``droplet`` through the API, as its failover agent does."""
        import json
        import urllib.request

        ip = self.resources("digitalocean_reserved_ip")[0]["ip_address"]
        target = next(d["id"] for d in self.resources("digitalocean_droplet")
                      if d["name"] == droplet)
        request = urllib.request.Request(
            f"{self.api.endpoint}reserved_ips/{ip}/actions", method="POST",
            data=json.dumps({"type": "assign", "droplet_id": int(target)}).encode(),
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status in (200, 201), response.status
        return str(ip)

    @property
    def workdir(self) -> Path:
        """The environment's work folder."""
        name = str(yaml.safe_load(self.config.read_text())["name"])
        return self.config.parent / ".provision" / name


@contextmanager
def simulation(tmp_path: Path, extra_env: Mapping[str, str] | None = None,
               projects: Sequence[str] = ("Acme Production",),
               validate: bool = True,
               also_versions: Mapping[str, Path] | None = None) -> Iterator[Simulation]:
    """A running simulation rooted at ``tmp_path``.

    The fake API checks every exchange against DigitalOcean's OpenAPI description; if any
    disagreed, leaving the block fails the test with the list (`validate=False`: not checked).
    ``also_versions``: more releases of the test provider (prepare_plugin_env), e.g. 2.37.0
    for a fleet's global load balancer.
    """
    state = tmp_path / "account.json"
    # Preflight asks the Kubernetes package index whether the release exists: a stand-in.
    with FakeDigitalOcean(state, tokens=TOKEN, validate=validate) as api, \
            package_repositories() as packages:
        records = api.seed(ssh_keys={"ops": generate_ssh_public_key(),
                                     "ci": generate_ssh_public_key()})
        env = prepare_plugin_env(tmp_path / "terraform-sim", token=TOKEN, state_file=state,
                                 projects=list(projects), also_versions=also_versions)
        env.update(api.env())
        env[HOST_ENV] = packages.url
        env["PROVISION_FAILOVER_TOKEN"] = FAILOVER_TOKEN
        env.update(extra_env or {})
        env.pop("PROVISION_TERRAFORM_BIN", None)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        sim = Simulation(tmp_path, api, env, tmp_path / "prod.yaml",
                         [r["fingerprint"] for r in records])
        sim.write_config()
        yield sim
        found = api.violations
        if found:
            raise AssertionError("traffic that DigitalOcean's OpenAPI description rejects:\n"
                                 + "\n".join(f"  {v}" for v in found[:40]))
