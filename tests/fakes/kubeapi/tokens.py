"""``POST /api/v1/namespaces/<ns>/serviceaccounts/<name>/token``: the TokenRequest API.

As the Kubernetes API reference describes it (kubernetes.io/docs/reference/kubernetes-api/
authentication-resources/token-request-v1, TokenRequest authentication.k8s.io/v1): the
body is a TokenRequest whose ``spec`` holds ``audiences`` and ``expirationSeconds``; the
answer (201) is the TokenRequest with ``status.token`` (an opaque bearer token) and
``status.expirationTimestamp``. Left out, ``expirationSeconds`` is 3600 and ``audiences``
the API server's own (API reference, TokenRequestSpec: "defaults to 1 hour"; the server's
`--api-audiences`). Less than 10 minutes is refused as invalid (kubernetes/kubernetes
pkg/apis/authentication/validation/validation.go, ValidateTokenRequest: "may not specify
a duration less than 10 minutes"), and so is a service account that does not exist (404).

The fake keeps every request it answered (`issued`, for tests: service account, spec and
token) and, when the server checks tokens, accepts the new token as the service account's
user ``system:serviceaccount:<ns>:<name>``. It does not sign JWTs: the token is opaque.
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Any

from . import errors
from .catalog import ResourceType

API_AUDIENCES = ("https://kubernetes.default.svc.cluster.local",)
DEFAULT_SECONDS = 3600
MIN_SECONDS = 600


@dataclass(frozen=True)
class Issued:
    namespace: str
    service_account: str
    audiences: tuple[str, ...]
    expiration_seconds: int
    token: str


def request_token(rt: ResourceType, namespace: str, name: str, body: Any,
                  exists: bool, now: dt.datetime) -> tuple[dict[str, Any], Issued]:
    """The answer to one TokenRequest, and the record of it."""
    if not exists:
        raise errors.not_found(rt, name)
    if not isinstance(body, dict) or body.get("kind", "TokenRequest") != "TokenRequest":
        raise errors.bad_request("the body must be an authentication.k8s.io/v1 TokenRequest")
    spec = body.get("spec") or {}
    seconds = spec.get("expirationSeconds", DEFAULT_SECONDS)
    if not isinstance(seconds, int) or seconds < MIN_SECONDS:
        raise errors.invalid(rt, name, [("FieldValueInvalid", "spec.expirationSeconds",
                                         "may not specify a duration less than 10 minutes")])
    audiences = tuple(spec.get("audiences") or API_AUDIENCES)
    token = "fake-sa-" + secrets.token_urlsafe(24)
    expires = (now + dt.timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    answer = {"kind": "TokenRequest", "apiVersion": "authentication.k8s.io/v1",
              "metadata": {"name": name, "namespace": namespace,
                           "creationTimestamp": now.strftime("%Y-%m-%dT%H:%M:%SZ")},
              "spec": {"audiences": list(audiences), "expirationSeconds": seconds,
                       "boundObjectRef": spec.get("boundObjectRef")},
              "status": {"token": token, "expirationTimestamp": expires}}
    return answer, Issued(namespace, name, audiences, seconds, token)
