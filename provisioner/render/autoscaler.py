"""Node autoscaling: its names, pools, images and the service's settings.

The Kubernetes objects are built by render/autoscaler_objects.py (workloads, config) and
render/autoscaler_rbac.py (ServiceAccounts and their grants) from what this module defines.

Rendered when any worker pool has ``autoscale``. Terraform owns each pool's floor (``count``
= ``autoscale.min`` droplets); the cluster-autoscaler's node group ``<env>-<pool>`` is only
the droplets provision's service creates above it (0 to ``max - min``), tagged
``provision:<env>:autoscaled``.

The settings (the JSON the service reads, keys as its loader expects) are built from the
same Environment and the same worker user-data segments Terraform receives; the values
only known once Terraform has run (the API address, the VPC) and the cluster's discovery
hash are filled in by `up` (cluster/autoscaler.py). The rendered file shows them as
markers.

Upstream, at the pinned tag (kubernetes/autoscaler ``cluster-autoscaler-<version>``):
cluster-autoscaler/cloudprovider/externalgrpc/README.md (the cloud-config keys
``address``, ``key``, ``cert``, ``cacert``, ``grpc_timeout``; node groups come from the service's
``NodeGroups`` RPC, so no ``--nodes``). ``--namespace`` (config/flags/flags.go) is where its
status ConfigMap and leader-election Lease live (main.go).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provisioner.cloud import tags as tagging
from provisioner.config.model import Environment, WorkerPool
from provisioner.errors import RenderError, UsageError
from provisioner.render import cloudinit
from provisioner.render.markers import marker, segments

NAMESPACE = "provision-system"
SERVICE = "provision-autoscaler"
PORT = 8086
CLUSTER_AUTOSCALER = "cluster-autoscaler"
ADDRESS = f"{SERVICE}.{NAMESPACE}.svc:{PORT}"
CONFIG_DIR = "/etc/provision-autoscaler"
SETTINGS_PATH = f"{CONFIG_DIR}/settings.json"
DO_API_URL = "https://api.digitalocean.com"

# Secrets `up` applies (names shared with cluster/autoscaler.py).
TLS_SECRET = f"{SERVICE}-tls"
TOKEN_SECRET = f"{SERVICE}-do-token"
VALUES_SECRET = f"{SERVICE}-values"
CLIENT_SECRET = "cluster-autoscaler-grpc-client-cert"
SETTINGS_CONFIGMAP = f"{SERVICE}-settings"
CODE_CONFIGMAP = f"{SERVICE}-code"
CLOUD_CONFIG = "cluster-autoscaler-cloud-config"
# The deadline the cluster-autoscaler gives each call (cloud-config ``grpc_timeout``, a Go
# duration; 5 s when unset, externalgrpc README). The service waits a DigitalOcean 429 out
# only within the call's deadline (autoscaler/doclient.py), so 5 s would turn most
# throttled scale-ups into failures; 30 s covers a Retry-After of several seconds or the
# first doubling backoffs (1+2+4+8 s) with the create itself.
GRPC_TIMEOUT = "30s"

# The cluster-autoscaler release for each Kubernetes minor (its releases follow Kubernetes'
# minors, README.md "Releases"); the newest patch tag of kubernetes/autoscaler per minor.
CLUSTER_AUTOSCALER_RELEASES = {33: "1.33.6", 34: "1.34.5", 35: "1.35.2", 36: "1.36.1"}
_IMAGE = "registry.k8s.io/autoscaling/cluster-autoscaler"

# Worker user-data refs: filled by the service per droplet, public, or secret.
MINTED = frozenset({"bootstrap_token"})
PUBLIC = frozenset({"api_endpoint", "vpc_id", "ca_cert_hash"})

MANAGED = {"app.kubernetes.io/managed-by": "provision"}
CHECKSUM = "provision.dev/checksum"


def autoscaled_pools(env: Environment) -> list[WorkerPool]:
    """The pools with ``autoscale``, in file order."""
    return [p for p in env.worker_pools if p.autoscale is not None]


def enabled(env: Environment) -> bool:
    """Whether the environment runs the cluster-autoscaler."""
    return bool(autoscaled_pools(env))


def node_group(env: Environment, pool: WorkerPool) -> str:
    """The node group id of a pool (the contract's ``<env>-<pool>``)."""
    return f"{env.name}-{pool.name}"


def pool_tags(env: Environment, pool: WorkerPool) -> list[str]:
    """Exactly the tags terraform/workers.tf gives the pool's droplets, in its order."""
    tag = tagging.env_tag(env.name)
    return [tag, f"{tag}:worker", tagging.pool_tag(env.name, pool.name), *env.digitalocean.tags]


def cluster_autoscaler_release(env: Environment) -> str:
    """The cluster-autoscaler release (``1.36.1``) of the environment's Kubernetes minor."""
    minor = int(env.kubernetes.version.split(".")[1])
    release = CLUSTER_AUTOSCALER_RELEASES.get(minor)
    if release is None:
        known = ", ".join(f"1.{m}" for m in sorted(CLUSTER_AUTOSCALER_RELEASES))
        raise UsageError(f"worker_pools[].autoscale: no cluster-autoscaler release is pinned "
                         f"for Kubernetes 1.{minor} (pinned: {known}); use one of those "
                         "versions or remove autoscale")
    return release


def cluster_autoscaler_image(env: Environment) -> str:
    """The cluster-autoscaler image of the environment's Kubernetes minor."""
    return f"{_IMAGE}:v{cluster_autoscaler_release(env)}"


def worker_refs(env: Environment, pool: WorkerPool) -> tuple[list[dict[str, str]], set[str]]:
    """The pool's user-data segments as Terraform receives them, and the refs they use."""
    parts = segments(cloudinit.worker(env, pool).text)
    return parts, {p["ref"] for p in parts if "ref" in p}


def secret_refs(env: Environment) -> set[str]:
    """Refs of the autoscaled pools' user-data that are neither minted nor public."""
    refs: set[str] = set()
    for pool in autoscaled_pools(env):
        refs |= worker_refs(env, pool)[1]
    return refs - MINTED - PUBLIC


def settings(env: Environment, late: Mapping[str, str], vpc_uuid: str,
             do_api_url: str = DO_API_URL, image: str | None = None) -> dict[str, Any]:
    """The service's settings JSON (keys exactly as its loader reads them).

    ``late`` holds the public late values (api_endpoint, vpc_id, ca_cert_hash); ``image``
    the droplet image as the API takes it, Terraform's output ``image`` (for
    ``snapshot:<name>`` the snapshot's id, which only Terraform's lookup knows).
    """
    node_image = image or env.digitalocean.image
    if node_image.startswith("snapshot:"):
        # POST /v2/droplets takes an image id or a public slug, never a name.
        raise RenderError(f"the autoscaler's settings need the id of {node_image}, which "
                          "Terraform resolves (its output image); run `provision up`")
    pools = []
    for pool in autoscaled_pools(env):
        assert pool.autoscale is not None
        parts, _ = worker_refs(env, pool)
        pools.append({
            "name": pool.name, "min": pool.autoscale.min, "max": pool.autoscale.max,
            "size": pool.size, "region": env.digitalocean.region,
            "image": node_image, "vpc_uuid": vpc_uuid,
            "ssh_keys": list(env.digitalocean.ssh_keys),
            "tags": pool_tags(env, pool),
            "labels": dict(pool.labels),
            "taints": [{"key": t.key, "value": t.value, "effect": t.effect}
                       for t in pool.taints],
            "user_data": parts,
            # Every public late value (the contract's three), used by the user-data or not.
            "values": {ref: late[ref] for ref in sorted(PUBLIC)},
        })
    return {
        "environment": env.name,
        "listen": f"0.0.0.0:{PORT}",
        "tls": {"cert": f"{CONFIG_DIR}/tls/tls.crt", "key": f"{CONFIG_DIR}/tls/tls.key",
                "client_ca": f"{CONFIG_DIR}/tls/ca.crt"},
        "do_api_url": do_api_url,
        "do_token_file": f"{CONFIG_DIR}/do-token/token",
        "secret_values_file": f"{CONFIG_DIR}/values/values.json",
        "kube_api": None,  # the pod's service account (autoscaler/kubeclient.py)
        "pools": pools,
    }


def marker_settings(env: Environment) -> dict[str, Any]:
    """The settings as rendered: late values as their markers."""
    late = {name: marker(name) for name in PUBLIC}
    snapshot = env.digitalocean.snapshot
    # A snapshot's id is known once Terraform looked it up; shown, not as a marker.
    image = None if snapshot is None else f"<id of snapshot {snapshot}, from Terraform>"
    return settings(env, late, marker("vpc_id"), image=image)


def meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    """An object's metadata, labelled as provision's."""
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED, **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta
