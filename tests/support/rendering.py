"""Shared helpers: load the examples, render them, and fill late values as Terraform would."""

from __future__ import annotations

import base64
import functools
import gzip
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
