"""`provision rotate`: renew what expires or leaks on a running cluster, droplets untouched.

Three things, each through the Kubernetes API:

* ``cloud-token``: the DigitalOcean token the cloud controller manager and the CSI driver
  use, Secret kube-system/digitalocean, from the current DIGITALOCEAN_TOKEN (checked with
  the API first: a rejected token would stop load balancers and volumes). Both read it as
  an environment variable from the Secret, which a running container never sees change
  (Kubernetes docs, "Secrets": environment variables are not updated after a Secret
  update), so their pods are restarted the way ``kubectl rollout restart`` does it.
* ``failover-token``: the failover agents' token, Secret kube-system/provision-failover
  (key ``token``), from PROVISION_FAILOVER_TOKEN, checked with the API first (a read of the
  reserved IPs, which its custom scopes allow). On its timer each agent tries a changed
  value against the API, adopts it only if accepted, and publishes the fingerprint of the
  token it runs with on its Node (``provision.dev/failover-token``); rotate waits until
  every control-plane node's fingerprint is the new token's and names those whose is not.
  Only with ``endpoint: floating_ip`` (no agent otherwise).
* ``join-credentials``: a fresh bootstrap token and certificate key
  (provisioner.bootstrap.join_credentials.refresh), for nodes that join later.

Token values are never printed: messages name the Secret, not what it holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from provisioner import clock
from provisioner.agents.failover import ANNOTATION_TOKEN, TOKEN_SECRET, fingerprint
from provisioner.analysis.live import timer_period
from provisioner.errors import UsageError
from provisioner.kube import Kube, KubeError
from provisioner.node_facts import CONTROL_PLANE_LABEL
from provisioner.pipeline.prepare import Prepared

Say = Callable[[str], None]

CLOUD_TOKEN = "cloud-token"
FAILOVER_TOKEN = "failover-token"
JOIN_CREDENTIALS = "join-credentials"
KINDS = (CLOUD_TOKEN, FAILOVER_TOKEN, JOIN_CREDENTIALS)

# Five of the agent's timer periods leave room for a pass that was already running and a
# slow API. Resolved when rotate runs (`confirm_wait`), not at import: the CLI imports this
# module to register its commands, and a template that cannot be read must fail rotate
# alone, with an error, not every command with a traceback.
CONFIRM_PERIODS = 5
POLL = 2.0

# What reads kube-system/digitalocean as an environment variable (the pinned manifests:
# digitalocean-cloud-controller-manager releases/.../v0.1.68.yml, env DO_ACCESS_TOKEN;
# csi-digitalocean deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml, the
# csi-do-controller StatefulSet's DIGITALOCEAN_ACCESS_TOKEN; its node DaemonSet reads none).
TOKEN_READERS = (("deployments", "digitalocean-cloud-controller-manager"),
                 ("statefulsets", "csi-do-controller"))
# What `kubectl rollout restart` sets on the pod template (kubectl
# pkg/polymorphichelpers/objectrestarter.go): a changed template rolls the pods.
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"

def confirm_wait() -> float:
    """Rotate's default wait for the agents: five periods of their timer."""
    return CONFIRM_PERIODS * timer_period()


@dataclass
class Rotated:
    """What a rotation did, and which nodes did not confirm."""

    done: list[str] = field(default_factory=list)
    unconfirmed: list[str] = field(default_factory=list)


def chosen(env_endpoint: str, asked: Sequence[str]) -> list[str]:
    """The kinds to rotate: those asked for, or every one that applies.

    The failover token applies only with a floating IP; asking for it otherwise is a
    mistake worth saying, not a silent no-op.
    """
    floating = env_endpoint == "floating_ip"
    if not asked:
        return [k for k in KINDS if floating or k != FAILOVER_TOKEN]
    if FAILOVER_TOKEN in asked and not floating:
        raise UsageError(f"--only {FAILOVER_TOKEN}: this environment's API endpoint is a "
                         f"{env_endpoint.replace('_', ' ')}, which runs no failover agent; "
                         "leave it out")
    return [k for k in KINDS if k in asked]


def _apply_secret(kube: Kube, name: str, data: dict[str, str]) -> None:
    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": name, "namespace": "kube-system",
                         "labels": {"app.kubernetes.io/managed-by": "provision"}},
            "stringData": data}
    kube.request("PATCH", f"/api/v1/namespaces/kube-system/secrets/{name}",
                 [("fieldManager", "provision"), ("force", "true")], json.dumps(body),
                 "application/apply-patch+yaml", verb="patch secrets in kube-system")


def restart_token_readers(kube: Kube, say: Say) -> list[str]:
    """Roll the pods that read the cloud token; the names restarted (absent ones noted)."""
    stamp = clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
    restarted = []
    for resource, name in TOKEN_READERS:
        try:
            kube.request("PATCH", f"/apis/apps/v1/namespaces/kube-system/{resource}/{name}",
                         None, patch, "application/strategic-merge-patch+json",
                         verb=f"patch {resource} in kube-system")
        except KubeError as e:
            if e.status != 404:
                raise
            say(f"  {resource[:-1]} kube-system/{name} not found: nothing to restart")
            continue
        restarted.append(name)
    return restarted


def rotate_cloud_token(kube: Kube, token: str, say: Say) -> None:
    """Store ``token`` in kube-system/digitalocean and restart its readers."""
    from provisioner.cloud.account import check_token

    check_token(token, "DIGITALOCEAN_TOKEN")
    from provisioner.pipeline.cluster_stage import DO_SECRET

    _apply_secret(kube, DO_SECRET, {"access-token": token})
    restarted = restart_token_readers(kube, say)
    say(f"cloud token: kube-system/{DO_SECRET} updated"
        + (f"; restarted {', '.join(restarted)}" if restarted else ""))


def check_failover_token(token: str) -> None:
    """Raise TokenRejected unless the API accepts the agents' token for what they read.

    GET /v2/reserved_ips (reserved_ip:read, one of the token's custom scopes; /v2/account
    would need account:read, which it lacks). python-digitalocean's client follows
    DIGITALOCEAN_END_POINT, as every other call of provision.
    """
    import os

    import digitalocean

    from provisioner.cloud.preflight import TokenRejected, read

    os.environ.setdefault("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "30")
    manager = digitalocean.Manager(token=token)
    try:
        read("the reserved IPs",
             lambda: manager.get_data("reserved_ips", params={"per_page": 1, "page": 1}))
    except TokenRejected:
        raise TokenRejected("the DigitalOcean API rejects the token in PROVISION_FAILOVER_TOKEN "
                            "(401): nothing was changed; export a valid token (custom scopes "
                            "reserved_ip:read, reserved_ip:update, droplet:read)") from None


def _controller_tokens(kube: Kube) -> dict[str, str | None]:
    """Control-plane node name -> the fingerprint its agent says it runs with."""
    items = kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []
    found = {}
    for item in items:
        meta = item.get("metadata") or {}
        if CONTROL_PLANE_LABEL in (meta.get("labels") or {}):
            found[str(meta.get("name"))] = (meta.get("annotations") or {}).get(ANNOTATION_TOKEN)
    return dict(sorted(found.items()))


def wait_confirmed(kube: Kube, token: str, deadline: float, poll: float = POLL) -> list[str]:
    """Control-plane nodes whose agent does not run with ``token`` by ``deadline``."""
    wanted = fingerprint(token)
    while True:
        pending = [name for name, seen in _controller_tokens(kube).items() if seen != wanted]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(poll)


def rotate_failover_token(kube: Kube, token: str, wait: float, say: Say,
                          poll: float = POLL) -> list[str]:
    """Store the agents' token and wait for them; the nodes that did not take it."""
    namespace, secret, key = TOKEN_SECRET
    _apply_secret(kube, secret, {key: token})
    controllers = list(_controller_tokens(kube))
    say(f"failover token: {namespace}/{secret} updated; waiting up to {wait:.0f} s "
        f"for the agents on {len(controllers)} control-plane node(s) to take it")
    return wait_confirmed(kube, token, time.monotonic() + wait, poll)


def rotate(prepared: Prepared, api: Any, kinds: Sequence[str], say: Say, *,
           cloud_token: str = "", failover_token: str = "", wait: float | None = None,
           poll: float = POLL) -> Rotated:
    """Rotate ``kinds`` (see `chosen`) on the cluster of ``api``, in a fixed order.

    ``wait``: seconds for the failover agents to take the new token (None: `confirm_wait`).
    """
    kube = Kube(api, timeout=15)
    result = Rotated()
    if FAILOVER_TOKEN in kinds:  # before anything changes, like the cloud token
        check_failover_token(failover_token)
    if CLOUD_TOKEN in kinds:
        rotate_cloud_token(kube, cloud_token, say)
        result.done.append(CLOUD_TOKEN)
    if JOIN_CREDENTIALS in kinds:
        from provisioner.bootstrap import join_credentials

        join_credentials.refresh(api, prepared, say)
        result.done.append(JOIN_CREDENTIALS)
    if FAILOVER_TOKEN in kinds:
        if wait is None:
            wait = confirm_wait()
        result.unconfirmed = rotate_failover_token(kube, failover_token, wait, say, poll)
        result.done.append(FAILOVER_TOKEN)
    return result
