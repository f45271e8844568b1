"""The cluster stage of `up`: kubeconfig, API readiness, the DigitalOcean token Secret, nodes.

The droplets bootstrap themselves through cloud-init (kubeadm init/join, CNI and add-ons);
this stage gives the user a kubeconfig, hands the cloud controller manager and CSI driver
their token (a kube-system Secret, the only place in the cluster it lives), waits until
every node is Ready, then passes the platform gate (bootstrap/platform.py): no node left
uninitialised by the cloud controller manager, every add-on rolled out.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provisioner.bootstrap import kubeconfig, platform, readiness
from provisioner.bootstrap.readiness import Report
from provisioner.errors import ProvisionError, UsageError
from provisioner.kube import KubeError, client_for
from provisioner.pipeline.prepare import Prepared

# Cloud-init installs packages and runs kubeadm: minutes, not seconds.
API_TIMEOUT = 20 * 60.0
NODES_TIMEOUT = 20 * 60.0
# The add-ons start once the CCM has initialised the nodes: image pulls, a few restarts.
# Read at call time, so a test can shorten it for a whole `up`.
PLATFORM_TIMEOUT = 15 * 60.0
DO_SECRET = "digitalocean"


@dataclass(frozen=True)
class BackupAccess:
    """What the etcd backup agents get in kube-system/provision-backup."""

    access_key: str = field(repr=False)
    secret_key: str = field(repr=False)
    recipient_pem: bytes
    settings: dict[str, object] = field(default_factory=dict)


def backup_access(prepared: Prepared, warn: Report) -> BackupAccess | None:
    """The Spaces key and recipient key for the agents; None without a ``backups`` section."""
    if prepared.env.backups is None:
        return None
    from provisioner.bootstrap.backup_keys import recipient_of
    from provisioner.cloud.backup_bucket import agent_credentials
    from provisioner.render.cloudinit import backup_settings

    recipient = recipient_of(prepared.secrets)
    if recipient is None:  # custody makes it whenever backups are set: a bug if not
        raise ProvisionError("the backup recipient key is missing from the cluster secrets")
    access, secret = agent_credentials(warn)
    return BackupAccess(access, secret, recipient, backup_settings(prepared.env) or {})


def store_backup_access(api: Any, backup: BackupAccess, report: Report) -> None:
    """The agents' Secret and their record, once the API answers."""
    from provisioner.cluster import backup_record

    try:
        backup_record.store_access(api, backup.access_key, backup.secret_key,
                                   backup.recipient_pem, backup.settings)
        created = backup_record.ensure_record(api)
    except KubeError as e:
        raise ProvisionError(f"cannot store the etcd backup settings in kube-system: {e}"
                             ) from e
    report(f"etcd backups: {backup_record.NAMESPACE}/{backup_record.SECRET} applied"
           + (f", {backup_record.NAMESPACE}/{backup_record.RECORD} created" if created else ""))


@dataclass(frozen=True)
class Cluster:
    """A reachable cluster: where its API is and how to talk to it."""

    endpoint: str
    kubeconfig: Path
    nodes: tuple[str, ...]
    # The node autoscaler runs or ran: autoscaled droplets may need reconciling with the file.
    autoscaling: bool = False


def kubeconfig_path(prepared: Prepared) -> Path:
    """The work folder's admin kubeconfig (0600)."""
    return prepared.work.root / "kubeconfig"


def expected_nodes(outputs: dict[str, Any]) -> list[str]:
    """Every droplet Terraform created is a node: its hostname is its name."""
    names = [c["name"] for c in outputs.get("controllers") or []]
    names += [w["name"] for w in (outputs.get("workers") or {}).values()]
    return names


def api_client(path: Path) -> Any:
    """An API client for a kubeconfig file (imports the Kubernetes client only here).

    An unusable file is the operator's to mend (exit 2), named without its content: the
    parser's message could quote the client key it holds.
    """
    try:
        return client_for(path)
    except Exception as e:  # the client's ConfigException, YAML errors, OSError, ...
        raise UsageError(f"cannot use the kubeconfig {path} ({type(e).__name__}); delete it "
                         "and run `provision kubeconfig CONFIG` to make it again") from e


def store_cloud_token(api: Any, token: str) -> None:
    """kube-system/digitalocean: the token the CCM and CSI driver read, applied declaratively."""
    import json

    from provisioner.kube import Kube

    body = {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": DO_SECRET, "namespace": "kube-system",
                         "labels": {"app.kubernetes.io/managed-by": "provision"}},
            "stringData": {"access-token": token}}
    Kube(api, timeout=15).request(
        "PATCH", f"/api/v1/namespaces/kube-system/secrets/{DO_SECRET}",
        [("fieldManager", "provision"), ("force", "true")], json.dumps(body),
        "application/apply-patch+yaml", verb="patch secrets in kube-system")


def bring_up(prepared: Prepared, outputs: dict[str, Any], token: str, report: Report,
             api_timeout: float = API_TIMEOUT, nodes_timeout: float = NODES_TIMEOUT,
             platform_timeout: float | None = None,
             backup: BackupAccess | None = None) -> Cluster:
    """Kubeconfig, then wait for the API, store the token (and the backup agents' Secret),
    wait for every node and add-on."""
    endpoint = outputs.get("api_endpoint")
    if not endpoint:
        raise ProvisionError("the infrastructure has no API endpoint yet; run `provision up`")
    path = kubeconfig.ensure(kubeconfig_path(prepared), prepared.env.name, str(endpoint),
                             prepared.secrets)
    report(f"kubeconfig: {path}")
    api = api_client(path)
    start = time.monotonic()
    readiness.wait_for_api(api, str(endpoint), start + api_timeout, report)
    try:
        store_cloud_token(api, token)
    except KubeError as e:
        raise ProvisionError(f"cannot store the DigitalOcean token in kube-system: {e}") from e
    if backup is not None:
        store_backup_access(api, backup, report)
    nodes = expected_nodes(outputs)
    readiness.wait_for_nodes(api, nodes, time.monotonic() + nodes_timeout, report)
    wait = PLATFORM_TIMEOUT if platform_timeout is None else platform_timeout
    platform.wait_for_platform(api, prepared.env.kubernetes.cni, time.monotonic() + wait,
                               report)
    from provisioner.cluster import autoscaler  # nothing without an autoscaled pool

    autoscaling = autoscaler.install(prepared, api, outputs, token, report)
    return Cluster(str(endpoint), path, tuple(nodes), autoscaling)
