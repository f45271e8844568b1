"""Node autoscaling: the cluster-autoscaler and provision's externalgrpc service, as objects.

Rendered when any worker pool has ``autoscale``. Terraform owns each pool's floor (``count``
= ``autoscale.min`` droplets); the cluster-autoscaler's node group ``<env>-<pool>`` is only
the droplets provision's service creates above it (0 to ``max - min``), tagged
``provision:<env>:autoscaled``. Both Deployments run on the control-plane nodes, which no
node group holds, so neither ever runs on a node it may delete.

The settings (the JSON the service reads, keys as its loader expects) are built from the
same Environment and the same worker user-data segments Terraform receives; the values
only known once Terraform has run (the API address, the VPC) and the cluster's discovery
hash are filled in by `up` (cluster/autoscaler.py). The rendered file shows them as
markers, and holds no Secret: the DigitalOcean token, the mTLS keys and the secret late
values are applied by `up` and never written to the rendered folder.

Upstream, at the pinned tag (kubernetes/autoscaler ``cluster-autoscaler-<version>``):
cluster-autoscaler/cloudprovider/externalgrpc/README.md (the cloud-config keys
``address``, ``key``, ``cert``, ``cacert``, ``grpc_timeout``; node groups come from the service's
``NodeGroups`` RPC, so no ``--nodes``) and examples/cluster-autoscaler-manifests/
cluster-autoscaler.yaml (the RBAC below, the command). ``--namespace`` (config/flags/
flags.go) is where its status ConfigMap and leader-election Lease live (main.go).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import yaml

from provisioner.config.model import Environment, WorkerPool
from provisioner.errors import RenderError, UsageError
from provisioner.render import autoscaler_code, cloudinit
from provisioner.render.markers import marker, segments

NAMESPACE = "provision-system"
SERVICE = "provision-autoscaler"
PORT = 8086
CLUSTER_AUTOSCALER = "cluster-autoscaler"
ADDRESS = f"{SERVICE}.{NAMESPACE}.svc:{PORT}"
CONFIG_DIR = "/etc/provision-autoscaler"
SETTINGS_PATH = f"{CONFIG_DIR}/settings.json"
DO_API_URL = "https://api.digitalocean.com"
AUTOSCALED = "autoscaled"

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


def autoscaled_tag(env_name: str) -> str:
    """The tag the service adds to every droplet it creates."""
    return f"provision:{env_name}:{AUTOSCALED}"


def pool_tags(env: Environment, pool: WorkerPool) -> list[str]:
    """Exactly the tags terraform/workers.tf gives the pool's droplets, in its order."""
    tag = f"provision:{env.name}"
    return [tag, f"{tag}:worker", f"{tag}:pool:{pool.name}", *env.digitalocean.tags]


def cluster_autoscaler_image(env: Environment) -> str:
    """The cluster-autoscaler image of the environment's Kubernetes minor."""
    minor = int(env.kubernetes.version.split(".")[1])
    release = CLUSTER_AUTOSCALER_RELEASES.get(minor)
    if release is None:
        known = ", ".join(f"1.{m}" for m in sorted(CLUSTER_AUTOSCALER_RELEASES))
        raise UsageError(f"worker_pools[].autoscale: no cluster-autoscaler release is pinned "
                         f"for Kubernetes 1.{minor} (pinned: {known}); use one of those "
                         "versions or remove autoscale")
    return f"{_IMAGE}:v{release}"


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


def _meta(name: str, namespace: str | None = None, **labels: str) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "labels": {**MANAGED, **labels}}
    if namespace:
        meta["namespace"] = namespace
    return meta


def _on_control_plane() -> dict[str, Any]:
    """Scheduling on the control-plane nodes (kubeadm's label and taint)."""
    return {
        "nodeSelector": {"node-role.kubernetes.io/control-plane": ""},
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                         "effect": "NoSchedule"}],
    }


# Owner root (the kubelet), group fsGroup: readable by the pod's user only.
SECRET_MODE = 0o440

_RESTRICTED = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
               "readOnlyRootFilesystem": True}


def _pod_security(uid: int) -> dict[str, Any]:
    # fsGroup: the kubelet writes Secret files as root; only with fsGroup does it give them
    # that group (SetVolumeOwnership, kubernetes pkg/volume/volume_linux.go), so the
    # container's user reads them through the group bits of SECRET_MODE.
    return {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid,
            "seccompProfile": {"type": "RuntimeDefault"}}


def _rbac_service() -> list[dict[str, Any]]:
    """The service: bootstrap-token Secrets in kube-system (create only), nothing else (it
    finds its droplets by tag through the DigitalOcean API, never through Nodes)."""
    sa = {"kind": "ServiceAccount", "name": SERVICE, "namespace": NAMESPACE}
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(SERVICE, NAMESPACE)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _meta(f"{SERVICE}-bootstrap-tokens", "kube-system"),
         "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(f"{SERVICE}-bootstrap-tokens", "kube-system"),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": f"{SERVICE}-bootstrap-tokens"},
         "subjects": [sa]},
    ]


# Objects earlier versions applied that no longer exist in the render: `up` deletes them.
RETIRED = (("ClusterRoleBinding", f"{SERVICE}-nodes"), ("ClusterRole", f"{SERVICE}-nodes"))


def _rbac_cluster_autoscaler() -> list[dict[str, Any]]:
    """As upstream's externalgrpc example gives it (see the module docstring), its Role and
    bindings in provision-system (its ``--namespace``), the ClusterRole's name prefixed so a
    cluster-autoscaler the user runs elsewhere keeps its own."""
    name = f"provision-{CLUSTER_AUTOSCALER}"
    sa = {"kind": "ServiceAccount", "name": CLUSTER_AUTOSCALER, "namespace": NAMESPACE}
    read = ["watch", "list", "get"]
    rules = [
        {"apiGroups": [""], "resources": ["events", "endpoints"], "verbs": ["create", "patch"]},
        {"apiGroups": [""], "resources": ["pods/eviction"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["pods/status"], "verbs": ["update"]},
        {"apiGroups": [""], "resources": ["endpoints"], "resourceNames": [CLUSTER_AUTOSCALER],
         "verbs": ["get", "update"]},
        {"apiGroups": [""], "resources": ["nodes"], "verbs": ["watch", "list", "get", "update"]},
        {"apiGroups": [""], "resources": ["namespaces", "pods", "services",
                                          "replicationcontrollers", "persistentvolumeclaims",
                                          "persistentvolumes"], "verbs": read},
        {"apiGroups": ["extensions"], "resources": ["replicasets", "daemonsets"],
         "verbs": read},
        {"apiGroups": ["policy"], "resources": ["poddisruptionbudgets"],
         "verbs": ["watch", "list"]},
        {"apiGroups": ["apps"], "resources": ["statefulsets", "replicasets", "daemonsets"],
         "verbs": read},
        # volumeattachments: the scheduler's volume plugins it simulates with list and watch
        # them; upstream's Helm chart grants it (charts/cluster-autoscaler/templates/
        # clusterrole.yaml at the pinned tag), its older externalgrpc example does not.
        {"apiGroups": ["storage.k8s.io"], "resources": ["storageclasses", "csinodes",
                                                        "csidrivers", "csistoragecapacities",
                                                        "volumeattachments"],
         "verbs": read},
        {"apiGroups": ["batch", "extensions"], "resources": ["jobs"],
         "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
        {"apiGroups": ["coordination.k8s.io"], "resourceNames": [CLUSTER_AUTOSCALER],
         "resources": ["leases"], "verbs": ["get", "update"]},
    ]
    role_rules = [
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create", "list", "watch"]},
        {"apiGroups": [""], "resources": ["configmaps"],
         "resourceNames": ["cluster-autoscaler-status", "cluster-autoscaler-priority-expander"],
         "verbs": ["delete", "get", "update", "watch"]},
    ]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE)},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta(name), "rules": rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(name),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": name}, "subjects": [sa]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE), "rules": role_rules},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                     "name": CLUSTER_AUTOSCALER}, "subjects": [sa]},
    ]


def _service_deployment(settings_text: str, code: bytes) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": SERVICE}
    deps, src = "/opt/provision/deps", "/opt/provision/code"
    unpack = ("import tarfile,sys; tarfile.open(sys.argv[1]).extractall(sys.argv[2], "
              "filter='data')")
    mounts = [{"name": "deps", "mountPath": deps}, {"name": "code", "mountPath": src}]
    init = [
        {"name": "install", "image": autoscaler_code.PYTHON_IMAGE,
         "command": ["python", "-m", "pip", "install", "--no-cache-dir", "--require-hashes",
                     "--only-binary=:all:", "--no-deps", "--target", deps,
                     "-r", "/opt/provision/archive/requirements.txt"],
         "env": [{"name": "HOME", "value": "/tmp"}],
         "volumeMounts": [*mounts, {"name": "archive", "mountPath": "/opt/provision/archive"},
                          {"name": "tmp", "mountPath": "/tmp"}],
         "securityContext": _RESTRICTED},
        {"name": "unpack", "image": autoscaler_code.PYTHON_IMAGE,
         "command": ["python", "-c", unpack, "/opt/provision/archive/provisioner.tar.gz", src],
         "volumeMounts": [*mounts, {"name": "archive", "mountPath": "/opt/provision/archive"}],
         "securityContext": _RESTRICTED},
    ]
    container = {
        "name": "service", "image": autoscaler_code.PYTHON_IMAGE,
        "command": ["python", "-m", "provisioner.autoscaler.serve", "--settings",
                    SETTINGS_PATH],
        "env": [{"name": "PYTHONPATH", "value": f"{src}:{deps}"},
                {"name": "PYTHONDONTWRITEBYTECODE", "value": "1"}],
        "ports": [{"name": "grpc", "containerPort": PORT, "protocol": "TCP"}],
        "readinessProbe": {"tcpSocket": {"port": "grpc"}, "periodSeconds": 10},
        "resources": {"requests": {"cpu": "50m", "memory": "96Mi"},
                      "limits": {"memory": "256Mi"}},
        "volumeMounts": [
            *mounts,
            {"name": "settings", "mountPath": SETTINGS_PATH, "subPath": "settings.json",
             "readOnly": True},
            {"name": "tls", "mountPath": f"{CONFIG_DIR}/tls", "readOnly": True},
            {"name": "do-token", "mountPath": f"{CONFIG_DIR}/do-token", "readOnly": True},
            {"name": "values", "mountPath": f"{CONFIG_DIR}/values", "readOnly": True},
        ],
        "securityContext": _RESTRICTED,
    }
    checksum = autoscaler_code.digest(settings_text.encode() + code)
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(SERVICE, NAMESPACE),
        "spec": {
            # One writer of droplets: never two services (an old and a new pod) at once.
            "replicas": 1, "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels, "annotations": {CHECKSUM: checksum}},
                "spec": {
                    "serviceAccountName": SERVICE, **_on_control_plane(),
                    "securityContext": _pod_security(65532),
                    "initContainers": init, "containers": [container],
                    "volumes": [
                        {"name": "deps", "emptyDir": {}}, {"name": "code", "emptyDir": {}},
                        {"name": "tmp", "emptyDir": {}},
                        {"name": "archive", "configMap": {"name": CODE_CONFIGMAP}},
                        {"name": "settings", "configMap": {"name": SETTINGS_CONFIGMAP}},
                        {"name": "tls", "secret": {"secretName": TLS_SECRET,
                                                   "defaultMode": SECRET_MODE}},
                        {"name": "do-token", "secret": {"secretName": TOKEN_SECRET,
                                                        "defaultMode": SECRET_MODE}},
                        {"name": "values", "secret": {"secretName": VALUES_SECRET,
                                                      "defaultMode": SECRET_MODE}},
                    ],
                },
            },
        },
    }


def cloud_config() -> str:
    """The externalgrpc cloud-config (README's keys), client certificate from the Secret."""
    return yaml.safe_dump({"address": ADDRESS, "key": "/etc/ssl/client-cert/tls.key",
                           "cert": "/etc/ssl/client-cert/tls.crt",
                           "cacert": "/etc/ssl/client-cert/ca.crt",
                           "grpc_timeout": GRPC_TIMEOUT}, sort_keys=False)


def _cluster_autoscaler_deployment(env: Environment) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": CLUSTER_AUTOSCALER}
    container = {
        "name": CLUSTER_AUTOSCALER, "image": cluster_autoscaler_image(env),
        "command": ["./cluster-autoscaler", "--v=2", "--cloud-provider=externalgrpc",
                    "--cloud-config=/config/cloud-config", f"--namespace={NAMESPACE}"],
        "resources": {"requests": {"cpu": "100m", "memory": "300Mi"},
                      "limits": {"memory": "300Mi"}},
        "volumeMounts": [{"name": "cloud-config", "mountPath": "/config", "readOnly": True},
                         {"name": "client-cert", "mountPath": "/etc/ssl/client-cert",
                          "readOnly": True}],
        "securityContext": _RESTRICTED,
    }
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": _meta(CLUSTER_AUTOSCALER, NAMESPACE),
        "spec": {
            "replicas": 1, "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": CLUSTER_AUTOSCALER, **_on_control_plane(),
                    "securityContext": _pod_security(65532),
                    "containers": [container],
                    "volumes": [
                        {"name": "cloud-config", "configMap": {"name": CLOUD_CONFIG}},
                        {"name": "client-cert", "secret": {"secretName": CLIENT_SECRET,
                                                           "defaultMode": SECRET_MODE}},
                    ],
                },
            },
        },
    }


def objects(env: Environment, settings_doc: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every non-secret object, in apply order (namespace, RBAC, config, workloads)."""
    settings_text = json.dumps(settings_doc, indent=1, sort_keys=True) + "\n"
    code = autoscaler_code.archive()
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(
        NAMESPACE, **{"pod-security.kubernetes.io/enforce": "restricted"})}
    config = [
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": _meta(SETTINGS_CONFIGMAP, NAMESPACE),
         "data": {"settings.json": settings_text}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CODE_CONFIGMAP, NAMESPACE),
         "data": {"requirements.txt": autoscaler_code.requirements()},
         "binaryData": {"provisioner.tar.gz": base64.b64encode(code).decode("ascii")}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": _meta(CLOUD_CONFIG, NAMESPACE),
         "data": {"cloud-config": cloud_config()}},
    ]
    service = {
        "apiVersion": "v1", "kind": "Service", "metadata": _meta(SERVICE, NAMESPACE),
        "spec": {"selector": {"app.kubernetes.io/name": SERVICE},
                 "ports": [{"name": "grpc", "port": PORT, "targetPort": "grpc",
                            "protocol": "TCP"}]},
    }
    return [namespace, *_rbac_service(), *_rbac_cluster_autoscaler(), *config,
            _service_deployment(settings_text, code), service,
            _cluster_autoscaler_deployment(env)]


def manifest(env: Environment) -> str | None:
    """autoscaler/manifests.yaml as rendered (late values as markers); None without
    autoscaled pools."""
    if not enabled(env):
        return None
    return yaml.safe_dump_all(objects(env, marker_settings(env)), sort_keys=False)
