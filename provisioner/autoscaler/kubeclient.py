"""The Kubernetes API as the autoscaler service uses it: JSON over HTTPS with urllib.

The service runs in a pod that has only the standard library, grpcio and protobuf
(render/autoscaler_code.py), so it speaks to the API server as the Kubernetes
documentation describes for a pod without a client library ("Accessing the Kubernetes API
from a Pod", kubernetes.io/docs/tasks/run-application/access-api-from-pod/): the API
server's address from the ``KUBERNETES_SERVICE_HOST`` and ``KUBERNETES_SERVICE_PORT``
variables the kubelet sets in every container (as client-go's ``rest.InClusterConfig``
reads them, staging/src/k8s.io/client-go/rest/config.go), the pod's service-account token
from ``/var/run/secrets/kubernetes.io/serviceaccount/token`` as a bearer token, and the
cluster's CA from ``ca.crt`` beside it to verify the server. The token file is read for
each request: the kubelet rotates a projected token in place, and client-go re-reads it
too. Outside a cluster (tests) the settings give the same three things explicitly.

Requests are retried after a dropped connection, a 429 or a 5xx (three tries); redirects
are never followed, so the token goes only to the server named. The token is never in a
message, log line or exception.
"""

from __future__ import annotations

import json
import os
import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPException
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")
REQUEST_TIMEOUT = 10.0
ATTEMPTS = 3


class KubeApiError(ProvisionError):
    """The API server refused a request (``status`` > 0) or could not be reached (0)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as an error, the token never sent elsewhere


@dataclass
class KubeApi:
    """One API server: its https URL, the bearer token's file and the CA file."""

    server: str
    token_file: Path
    ca_file: Path
    timeout: float = REQUEST_TIMEOUT
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    def __post_init__(self) -> None:
        self.server = self.server.rstrip("/")
        if not self.server.startswith("https://"):
            raise KubeApiError(f"the Kubernetes API server {self.server!r} is not an https URL "
                               "(the service account token is only sent over TLS)")

    def _token(self) -> str:
        try:
            token = self.token_file.read_text(encoding="utf-8").strip()
        except OSError as error:
            raise KubeApiError(f"cannot read the service account token {self.token_file}: "
                               f"{error.strerror}") from None
        if not token:
            raise KubeApiError(f"the service account token file {self.token_file} is empty")
        return token

    def _context(self) -> ssl.SSLContext:
        try:
            return ssl.create_default_context(cafile=str(self.ca_file))
        except (OSError, ssl.SSLError) as error:
            raise KubeApiError(f"cannot read the cluster CA {self.ca_file}: "
                               f"{getattr(error, 'strerror', None) or error}") from None

    def check(self) -> None:
        """Read the token and the CA now: :class:`KubeApiError` naming the file if either
        is missing, so a pod mounted without them fails at start."""
        self._token()
        self._context()

    def request(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        """One request with retries; the decoded JSON answer, or :class:`KubeApiError`."""
        status, answer, _ = self._exchange(method, path, body)
        if 200 <= status < 300:
            return answer
        raise _refusal(method, path, status, answer)

    def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST a new object. A 409 after a retry is the object an earlier try made (its
        answer lost), since the body names it; the body is returned then."""
        status, answer, retried = self._exchange("POST", path, body)
        if 200 <= status < 300:
            return answer
        if status == 409 and retried:
            return dict(body)
        raise _refusal("POST", path, status, answer)

    def _exchange(self, method: str, path: str, body: Any
                  ) -> tuple[int, dict[str, Any], bool]:
        """The final answer's status and JSON, and whether an earlier try went unanswered
        or failed (so a create may already have been made)."""
        data = None if body is None else json.dumps(body).encode()
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self._context()), _NoRedirect())
        what = f"{method} {path}"
        for attempt in range(1, ATTEMPTS + 1):
            request = urllib.request.Request(
                self.server + path, data=data, method=method,
                headers={"Authorization": f"Bearer {self._token()}",
                         "Accept": "application/json", "Content-Type": "application/json"})
            try:
                with opener.open(request, timeout=self.timeout) as response:
                    status, raw, headers = response.status, response.read(), response.headers
            except urllib.error.HTTPError as error:
                status, raw, headers = error.code, error.read(), error.headers
            except (urllib.error.URLError, HTTPException, OSError) as error:
                if attempt == ATTEMPTS:
                    reason = getattr(error, "reason", None) or type(error).__name__
                    raise KubeApiError(f"{what}: cannot reach the API server {self.server}: "
                                       f"{reason}") from None
                self.sleep(0.5 * attempt)
                continue
            if status in (429, 500, 502, 503, 504) and attempt < ATTEMPTS:
                self.sleep(_retry_after(headers, 0.5 * attempt))
                continue
            return status, _decode(raw), attempt > 1
        raise AssertionError("the loop returns or raises")


def _retry_after(headers: Any, default: float) -> float:
    try:
        return min(max(float(headers.get("Retry-After")), 0.0), 10.0)
    except (TypeError, ValueError):
        return default


def _decode(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw) if raw else {}
    except ValueError:
        data = {}
    return data if isinstance(data, dict) else {}


def _refusal(method: str, path: str, status: int, answer: Mapping[str, Any]) -> KubeApiError:
    message = str(answer.get("message") or answer.get("reason") or "no message")[:300]
    return KubeApiError(f"{method} {path}: {status} {message}", status)


def in_cluster(environ: Mapping[str, str] | None = None,
               account: Path | None = None) -> KubeApi:
    """The API server as a pod sees it (its environment and service account files)."""
    env = os.environ if environ is None else environ
    folder = SERVICE_ACCOUNT if account is None else account
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    if not host or not port:
        raise KubeApiError("not in a pod: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT "
                           "are not set (give kube_api in the settings to run elsewhere)")
    if ":" in host:  # an IPv6 address, bracketed in a URL (client-go: net.JoinHostPort)
        host = f"[{host}]"
    return KubeApi(f"https://{host}:{port}", folder / "token", folder / "ca.crt")
