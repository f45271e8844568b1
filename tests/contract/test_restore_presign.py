"""The restore's presigned GET URL is, byte for byte, the URL botocore's presigner makes.

provision signs the URL itself (provisioner/cloud/presign.py, from AWS's "Authenticating
Requests: Using Query Parameters (AWS Signature Version 4)"). botocore 1.44 is the reference
implementation: botocore/signers.py ``RequestSigner.generate_presigned_url`` with signature
version ``s3v4-query``, i.e. botocore/auth.py ``S3SigV4QueryAuth`` (``X-Amz-*`` parameters
in that order, the payload ``UNSIGNED-PAYLOAD``, S3 paths not normalised). moto does not
check signatures, so this comparison is what stands between the restoring node and a 403
SignatureDoesNotMatch from Spaces. The clock is pinned: the date is part of the signature.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from provisioner.cloud.presign import presigned_get

WHEN = dt.datetime(2026, 3, 7, 3, 4, 5, tzinfo=dt.UTC)
ACCESS, SECRET = "DO00EXAMPLEKEY", "s3cr3t/with+odd=chars"


def _botocore(endpoint: str, bucket: str, key: str, secret: str, expires: int,
              monkeypatch: pytest.MonkeyPatch) -> str:
    """botocore's presigner (what ``generate_presigned_url`` runs for ``s3v4-query``)."""
    monkeypatch.setattr("botocore.auth.get_current_datetime",
                        lambda: WHEN.replace(tzinfo=None))
    request = AWSRequest(method="GET", url=f"{endpoint}/{bucket}/{quote(key, safe='/-_.~')}")
    S3SigV4QueryAuth(Credentials(ACCESS, secret), "s3", "us-east-1",
                     expires=expires).add_auth(request)
    return str(request.url)


@pytest.mark.parametrize("endpoint", ["https://fra1.digitaloceanspaces.com",
                                      "http://127.0.0.1:9000"])
@pytest.mark.parametrize(("bucket", "key", "expires"), [
    ("acme-etcd-backups", "production/restore/20260307T030000Z-prod-cp-1-3f9a.db.enc", 7200),
    ("acme-etcd-backups", "prod.v2/restore/20260307T030000Z-cp_1~a-00ff.db.enc", 1),
    ("b", "a b/c+d=e.db.enc", 604800),
])
def test_url_equals_botocores(endpoint: str, bucket: str, key: str, expires: int,
                              monkeypatch: pytest.MonkeyPatch) -> None:
    ours = presigned_get(endpoint, bucket, key, ACCESS, SECRET, WHEN, expires)
    assert "X-Amz-Date=20260307T030405Z" in ours
    assert ours == _botocore(endpoint, bucket, key, SECRET, expires, monkeypatch)


def test_a_different_secret_gives_a_different_url(monkeypatch: pytest.MonkeyPatch) -> None:
    """The comparison above can fail: botocore with another secret disagrees."""
    key = "production/restore/x.db.enc"
    ours = presigned_get("https://fra1.digitaloceanspaces.com", "b", key, ACCESS, SECRET, WHEN,
                         7200)
    assert ours != _botocore("https://fra1.digitaloceanspaces.com", "b", key, "other", 7200,
                             monkeypatch)


def test_expiry_beyond_seven_days_is_refused() -> None:
    with pytest.raises(ValueError, match="1 to 604800"):
        presigned_get("https://x", "b", "k", ACCESS, SECRET, WHEN, 604801)
