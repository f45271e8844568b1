"""The backup agent's S3 requests are signed exactly as botocore signs them.

The agent (provisioner/agents/etcd_backup.py, standard library only) implements AWS
Signature Version 4 itself: AWS General Reference, "Create a signed AWS API request"
(canonical request, string to sign, HMAC-SHA256 key chain ``AWS4<secret>`` -> date ->
region -> service -> ``aws4_request``). botocore is the reference implementation
(botocore 1.44 botocore/auth.py, ``S3SigV4Auth``: S3 paths are not normalised, the payload's
SHA-256 goes in ``X-Amz-Content-SHA256`` and is signed over plain HTTP and, without a
Content-MD5, over HTTPS). moto does not check signatures, so this comparison is what stands
between the agent and a 403 SignatureDoesNotMatch from Spaces.
"""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from provisioner.agents.etcd_backup import Bucket, object_url, sign

WHEN = dt.datetime(2026, 3, 7, 3, 4, 5, tzinfo=dt.UTC)
BUCKET = Bucket(endpoint="https://fra1.digitaloceanspaces.com", region="fra1",
                name="acme-etcd-backups", access_key="DO00EXAMPLEKEY",
                secret_key="s3cr3t/with+odd=chars")


def _botocore(bucket: Bucket, method: str, url: str, body: bytes,
              monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr("botocore.auth.get_current_datetime", lambda: WHEN.replace(tzinfo=None))
    request = AWSRequest(method=method, url=url, data=body)
    S3SigV4Auth(Credentials(bucket.access_key, bucket.secret_key), "s3",
                bucket.region).add_auth(request)
    return str(request.headers["Authorization"])


@pytest.mark.parametrize("endpoint", ["https://fra1.digitaloceanspaces.com",
                                      "http://127.0.0.1:9000"])
@pytest.mark.parametrize(("method", "key", "query", "body"), [
    ("PUT", "production/hourly/20260307T030000Z-prod-cp-1.pbk", None, b"\x00object\xff" * 99),
    ("PUT", "prod.v2/daily/20260307T030000Z-cp_1~a.pbk", None, b""),
    ("DELETE", "production/daily/20260301T030000Z-prod-cp-2.pbk", None, b""),
    ("GET", "", {"list-type": "2", "prefix": "production/hourly/"}, b""),
    ("GET", "", {"list-type": "2", "prefix": "production/daily/",
                 "continuation-token": "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="}, b""),
])
def test_authorization_equals_botocores(endpoint: str, method: str, key: str,
                                        query: dict[str, str] | None, body: bytes,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = Bucket(endpoint, BUCKET.region, BUCKET.name, BUCKET.access_key, BUCKET.secret_key)
    url = object_url(bucket, key, query)
    ours = sign(bucket, method, url, hashlib.sha256(body).hexdigest(), WHEN)
    assert ours["x-amz-date"] == "20260307T030405Z"
    assert ours["authorization"] == _botocore(bucket, method, url, body, monkeypatch)


def test_a_different_secret_gives_a_different_signature(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    """The comparison above can fail: botocore with another secret disagrees."""
    url = object_url(BUCKET, "production/hourly/x.pbk")
    ours = sign(BUCKET, "PUT", url, hashlib.sha256(b"x").hexdigest(), WHEN)
    other = Bucket(BUCKET.endpoint, BUCKET.region, BUCKET.name, BUCKET.access_key, "other")
    assert ours["authorization"] != _botocore(other, "PUT", url, b"x", monkeypatch)
