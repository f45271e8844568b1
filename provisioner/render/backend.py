"""terraform/backend.tf.json: where Terraform keeps state, written as JSON, not templated."""

from __future__ import annotations

import json
from typing import Any

from provisioner.config.model import Environment

# Relative to the module folder: the work folder's state/, which provision keeps at 0700.
LOCAL_STATE = "../state/terraform.tfstate"


def spaces_location(env: Environment) -> tuple[str, str, str]:
    """(endpoint, bucket, state key) of a ``spaces`` state, as the backend block uses them."""
    state = env.state
    endpoint = state.endpoint or f"https://{state.region}.digitaloceanspaces.com"
    return endpoint, str(state.bucket), state.key or f"{env.name}/terraform.tfstate"


def backend(env: Environment) -> dict[str, Any]:
    """The ``terraform { backend ... }`` block for the environment's state setting."""
    if env.state.backend == "local":
        return {"terraform": {"backend": {"local": {"path": LOCAL_STATE}}}}
    endpoint, bucket, key = spaces_location(env)
    return {"terraform": {"backend": {"s3": {
        "bucket": bucket,
        "key": key,
        # Spaces ignores the signing region; the S3 client only needs a valid one.
        "region": "us-east-1",
        "endpoints": {"s3": endpoint},
        # S3-native lock file (Terraform >= 1.10): no DynamoDB, which Spaces does not have.
        "use_lockfile": True,
        "skip_credentials_validation": True,
        "skip_region_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        "skip_s3_checksum": True,
        # Spaces serves both styles; path style also works with endpoints that have no
        # wildcard DNS (a self-hosted S3, a test double).
        "use_path_style": True,
    }}}}


def dumps(env: Environment) -> str:
    """Stable JSON text of the backend block."""
    return json.dumps(backend(env), indent=2, sort_keys=True) + "\n"
