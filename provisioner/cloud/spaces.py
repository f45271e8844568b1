"""Objects beside the environment's Terraform state in its Spaces bucket (S3 API, boto3).

Terraform reaches the bucket itself for the state; provision reads and writes only its own
objects next to it (the sealed cluster secrets), with the same credentials and endpoint the
backend uses (render/backend.py), so whoever can run Terraform on the state can run this.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from provisioner.config.model import Environment
from provisioner.errors import ProvisionError, UsageError
from provisioner.render.backend import spaces_location

# Beside `<key>` (the state) and `<key>.tflock` (Terraform's lock object).
SECRETS_SUFFIX = ".provision-secrets"


def credentials(purpose: str = "state.backend is spaces") -> tuple[str, str]:
    """The Spaces key pair: SPACES_* (doctl's names) or the AWS_* ones."""
    access = os.environ.get("SPACES_ACCESS_KEY_ID") or os.environ.get("AWS_ACCESS_KEY_ID")
    secret = (os.environ.get("SPACES_SECRET_ACCESS_KEY")
              or os.environ.get("AWS_SECRET_ACCESS_KEY"))
    if not access or not secret:
        raise UsageError(f"{purpose} but no Spaces key is set: export "
                         "SPACES_ACCESS_KEY_ID and SPACES_SECRET_ACCESS_KEY")
    return access, secret


def s3_client(endpoint: str, access: str, secret: str) -> Any:
    """A boto3 S3 client for Spaces (imports boto3 only here)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=access, aws_secret_access_key=secret,
        config=Config(
            # As the backend: path style, and no flexible checksums (Spaces rejects
            # the aws-chunked trailers newer clients send by default).
            s3={"addressing_style": "path"},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            retries={"max_attempts": 4, "mode": "standard"},
            connect_timeout=10, read_timeout=30))


class SpacesError(ProvisionError):
    """The bucket could not be read or written (exit 1: a cloud failure)."""


@dataclass
class StateBucket:
    """The environment's state bucket, for the objects provision keeps beside the state."""

    endpoint: str
    bucket: str
    state_key: str
    _client: Any = field(default=None, repr=False)

    @classmethod
    def of(cls, env: Environment) -> StateBucket:
        endpoint, bucket, key = spaces_location(env)
        return cls(endpoint, bucket, key)

    @property
    def secrets_key(self) -> str:
        return self.state_key + SECRETS_SUFFIX

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def client(self) -> Any:
        if self._client is None:
            access, secret = credentials()
            self._client = s3_client(self.endpoint, access, secret)
        return self._client

    def get(self, key: str) -> bytes | None:
        """An object's bytes, or None if there is none."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client().get_object(Bucket=self.bucket, Key=key)
            body: bytes = response["Body"].read()
        except ClientError as e:
            if code_of(e) in ("NoSuchKey", "404"):
                return None
            raise SpacesError(f"cannot read {self.url(key)}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot read {self.url(key)}: {e}") from e
        return body

    def put(self, key: str, body: bytes, only_if_absent: bool = False) -> bool:
        """Write an object; with ``only_if_absent``, False if another writer got there first.

        ``If-None-Match: *`` is what Terraform's own lock object relies on (``use_lockfile``,
        which render/backend.py turns on), so any bucket the state can live in honours it.
        """
        from botocore.exceptions import BotoCoreError, ClientError

        extra = {"IfNoneMatch": "*"} if only_if_absent else {}
        try:
            self.client().put_object(Bucket=self.bucket, Key=key, Body=body,
                                     ContentType="application/json", ACL="private", **extra)
        except ClientError as e:
            if only_if_absent and code_of(e) in ("PreconditionFailed", "412",
                                              "ConditionalRequestConflict"):
                return False
            raise SpacesError(f"cannot write {self.url(key)}: {describe(e)}") from e
        except BotoCoreError as e:
            raise SpacesError(f"cannot write {self.url(key)}: {e}") from e
        return True

    def state_has_resources(self) -> bool:
        """Whether the Terraform state in the bucket records any resource."""
        body = self.get(self.state_key)
        return body is not None and state_text_has_resources(body)


def state_text_has_resources(body: bytes) -> bool:
    """Whether a Terraform state document lists resources (unreadable: assume it does)."""
    try:
        doc = json.loads(body)
    except ValueError:
        return True
    return not isinstance(doc, dict) or bool(doc.get("resources"))


def code_of(error: Any) -> str:
    """An S3 error's code (``NoSuchKey``, ``404``...)."""
    return str(error.response.get("Error", {}).get("Code", ""))


def describe(error: Any) -> str:
    """An S3 error in one line: code and message."""
    info = error.response.get("Error", {})
    status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", "")
    return f"{info.get('Code') or status} {info.get('Message') or ''}".strip()
