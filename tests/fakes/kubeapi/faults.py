"""Fault injection rules: RBAC-style denials (401/403) and transient errors (429/5xx).

Both match a request by its Kubernetes verb (get, list, watch, create, update, patch,
delete, deletecollection) and resource (plural, or plural/subresource); None or "*"
matches anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_REASONS = {
    429: ("TooManyRequests", "the server has received too many requests and has asked us to "
          "try again later"),
    500: ("InternalError", "an error on the server has prevented the request from succeeding"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: ("Timeout", "the server was unable to return a response in the time allotted, but may "
          "still be processing the request"),
}  # fmt: skip


def _matches(rule_resource: str | None, resource: str) -> bool:
    return rule_resource in (None, "*", resource) or rule_resource == resource.split("/")[0]


@dataclass(frozen=True)
class Denial:
    """A deny rule: requests matching every given field get `code` (403, or 401).

    `resource` "deployments" also covers its subresources (deployments/scale...), unlike
    RBAC; name a subresource ("deployments/status") to deny only that.
    """

    verb: str = "*"
    resource: str = "*"  # "deployments", "deployments/scale", "*"
    namespace: str | None = None
    name: str | None = None
    code: int = 403

    def matches(self, verb: str, resource: str, namespace: str, name: str) -> bool:
        return (
            self.verb in ("*", verb)
            and _matches(self.resource, resource)
            and self.namespace in (None, namespace)
            and self.name in (None, name)
        )


@dataclass
class Injection:
    """The next `count` matching requests get `status` instead of their answer."""

    status: int
    count: int = 1
    verb: str | None = None
    resource: str | None = None
    retry_after: int | None = None

    def matches(self, verb: str, resource: str) -> bool:
        return self.verb in (None, "*", verb) and _matches(self.resource, resource)

    def status_body(self) -> dict[str, Any]:
        reason, message = _REASONS.get(self.status, ("InternalError", f"injected {self.status}"))
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {},
                                "status": "Failure", "message": message, "reason": reason}
        if self.retry_after is not None:
            body["details"] = {"retryAfterSeconds": self.retry_after}
        body["code"] = self.status
        return body  # fmt: skip

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
