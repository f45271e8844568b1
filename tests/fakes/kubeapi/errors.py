"""API errors as the real server words them: a `Status` body with reason, code and details.

Clients branch on these bodies, not only on the HTTP code: kubectl prints `message` and
`Error from server (<reason>)`, client-go's `IsConflict`/`IsNotFound` read `reason`, and
`kubectl apply --server-side` lists `details.causes` on a field-manager conflict. The
messages below copy the apiserver's wording so that tests asserting on them stay valid.
"""

from __future__ import annotations

from typing import Any

from .catalog import ResourceType


class ApiError(Exception):
    """Raised anywhere in request handling; the server answers with `status()`."""

    def __init__(
        self, code: int, reason: str, message: str, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason,
        }  # fmt: skip
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    return ApiError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    return ApiError(404, "NotFound", f'namespaces "{namespace}" not found',
                    {"name": namespace, "kind": "namespaces"})  # fmt: skip


def already_exists(rt: ResourceType, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists',
                    _details(rt, name))  # fmt: skip


def stale(rt: ResourceType, name: str) -> ApiError:
    """PUT/PATCH with a resourceVersion that is no longer the stored one."""
    return ApiError(
        409, "Conflict",
        f'Operation cannot be fulfilled on {rt.group_resource} "{name}": the object has been '
        "modified; please apply your changes to the latest version and try again",
        _details(rt, name),
    )  # fmt: skip


def invalid(rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 Invalid; causes are (field, reason e.g. FieldValueInvalid, message)."""
    group = f".{rt.group}" if rt.group else ""
    text = "; ".join(f"{field}: {msg}" for field, _, msg in causes)
    details = _details(rt, name)
    details["kind"] = rt.kind
    details["causes"] = [{"reason": r, "message": m, "field": f} for f, r, m in causes]
    return ApiError(422, "Invalid", f'{rt.kind}{group} "{name}" is invalid: {text}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource")  # fmt: skip


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: application/json-patch+json, application/merge-patch+json, '
                    f'application/apply-patch+yaml (got "{content_type}")')  # fmt: skip


def route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource",
                    {})  # fmt: skip


def unauthorized() -> ApiError:
    return ApiError(401, "Unauthorized", "Unauthorized")


def forbidden(
    rt: ResourceType | None, verb: str, name: str, namespace: str, user: str, subresource: str = ""
) -> ApiError:
    """The RBAC denial text: `... is forbidden: User "u" cannot get resource ...`."""
    if rt is None:
        return ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot {verb} path', {})
    resource = f"{rt.plural}/{subresource}" if subresource else rt.plural
    subject = f'{rt.group_resource} "{name}"' if name else rt.group_resource
    where = f' in the namespace "{namespace}"' if namespace else ""
    scope = "" if namespace else " at the cluster scope"
    message = (f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
               f'in API group "{rt.group}"{where}{scope}')  # fmt: skip
    details = _details(rt, name)
    if not name:
        details.pop("name")
    return ApiError(403, "Forbidden", message, details)


def gone(message: str = "too old resource version") -> ApiError:
    return ApiError(410, "Expired", message)
