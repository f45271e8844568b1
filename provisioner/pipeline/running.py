"""What `up` must know of the running cluster before it plans: is it there, which version.

Asked only when an earlier `up` reached the cluster (the work folder holds its admin
kubeconfig and recorded endpoint): a cluster whose API answers through that kubeconfig
(TLS checked against the environment's CA) has been initialised, so the first control-plane
node must join from now on, new nodes need fresh join credentials, and the file's
`kubernetes.version` must be the one it runs.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from provisioner.bootstrap.join_credentials import (
    CERTS_SECRET,
    NAMESPACE,
    NONCE_BYTES,
    TOKEN_PREFIX,
    expired,
)
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
    endpoint = reached_before(prepared)
    if endpoint is None:
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
    kubelets = {str((n.get("metadata") or {}).get("name")):
                _plain(str(((n.get("status") or {}).get("nodeInfo") or {}).get(
                    "kubeletVersion", "")))
                for n in nodes.get("items") or [] if isinstance(n, dict)}
    return Running(api, _plain(str(version.get("gitVersion", ""))), kubelets)


def reached_before(prepared: Prepared) -> str | None:
    """The API endpoint of a cluster an earlier `up` reached (its kubeconfig and recorded
    endpoint are in the work folder), else None."""
    if not cluster_stage.kubeconfig_path(prepared).is_file():
        return None
    endpoint = (infra_stage.recorded_outputs(prepared) or {}).get("api_endpoint")
    return str(endpoint) if endpoint else None


class ClusterSilent(ProvisionError):
    """New droplets would join a cluster whose API does not answer now."""


def refuse_silent_cluster(plan: InfraPlan, prepared: Prepared, running: Running | None,
                          now: dt.datetime) -> None:
    """Refuse to create droplets for a cluster an earlier `up` reached whose API does not
    answer now, unless the work folder's join credentials are still good.

    Fresh credentials can only be made through the API; droplets created now would carry
    the work folder's, and user-data is read once: a node whose token has expired never
    joins, and no later `up` mends it (it creates nothing more).
    """
    if running is not None or not creates_droplets(plan):
        return
    endpoint = reached_before(prepared)
    if endpoint is None:
        return  # no cluster yet: the first `up` creates the token kubeadm init registers
    expires = prepared.secrets.token_expires
    if expires and not expired(expires, now, SAVED_PLAN_MARGIN):
        return
    raise ClusterSilent(
        f"this plan creates droplets, but the cluster's API at {endpoint} does not answer, "
        "so provision cannot make join credentials it accepts"
        + (f" (the work folder's expired at {expires})" if expires else "")
        + ": the new nodes would never join. Bring the API back and run `provision up` "
        "again; nothing was applied")


def changes_version(prepared: Prepared, running: Running) -> bool:
    """Whether the file's `kubernetes.version` differs from what the cluster runs (its API
    server or any kubelet): an upgrade, whose preflight `plan` shows."""
    wanted = _plain(prepared.env.kubernetes.version)
    return wanted != running.version or any(
        v and v != running.version for v in running.kubelets.values())


def check_version(prepared: Prepared, running: Running) -> None:
    """Refuse a `kubernetes.version` other than the running one (exit 2, before any plan).

    Nodes made with a newer kubelet than the API server break the version skew policy
    (kubernetes.io/releases/version-skew-policy: kubelets must not be newer than
    kube-apiserver); an older one would be a downgrade. `plan` shows an upgrade's preflight
    (provisioner/upgrade/preflight.py) and `provision upgrade` carries it out.
    """
    from provisioner.config.yamlpos import key_line

    if not changes_version(prepared, running):
        return
    wanted = _plain(prepared.env.kubernetes.version)
    others = sorted({v for v in running.kubelets.values() if v and v != running.version})
    kubelets = f"; kubelets: {', '.join(others)}" if others else ""
    raise ConfigError(str(prepared.config), [ConfigIssue(
        key_line(prepared.config, "kubernetes", "version"), KEY,
        f"the cluster runs Kubernetes {running.version} (its API server{kubelets}), not "
        f"{wanted}: `up` does not change a running cluster's version, and nodes made now "
        "would break the version skew policy",
        f'keep version: "{running.version}" for `up`; `provision plan {prepared.config}` '
        f"shows the upgrade's preflight findings, and `provision upgrade {prepared.config}` "
        "changes the running cluster's version in place")])


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


def check_saved_plan(plan_document: dict[str, Any], plan: InfraPlan, running: Running | None,
                     now: dt.datetime) -> None:
    """Refuse a saved plan whose new droplets could not join the running cluster.

    `terraform show -json` of a saved plan gives every root variable's value, sensitive ones
    included (`bootstrap_secrets`): hashicorp/terraform internal/command/jsonplan/plan.go
    (marshalPlanVariables takes the plan's stored values and no sensitivity), as in its
    test fixture internal/command/testdata/show-json-sensitive, whose sensitive `test_var`
    appears as {"value": "bar"}; the JSON output format docs list `variables` with values
    (developer.hashicorp.com/terraform/internals/json-format). Checked against the embedded
    Terraform by tests/e2e/test_day2_joins.py.
    """
    if running is None:
        return
    variables = plan_document.get("variables") or {}
    first = "digitalocean_droplet.controllers[0]"
    count = (variables.get("controller_count") or {}).get("value")
    if (variables.get("cluster_initialised") or {}).get("value") is not True \
            and isinstance(count, int) and count > 1 \
            and any(c.address == first and c.action in ("create", "replace")
                    for c in plan.pending):
        raise StaleCredentials(
            "the saved plan was made while the cluster's API did not answer: it creates the "
            "first control-plane droplet with `kubeadm init`, which would start a second, "
            "empty cluster. Make a new plan (`provision plan --out FILE`) now that the API "
            "answers, and apply that")
    values = (variables.get("bootstrap_secrets") or {}).get("value")
    if not isinstance(values, dict) or not isinstance(values.get("bootstrap_token"), str):
        raise StaleCredentials(
            "cannot read the join credentials in the saved plan (`terraform show -json` "
            "gives no bootstrap_secrets), so its new nodes may not join. Make a new plan "
            "(`provision plan --out FILE`) and apply that")
    kube = _kube(running)
    token = values["bootstrap_token"]
    expires = _token_expiry(kube, token.split(".")[0])
    if expires is None or expired(expires, now, SAVED_PLAN_MARGIN):
        raise _stale("join credentials")
    if any(c.control_plane and c.action in ("create", "replace") for c in plan.pending) \
            and not _certificates_open(kube, str(values.get("certificate_key") or ""), now):
        raise _stale("control-plane certificates (kubeadm-certs)")


def _kube(running: Running) -> Any:
    from provisioner.kube import Kube

    return Kube(running.api, timeout=10, attempts=2)


def _stale(what: str) -> StaleCredentials:
    return StaleCredentials(
        f"the saved plan's {what} are not accepted by the cluster (expired or unknown to "
        f"it, or expiring within {int(SAVED_PLAN_MARGIN.total_seconds() // 60)} minutes); "
        "its new nodes could not "
        "join. Make a new plan (`provision plan --out FILE`) and apply that")


def _secret(kube: Any, name: str) -> dict[str, Any] | None:
    from provisioner.kube import KubeError

    try:
        found: dict[str, Any] = kube.request(
            "GET", f"/api/v1/namespaces/{NAMESPACE}/secrets/{name}",
            verb="read secrets in kube-system")
    except KubeError as e:
        if e.status != 404:
            raise
        return None
    return found


def _token_expiry(kube: Any, token_id: str) -> str | None:
    """The token Secret's expiration (RFC 3339), "" for none, None when it is gone."""
    import base64

    secret = _secret(kube, TOKEN_PREFIX + token_id)
    if secret is None:
        return None
    try:
        return base64.b64decode(secret.get("data", {}).get("expiration", "")).decode()
    except (ValueError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return "not a time"  # judged expired by `expired`


def _certificates_open(kube: Any, certificate_key: str, now: dt.datetime) -> bool:
    """Whether kubeadm-certs is there, opens with ``certificate_key`` (kubeadm's
    DecryptBytes: nonce first) and outlives the margin (its owner token's expiration)."""
    import base64

    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    certs = _secret(kube, CERTS_SECRET)
    if certs is None:
        return False
    try:
        blob = base64.b64decode(certs.get("data", {}).get("ca.crt", ""))
        AESGCM(bytes.fromhex(certificate_key)).decrypt(
            blob[:NONCE_BYTES], blob[NONCE_BYTES:], None)
    except (InvalidTag, ValueError):
        return False
    owners = [r.get("name", "") for r in certs.get("metadata", {}).get("ownerReferences", [])
              if str(r.get("name", "")).startswith(TOKEN_PREFIX)]
    if not owners:
        return True  # kept by no token: it never expires
    expires = _token_expiry(kube, owners[0].removeprefix(TOKEN_PREFIX))
    return expires is not None and not expired(expires, now, SAVED_PLAN_MARGIN)
