"""A presigned GET URL for one object in a Spaces bucket (AWS SigV4, query-string auth).

The restoring control-plane node downloads the staged snapshot copy with `curl` and nothing
else: no Spaces key may reach its user-data, so the URL itself carries the authorisation,
valid for ``expires`` seconds. Written from AWS's "Authenticating Requests: Using Query
Parameters (AWS Signature Version 4)" (Amazon S3 API reference): the canonical request is
the method, the path encoded once (S3 paths are not normalised), the canonical query string
(every parameter but ``X-Amz-Signature``, sorted, RFC 3986 encoded), ``host:<host>``, the
signed headers ``host`` and the payload hash ``UNSIGNED-PAYLOAD``; the signing key is the
HMAC-SHA256 chain ``AWS4<secret>`` -> date -> region -> ``s3`` -> ``aws4_request``.
tests/contract/test_restore_presign.py checks every byte against botocore's presigner.

The region is the signing region the S3 client uses for Spaces (cloud/spaces.py
``s3_client``: ``us-east-1`` whatever the datacenter, which is in the endpoint).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.parse

ALGORITHM = "AWS4-HMAC-SHA256"
SIGNING_REGION = "us-east-1"
MAX_EXPIRES = 7 * 24 * 3600  # SigV4 presigned URLs are valid for at most seven days


def _quote(text: str, safe: str = "-_.~") -> str:
    return urllib.parse.quote(text, safe=safe)


def presigned_get(endpoint: str, bucket: str, key: str, access_key: str, secret_key: str,
                  when: dt.datetime, expires: int, region: str = SIGNING_REGION) -> str:
    """Path-style ``GET <endpoint>/<bucket>/<key>?X-Amz-...`` valid from ``when`` for
    ``expires`` seconds."""
    if not 1 <= expires <= MAX_EXPIRES:
        raise ValueError(f"a presigned URL lasts 1 to {MAX_EXPIRES} s, not {expires}")
    parts = urllib.parse.urlsplit(endpoint.rstrip("/"))
    host = parts.hostname or ""
    if parts.port and parts.port != {"http": 80, "https": 443}.get(parts.scheme):
        host = f"{host}:{parts.port}"
    path = f"{parts.path}/{bucket}/{_quote(key, '/-_.~')}"
    amz_date = when.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    scope = f"{amz_date[:8]}/{region}/s3/aws4_request"
    params = {"X-Amz-Algorithm": ALGORITHM, "X-Amz-Credential": f"{access_key}/{scope}",
              "X-Amz-Date": amz_date, "X-Amz-Expires": str(expires),
              "X-Amz-SignedHeaders": "host"}
    query = "&".join(f"{_quote(k)}={_quote(v)}" for k, v in params.items())
    canonical_query = "&".join(sorted(f"{_quote(k)}={_quote(v)}" for k, v in params.items()))
    canonical = "\n".join(["GET", path, canonical_query, f"host:{host}\n", "host",
                           "UNSIGNED-PAYLOAD"])
    to_sign = "\n".join([ALGORITHM, amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    signing_key = ("AWS4" + secret_key).encode()
    for part in (amz_date[:8], region, "s3", "aws4_request"):
        signing_key = hmac.new(signing_key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(signing_key, to_sign.encode(), hashlib.sha256).hexdigest()
    return f"{parts.scheme}://{parts.netloc}{path}?{query}&X-Amz-Signature={signature}"
