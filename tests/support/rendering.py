"""Shared helpers: load the examples, render them, and fill late values as Terraform would."""

from __future__ import annotations

import base64
import functools
import gzip
import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.bootstrap.pki import (
    ClusterSecrets,
    new_bootstrap_token,
    new_ca,
    new_certificate_key,
    new_shared_keys,
)
from provisioner.config import Environment, load_environment
from provisioner.render import render_environment
from provisioner.render.markers import join, segments

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DATA = ROOT / "tests" / "data"

# The id Terraform would give the environment's VPC (a UUID, as DigitalOcean's are).
VPC_ID = "5a4a8f0e-7b0c-4c2e-9d1e-0c8f6a2b3c4d"
# What the node's bootstrap script fills in from the metadata service at boot.
NODE_VALUES = {"__PRIVATE_IPV4__": "10.10.0.5", "__DROPLET_ID__": "424242"}


def example_document(name: str) -> dict[str, Any]:
    """An example as a YAML document to edit, without its ``backups:`` section: backups
    need a Spaces bucket and key (`up` and `plan` check both), so whole-command tests that
    are not about backups run without; tests of backups add their own (a fake S3)."""
    import yaml

    doc: dict[str, Any] = yaml.safe_load((ROOT / "examples" / f"{name}.yaml").read_text())
    doc.pop("backups", None)
    return doc


@functools.cache
def example(name: str) -> Environment:
    """An example environment by file stem (``production``, ``staging``)."""
    return load_environment(ROOT / "examples" / f"{name}.yaml")


@functools.cache
def rendered(name: str) -> dict[str, str]:
    """The rendered files of an example."""
    return render_environment(example(name))


@functools.cache
def sample_secrets() -> ClusterSecrets:
    """Real, freshly generated cluster secrets (one set per test session)."""
    crt, key = new_ca("test")
    return ClusterSecrets(crt, key, new_bootstrap_token(), new_certificate_key(),
                          new_shared_keys("test"))


def late_values(endpoint: str = "203.0.113.10") -> dict[str, str]:
    """Every value Terraform would splice into user-data."""
    return {"api_endpoint": endpoint, "vpc_id": VPC_ID, "failover_token": "dop_v1_" + "f" * 64,
            **sample_secrets().terraform_values()}


def materialize(text: str, boot: bool = False) -> str:
    """User-data as the droplet receives it; with ``boot``, also the node's own values."""
    result = join(segments(text), late_values())
    if boot:
        for placeholder, value in NODE_VALUES.items():
            result = result.replace(placeholder, value)
    return result


def written(item: dict[str, Any]) -> str:
    """A cloud-init write_files entry's content as cloud-init writes it to the node: it
    decodes ``encoding: gz+b64`` (cloudinit/config/cc_write_files.py, ``extract_contents``),
    as the scripts and agents are shipped."""
    content = str(item.get("content", ""))
    if item.get("encoding") == "gz+b64":
        content = gzip.decompress(base64.b64decode(content)).decode()
    return content


BOOTSTRAP = "/usr/local/sbin/provision-bootstrap"
_UNPACK = re.compile(r"^unpack_bundle\(\) \{\n(.*?)^\}", re.M | re.S)


@dataclass(frozen=True)
class NodeFile:
    """A file as it lands on the node: its text and permission bits."""

    content: str
    mode: int


def unpack_command(bootstrap: str) -> list[str]:
    """The bootstrap script's own command that unpacks the bundle (its ``unpack_bundle``
    function: one command, comments and line continuations aside)."""
    found = _UNPACK.search(bootstrap)
    assert found, "the bootstrap script has no unpack_bundle function"
    lines = [line for line in found.group(1).splitlines()
             if line.strip() and not line.strip().startswith("#")]
    argv = shlex.split(" ".join(line.rstrip("\\") for line in lines))
    assert argv[0] == "tar" and argv[-4:] == ["--file", "$BUNDLE", "--directory", "/"], argv
    return argv


def on_node(config: dict[str, Any]) -> dict[str, NodeFile]:
    """path -> every file a role's (materialized) user-data puts on the node, as the node
    gets it: each ``write_files`` entry as cloud-init writes it (``written``, mode from
    ``permissions``), then the bundle (``encoding: b64``, cloud-init's base64 decoding in
    cc_write_files.py ``extract_contents``) unpacked exactly as the bootstrap script does:
    its own tar command line, taken from the rendered script and run here with a temporary
    directory in place of ``/``. Modes are read back from the unpacked files. The archive
    itself is left out (the node keeps it only to unpack it)."""
    entries = {str(f["path"]): f for f in config["write_files"]}
    script = written(entries[BOOTSTRAP])
    bundle_path = re.search(r"^readonly BUNDLE=(\S+)$", script, re.M)
    assert bundle_path, "the bootstrap script names no bundle"
    bundle = entries.pop(shlex.split(bundle_path.group(1))[0])
    assert bundle.get("encoding") == "b64", bundle.get("encoding")
    files = {path: NodeFile(written(item), int(str(item.get("permissions", "0644")), 8))
             for path, item in entries.items()}
    with tempfile.TemporaryDirectory() as tmp:
        archive, root = Path(tmp) / "bundle", Path(tmp) / "root"
        archive.write_bytes(base64.b64decode(str(bundle["content"])))
        root.mkdir()
        argv = unpack_command(script)
        argv[-3], argv[-1] = str(archive), str(root)
        subprocess.run(argv, check=True, capture_output=True, timeout=60)
        for folder, _, names in os.walk(root):
            for name in names:
                path = Path(folder) / name
                target = "/" + str(path.relative_to(root))
                assert target not in files, f"{target} is both written and unpacked"
                files[target] = NodeFile(path.read_text(encoding="utf-8"),
                                         path.stat().st_mode & 0o7777)
    return files


def set_workers(pool: dict[str, Any], count: int) -> None:
    """Give a pool of an example document ``count`` Terraform-owned workers.

    An autoscaled pool (production's ``general``) has no ``count`` (the file refuses it
    beside ``autoscale``): its floor, ``autoscale.min``, is what Terraform runs.
    """
    scaling = pool.get("autoscale")
    if scaling is None:
        pool["count"] = count
    else:
        scaling.update(min=count, max=max(int(scaling["max"]), count + 1))


def workers(pool: dict[str, Any]) -> int:
    """The Terraform-owned workers of a pool of an example document."""
    return int(pool["autoscale"]["min"] if "autoscale" in pool else pool["count"])
