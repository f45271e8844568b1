"""Requests to the Kubernetes API through the official client, with retries.

Retries 429, 5xx and dropped connections with exponential backoff, honouring Retry-After;
turns 401/403 into a message naming the permission provision lacks. Requests go through
the client's ApiClient (its kubeconfig loading, TLS and auth) with plain JSON in and out:
the typed API classes cost about 0.6 s of imports a command and nothing here needs them.
The client's own urllib3 retries are off (see `client_for`): this layer is the only one,
so a dead endpoint costs `attempts` tries, not `attempts` times urllib3's.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from provisioner.errors import ProvisionError

ATTEMPTS = 6
CONNECTIONS = 32  # kept open to the API server: the appliers (16) and the watches


class KubeError(ProvisionError):
    """The Kubernetes API refused or failed a request."""

    def __init__(self, message: str, status: int = 0, body: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body or {}


class AccessDenied(KubeError):
    """401/403: the credentials lack a permission."""


def client_for(path: Path, context: str | None = None) -> Any:
    """An ApiClient for a kubeconfig file, without urllib3's retries (`Kube` retries).

    Raises the client's ConfigException, OSError or ValueError for an unusable file.
    """
    from kubernetes import client, config

    configuration: Any = client.Configuration()
    loader: Any = config.load_kube_config  # untyped in the client
    loader(config_file=str(path), context=context, client_configuration=configuration)
    configuration.retries = False
    # The client sizes its connection pool by CPU count (5 a core: 10 on a 2-core CI
    # runner). With 16 requests in flight, urllib3 closes the 6 connections the pool cannot
    # keep whenever a burst ends (between apply tiers, before the prune), and the next
    # burst pays 6 new TLS handshakes.
    configuration.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(configuration=configuration)


@dataclass
class Kube:
    """A thin, retrying request layer over ``kubernetes.client.ApiClient``."""

    client: Any
    timeout: float = 30.0
    attempts: int = ATTEMPTS

    def request(self, method: str, path: str, query: list[tuple[str, str]] | None = None,
                body: Any = None, content_type: str = "application/json",
                verb: str = "", accept: str = "application/json") -> dict[str, Any]:
        """One request; the decoded JSON body, or raise KubeError."""
        return _decode(self._send(method, path, query, body, content_type, verb, accept))

    def get_or_none(self, path: str, verb: str = "") -> dict[str, Any] | None:
        """A GET of one object; None when it does not exist (404), KubeError otherwise."""
        try:
            return self.request("GET", path, verb=verb)
        except KubeError as e:
            if e.status == 404:
                return None
            raise

    def text(self, path: str, query: list[tuple[str, str]] | None = None,
             verb: str = "") -> str:
        """A GET whose answer is text (a pod's log), or raise KubeError."""
        data = self._send("GET", path, query, None, "application/json", verb, accept="*/*",
                          attempts=1)
        return data.decode(errors="replace")

    def _send(self, method: str, path: str, query: list[tuple[str, str]] | None, body: Any,
              content_type: str, verb: str, accept: str = "application/json",
              attempts: int | None = None) -> bytes:
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        attempts = attempts or self.attempts

        # The client serialises JSON content types itself; apply patches (YAML) go as text.
        payload = body if body is None or isinstance(body, str) or "json" in content_type \
            else json.dumps(body)
        delay = 0.2
        for attempt in range(1, attempts + 1):
            try:
                args = self.client.param_serialize(
                    method, path, query_params=query or [],
                    header_params={"Content-Type": content_type, "Accept": accept},
                    body=payload, auth_settings=["BearerToken"])
                response = self.client.call_api(*args, _request_timeout=self.timeout)
                response.read()
                status = response.status
                data = response.data or b""
                headers = dict(response.getheaders() or {})
            except ApiException as e:
                if not e.status:  # the client's wording of a transport failure (TLS)
                    raise KubeError(f"{method} {path}: cannot reach the API server: "
                                    f"{str(e.reason or e)[:300]}") from e
                status, data, headers = e.status, (e.body or "").encode(), dict(
                    e.headers or {})
            except (HTTPError, OSError) as e:
                if attempt == attempts:
                    raise KubeError(f"{method} {path}: cannot reach the API server: "
                                    f"{_reason(e)}") from e
                time.sleep(delay + random.uniform(0, delay))
                delay *= 2
                continue
            data = data if isinstance(data, bytes) else str(data).encode()
            if 200 <= status < 300:
                return data
            if status in (429, 500, 502, 503, 504) and attempt < attempts:
                time.sleep(_retry_after(headers, delay))
                delay *= 2
                continue
            raise _error(method, path, status, _decode(data), verb)
        raise AssertionError("unreachable")

    def watch(self, path: str, query: list[tuple[str, str]] | None = None,
              seconds: int = 30, verb: str = "watch") -> Iterator[dict[str, Any]]:
        """The events of one watch request (``{"type", "object"}``) as they arrive.

        Ends when the server closes the watch (after about ``seconds``); raises KubeError,
        and only KubeError, on a refusal, an ERROR event (410 Gone included: the caller
        starts over), a dropped connection or a garbled line.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        query = [*(query or []), ("watch", "true"), ("timeoutSeconds", str(seconds))]
        try:
            args = self.client.param_serialize(
                "GET", path, query_params=query, header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"])
            response = self.client.call_api(*args, _request_timeout=seconds + 10)
        except ApiException as e:
            if not e.status:  # the client's wording of a transport failure (TLS)
                raise KubeError(f"GET {path}: cannot reach the API server: "
                                f"{str(e.reason or e)[:300]}") from e
            raise _error("GET", path, e.status, _decode(e.body or ""), verb) from e
        except (HTTPError, OSError) as e:
            raise KubeError(f"GET {path}: cannot reach the API server: {_reason(e)}") from e
        raw = response.response  # urllib3's response, not yet read: a stream of lines
        try:
            if not 200 <= response.status < 300:
                raise _error("GET", path, response.status, _decode(raw.data or b""), verb)
            pending = b""
            for chunk in raw.stream(amt=None, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield _event(path, line, verb)
            if pending.strip():
                yield _event(path, pending, verb)
        except (HTTPError, OSError) as e:
            raise KubeError(f"GET {path}: the watch broke off: {_reason(e)}") from e
        finally:
            # A watch left early still has a body in flight: close its connection rather
            # than return it to the pool half read.
            raw.close()
            raw.release_conn()


def _event(path: str, line: bytes, verb: str) -> dict[str, Any]:
    try:
        event = json.loads(line)
    except ValueError as e:
        raise KubeError(f"GET {path}: the watch sent something that is not JSON: "
                        f"{line[:200]!r}") from e
    if not isinstance(event, dict):
        raise KubeError(f"GET {path}: the watch sent something that is not an event")
    if event.get("type") == "ERROR":
        status = event.get("object") or {}
        raise _error("GET", path, int(status.get("code") or 0), status, verb)
    return event


def _reason(error: BaseException) -> str:
    # With urllib3's retries off its errors arrive unwrapped; TLS failures come as the
    # client's ApiException with status 0 and are handled where they are caught.
    return f"{type(error).__name__}: {str(error)[:300]}"


def _decode(data: bytes | str) -> dict[str, Any]:
    text = data.decode(errors="replace") if isinstance(data, bytes) else data
    try:
        value = json.loads(text) if text.strip() else {}
    except ValueError:
        return {"message": text[:500]}
    return value if isinstance(value, dict) else {"items": value}


def _retry_after(headers: dict[str, str], default: float) -> float:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return min(float(value), 30.0)
            except ValueError:
                break
    return default + random.uniform(0, default)


def _error(method: str, path: str, status: int, body: dict[str, Any], verb: str) -> KubeError:
    message = str(body.get("message") or body.get("reason") or f"HTTP {status}")
    if status in (401, 403):
        what = verb or f"{method.lower()} {path}"
        hint = ("the credentials were rejected: check the kubeconfig's user" if status == 401
                else f"the kubeconfig's user may not {what}; grant it (e.g. a Role with that "
                     "verb on that resource) or use an admin kubeconfig")
        return AccessDenied(f"{method} {path}: {message} ({hint})", status, body)
    return KubeError(f"{method} {path}: {message}", status, body)
