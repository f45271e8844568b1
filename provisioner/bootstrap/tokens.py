"""kubeadm bootstrap tokens and the Secret that holds one, with the standard library only.

The formats are kubeadm's (kubernetes/kubernetes at release-1.36):
staging/src/k8s.io/cluster-bootstrap/token/api/types.go (the Secret type, its
``bootstrap-token-<id>`` name in kube-system, the keys ``token-id``, ``token-secret``,
``description``, ``expiration``, ``usage-bootstrap-<usage>``, ``auth-extra-groups``) and
cmd/kubeadm/app/apis/bootstraptoken/v1/utils.go (encodeTokenSecretData: the expiration
as RFC 3339). Apart from :mod:`provisioner.bootstrap.pki` and
:mod:`provisioner.bootstrap.join_credentials` (which need ``cryptography``) because the
autoscaler service mints a token for each scale-up in a pod that has only the standard
library, grpcio and protobuf (render/autoscaler_code.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import string
from typing import Any

NAMESPACE = "kube-system"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
TOKEN_PREFIX = "bootstrap-token-"
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"
NODE_USAGES = ("signing", "authentication")
_TOKEN_ALPHABET = string.ascii_lowercase + string.digits


def new_bootstrap_token() -> str:
    """A kubeadm bootstrap token, ``[a-z0-9]{6}.[a-z0-9]{16}``."""
    pick = secrets.choice
    return ("".join(pick(_TOKEN_ALPHABET) for _ in range(6)) + "."
            + "".join(pick(_TOKEN_ALPHABET) for _ in range(16)))


def rfc3339(instant: dt.datetime) -> str:
    """``2026-03-07T07:00:00Z``: Go's time.RFC3339 of a UTC instant (whole seconds)."""
    return instant.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def token_secret(token: str, ttl: dt.timedelta, now: dt.datetime, description: str,
                 usages: tuple[str, ...] = (), groups: tuple[str, ...] = ()
                 ) -> dict[str, Any]:
    """The Secret kubeadm stores for a bootstrap token (encodeTokenSecretData)."""
    token_id, secret = token.split(".")
    data = {"token-id": token_id, "token-secret": secret, "description": description,
            "expiration": rfc3339(now + ttl)}
    data.update({f"usage-bootstrap-{usage}": "true" for usage in usages})
    if groups:
        data["auth-extra-groups"] = ",".join(groups)
    return {"apiVersion": "v1", "kind": "Secret", "type": TOKEN_TYPE,
            "metadata": {"name": TOKEN_PREFIX + token_id, "namespace": NAMESPACE},
            "data": {key: _b64(value.encode()) for key, value in data.items()}}
