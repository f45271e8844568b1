"""A fresh bootstrap token for each scale-up, made through the Kubernetes API.

Each IncreaseSize mints its own token, valid one hour: long enough for a droplet to boot
and run ``kubeadm join``, short enough that a user-data leaked from the droplet's metadata
is soon worthless. The Secret is kubeadm's (provisioner/bootstrap/join_credentials.py
``token_secret``: usages signing and authentication, group
system:bootstrappers:kubeadm:default-node-token).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.bootstrap.join_credentials import (
    NAMESPACE,
    NODE_GROUP,
    NODE_USAGES,
    token_secret,
)
from provisioner.bootstrap.pki import new_bootstrap_token
from provisioner.kube import Kube

TTL = dt.timedelta(hours=1)
DESCRIPTION = "provision autoscaler: join token for autoscaled droplets"


def kube_for(kubeconfig: str | None, timeout: float = 10.0) -> Kube:
    """A Kube for a kubeconfig file, or for the pod's service account when None."""
    from provisioner.kube import client_for

    if kubeconfig is not None:
        return Kube(client_for(Path(kubeconfig)), timeout=timeout, attempts=3)
    from kubernetes import client, config

    configuration: Any = client.Configuration()
    loader: Any = config.load_incluster_config  # untyped in the client
    loader(client_configuration=configuration)
    configuration.retries = False
    return Kube(client.ApiClient(configuration=configuration), timeout=timeout, attempts=3)


def mint(kube: Kube) -> str:
    """Create a bootstrap-token Secret in kube-system; the token (``id.secret``)."""
    token = new_bootstrap_token()
    body = token_secret(token, TTL, clock.now(), DESCRIPTION, NODE_USAGES, (NODE_GROUP,))
    kube.request("POST", f"/api/v1/namespaces/{NAMESPACE}/secrets", body=body,
                 verb="create secrets in kube-system")
    return token
