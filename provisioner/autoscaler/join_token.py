"""A fresh bootstrap token for each scale-up, made through the Kubernetes API.

Each IncreaseSize mints its own token, valid one hour: long enough for a droplet to boot
and run ``kubeadm join``, short enough that a user-data leaked from the droplet's metadata
is soon worthless. The Secret is kubeadm's (provisioner/bootstrap/tokens.py
``token_secret``: usages signing and authentication, group
system:bootstrappers:kubeadm:default-node-token).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from provisioner import clock
from provisioner.autoscaler.kubeclient import KubeApi, in_cluster
from provisioner.autoscaler.settings import KubeApiSettings
from provisioner.bootstrap.tokens import (
    NAMESPACE,
    NODE_GROUP,
    NODE_USAGES,
    new_bootstrap_token,
    token_secret,
)

TTL = dt.timedelta(hours=1)
DESCRIPTION = "provision autoscaler: join token for autoscaled droplets"


def kube_for(conf: KubeApiSettings | None) -> KubeApi:
    """The API server the settings name, or the pod's own (service account) when None."""
    if conf is None:
        return in_cluster()
    return KubeApi(conf.server, Path(conf.token_file), Path(conf.ca_file))


def mint(kube: KubeApi) -> str:
    """Create a bootstrap-token Secret in kube-system; the token (``id.secret``)."""
    token = new_bootstrap_token()
    body = token_secret(token, TTL, clock.now(), DESCRIPTION, NODE_USAGES, (NODE_GROUP,))
    kube.create(f"/api/v1/namespaces/{NAMESPACE}/secrets", body)
    return token
