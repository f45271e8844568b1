"""What `up` must know of the running cluster before it plans: is it there, which version.

Asked only when an earlier `up` reached the cluster (the work folder holds its admin
kubeconfig and recorded endpoint): a cluster whose API answers through that kubeconfig
(TLS checked against the environment's CA) has been initialised, so the first control-plane
node must join from now on, new nodes need fresh join credentials, and the file's
`kubernetes.version` must be the one it runs.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from provisioner.bootstrap.readiness import Report
from provisioner.errors import ConfigError, ConfigIssue, ProvisionError
from provisioner.infra.changes import InfraPlan
from provisioner.pipeline import cluster_stage, infra_stage
from provisioner.pipeline.prepare import Prepared

KEY = "kubernetes.version"
# A saved plan's token must outlive its apply and the nodes' first boot.
SAVED_PLAN_MARGIN = dt.timedelta(minutes=30)


class StaleCredentials(ProvisionError):
    """A saved plan carries join credentials the cluster no longer accepts."""

    exit_code = 2


class ControlPlaneUnknown(ProvisionError):
    """cp-1 would be created while it cannot be told whether the cluster exists."""


@dataclass(frozen=True)
class Running:
    """The cluster as its API reports it."""

    api: Any
    version: str  # the API server's, without the leading v
    kubelets: dict[str, str]  # node -> kubelet version, without the leading v


def _plain(version: str) -> str:
    return version.lstrip("v").split("+", 1)[0].split("-", 1)[0]


def probe(prepared: Prepared, say: Report) -> Running | None:
    """The running cluster, or None when there is none provision has reached before, or
    its API does not answer now (said in one line)."""
    from provisioner.kube import Kube, KubeError

    path = cluster_stage.kubeconfig_path(prepared)
    record = infra_stage.infrastructure_file(prepared)
    if not path.is_file() or not record.is_file():
        return None
    try:
        endpoint = json.loads(record.read_text()).get("api_endpoint")
    except (OSError, ValueError, AttributeError):
        return None
    if not endpoint:
        return None
    try:
        api = cluster_stage.api_client(path)
        kube = Kube(api, timeout=10, attempts=2)
        version = kube.request("GET", "/version", verb="read the version")
        nodes = kube.request("GET", "/api/v1/nodes", verb="list nodes")
    except (KubeError, OSError, ValueError) as e:
        say(f"the cluster's API at {endpoint} does not answer ({e}); new nodes get the "
            "join credentials in the work folder")
        return None
    except Exception as e:  # the client's ConfigException for an unusable kubeconfig
        say(f"cannot use {path} ({type(e).__name__}); the cluster is not asked")
        return None
    kubelets = {str(n["metadata"]["name"]):
                _plain(str(n.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")))
                for n in nodes.get("items", [])}
    return Running(api, _plain(str(version.get("gitVersion", ""))), kubelets)


def check_version(prepared: Prepared, running: Running) -> None:
    """Refuse a `kubernetes.version` other than the running one (exit 2, before any plan).

    Nodes made with a newer kubelet than the API server break the version skew policy
    (kubernetes.io/releases/version-skew-policy: kubelets must not be newer than
    kube-apiserver); an older one would be a downgrade. Upgrades are issue 15's command.
    """
    from provisioner.cloud.releases import _line

    wanted = _plain(prepared.env.kubernetes.version)
    others = sorted({v for v in running.kubelets.values() if v and v != running.version})
    if wanted == running.version and not others:
        return
    kubelets = f"; kubelets: {', '.join(others)}" if others else ""
    raise ConfigError(str(prepared.config), [ConfigIssue(
        _line(prepared.config), KEY,
        f"the cluster runs Kubernetes {running.version} (its API server{kubelets}), not "
        f"{wanted}: nodes made now would break the version skew policy",
        f'keep version: "{running.version}"; upgrading a cluster is a separate command, '
        "still to come")])


def creates_droplets(plan: InfraPlan) -> bool:
    """Whether applying ``plan`` makes droplets that must join the cluster."""
    return any(c.type == "digitalocean_droplet" and c.action in ("create", "replace")
               for c in plan.pending)


def guard_first_control_plane(plan: InfraPlan, running: Running | None) -> None:
    """Refuse to create cp-1 with `kubeadm init` beside control-plane droplets that exist.

    Without an answering API provision cannot tell an initialised cluster from a new one;
    cp-1's init would then build a second, empty cluster next to the running etcd.
    """
    if running is not None:
        return
    first = "digitalocean_droplet.controllers[0]"
    made = {c.address for c in plan.pending if c.action in ("create", "replace")}
    kept = [c for c in plan.changes if c.control_plane and c.address not in made]
    if first in made and kept:
        raise ControlPlaneUnknown(
            f"this plan creates {next(c.name for c in plan.changes if c.address == first)} "
            "while other control-plane droplets exist, but the cluster's API does not "
            "answer, so it would run `kubeadm init` and start a second, empty cluster. "
            "Bring the API back (one control-plane node answering at the endpoint) and run "
            "`provision up` again; nothing was applied")


def refuse_control_plane_without_keys(plan: InfraPlan, prepared: Prepared) -> None:
    """A cluster whose first node made its own shared keys cannot take new control planes:
    provision has nothing to re-upload for their join."""
    if prepared.secrets.shared:
        return
    new = [c.name for c in plan.pending if c.control_plane and c.action in ("create", "replace")]
    if new:
        raise infra_stage.PolicyError(
            f"this plan adds control-plane droplet(s) {', '.join(new)}, but this cluster's "
            "service-account key and front-proxy and etcd CAs were made on its first node, "
            f"not by provision, and {prepared.work.secrets} does not hold them; a new "
            "control-plane node could not join. Workers can still be added; nothing was "
            "applied")


def check_saved_plan(plan_document: dict[str, Any], running: Running | None,
                     now: dt.datetime) -> None:
    """Refuse a saved plan whose bootstrap token the cluster no longer accepts."""
    from provisioner.bootstrap.join_credentials import NAMESPACE, TOKEN_PREFIX, expired
    from provisioner.kube import Kube, KubeError

    if running is None:
        return
    values = ((plan_document.get("variables") or {}).get("bootstrap_secrets") or {}).get(
        "value") or {}
    token = values.get("bootstrap_token") if isinstance(values, dict) else None
    if not isinstance(token, str) or "." not in token:
        return
    name = TOKEN_PREFIX + token.split(".")[0]
    try:
        secret = Kube(running.api, timeout=10, attempts=2).request(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}",
            verb="read secrets in kube-system")
        import base64

        expires = base64.b64decode(secret.get("data", {}).get("expiration", "")).decode()
    except KubeError as e:
        if e.status != 404:
            raise
        expires = "gone"
    if expires == "gone" or expired(expires or None, now, SAVED_PLAN_MARGIN):
        raise StaleCredentials(
            "the saved plan's join credentials have expired on the cluster (or will within "
            f"{int(SAVED_PLAN_MARGIN.total_seconds() // 60)} minutes); its new nodes could "
            "not join. Make a new plan (`provision plan --out FILE`) and apply that")
