"""CertificateSigningRequest (certificates.k8s.io/v1): what the API server does to one.

As kubernetes/kubernetes pkg/registry/certificates/certificates/strategy.go does it:

* create (``PrepareForCreate``): whatever the client wrote, ``spec.username``, ``uid`` and
  ``groups`` are the authenticated requester's, and the status starts empty ("users cannot
  create pre-approved certificate requests");
* update of the object itself: spec and status stay as stored (only metadata changes);
* the ``approval`` subresource: spec stays, the status stays except its conditions, which
  are the ones sent (an approver adds ``Approved`` or ``Denied``);
* the ``status`` subresource: spec and conditions stay (the signer writes the
  certificate).

Validation (pkg/apis/certificates/validation): ``request`` must be a PEM certificate
request whose signature verifies, ``signerName`` is required in v1, and a request cannot
be both approved and denied. The fake authenticates users by name only; the groups it
records are the ones the real requester's client certificate carries: ``system:nodes``
for ``system:node:<name>`` (the kubelet's certificate, O=system:nodes) and
``kubeadm:cluster-admins`` for ``kubernetes-admin`` (kubeadm's admin.conf),
``system:bootstrappers`` and kubeadm's node token group for ``system:bootstrap:<id>`` (a
node bootstrap token: bootstrap.py), plus ``system:authenticated`` for everyone.
"""

from __future__ import annotations

import base64
import copy
from typing import Any

from . import catalog
from .errors import invalid

KIND = "CertificateSigningRequest"


def groups_of(user: str) -> list[str]:
    """The groups the fake's user would have on a kubeadm cluster."""
    groups = []
    if user.startswith("system:node:"):
        groups.append("system:nodes")
    if user == "kubernetes-admin":
        groups.append("kubeadm:cluster-admins")
    if user.startswith("system:bootstrap:"):  # a node bootstrap token (bootstrap.py)
        groups += ["system:bootstrappers", "system:bootstrappers:kubeadm:default-node-token"]
    return [*groups, "system:authenticated"]


def prepare_create(obj: dict[str, Any], user: str) -> dict[str, Any]:
    """The requester's identity in the spec, an empty status; then validated."""
    new = copy.deepcopy(obj)
    spec = new.setdefault("spec", {})
    for key in ("username", "uid", "groups", "extra"):
        spec.pop(key, None)
    spec["username"] = user
    spec["groups"] = groups_of(user)
    new["status"] = {}
    _validate(new)
    return new


def prepare_update(old: dict[str, Any], new: dict[str, Any], subresource: str) -> dict[str, Any]:
    """What an update of the object, its ``approval`` or its ``status`` may change."""
    result = copy.deepcopy(new)
    result["spec"] = copy.deepcopy(old.get("spec", {}))
    status = copy.deepcopy(old.get("status") or {})
    if subresource == "approval":
        conditions = (new.get("status") or {}).get("conditions") or []
        status["conditions"] = copy.deepcopy(conditions)
        if not conditions:
            status.pop("conditions", None)
    elif subresource == "status":
        status = copy.deepcopy(new.get("status") or {})
        old_conditions = (old.get("status") or {}).get("conditions")
        status.pop("conditions", None)
        if old_conditions:
            status["conditions"] = copy.deepcopy(old_conditions)
    result["status"] = status
    _validate(result)
    return result


def _validate(obj: dict[str, Any]) -> None:
    from cryptography import x509

    rt = catalog.get("certificates.k8s.io/v1", KIND)
    name = str(obj.get("metadata", {}).get("name", ""))
    spec = obj.get("spec") or {}
    if not spec.get("signerName"):
        raise invalid(rt, name, [("spec.signerName", "FieldValueRequired", "Required value")])
    try:
        pem = base64.b64decode(spec.get("request") or "", validate=True)
        request = x509.load_pem_x509_csr(pem)
        valid = request.is_signature_valid
    except ValueError:
        valid = False
    if not valid:
        raise invalid(rt, name, [("spec.request", "FieldValueInvalid", "Invalid value: "
                                    "\"<binary>\": PEM block type must be CERTIFICATE "
                                    "REQUEST")])
    types = {c.get("type") for c in (obj.get("status") or {}).get("conditions") or []}
    if {"Approved", "Denied"} <= types:
        raise invalid(rt, name, [("status.conditions", "FieldValueInvalid", "Approved and "
                                    "Denied conditions are mutually exclusive")])
