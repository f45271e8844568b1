"""Node autoscaling as Kubernetes objects: namespace, config, the two workloads.

Rendered when any worker pool has ``autoscale`` (render/autoscaler.py says who owns which
droplets). Both Deployments run on the control-plane nodes, which no node group holds, so
neither ever runs on a node it may delete. The rendered file holds no Secret: the
DigitalOcean token, the mTLS keys and the secret late values are applied by `up`
(cluster/autoscaler.py) and never written to the rendered folder.

Upstream, at the pinned tag (kubernetes/autoscaler ``cluster-autoscaler-<version>``):
cluster-autoscaler/cloudprovider/externalgrpc/README.md (the cloud-config keys) and
examples/cluster-autoscaler-manifests/cluster-autoscaler.yaml (the command).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import yaml

from provisioner.config.model import Environment
from provisioner.render import autoscaler_code, autoscaler_rbac
from provisioner.render.autoscaler import (
    ADDRESS,
    CHECKSUM,
    CLIENT_SECRET,
    CLOUD_CONFIG,
    CLUSTER_AUTOSCALER,
    CODE_CONFIGMAP,
    CONFIG_DIR,
    GRPC_TIMEOUT,
    NAMESPACE,
    PORT,
    SERVICE,
    SETTINGS_CONFIGMAP,
    SETTINGS_PATH,
    TLS_SECRET,
    TOKEN_SECRET,
    VALUES_SECRET,
    cluster_autoscaler_image,
    enabled,
    marker_settings,
)
from provisioner.render.autoscaler import meta as _meta


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


# The cluster-autoscaler's metrics and health address (--address, its default).
HEALTH_PORT = 8085


def _cluster_autoscaler_deployment(env: Environment) -> dict[str, Any]:
    labels = {"app.kubernetes.io/name": CLUSTER_AUTOSCALER}
    container = {
        "name": CLUSTER_AUTOSCALER, "image": cluster_autoscaler_image(env),
        "command": ["./cluster-autoscaler", "--v=2", "--cloud-provider=externalgrpc",
                    "--cloud-config=/config/cloud-config", f"--namespace={NAMESPACE}"],
        # main.go serves /health-check on --address (":8085", config/flags/flags.go) from
        # its start; it fails once no loop ran for --max-inactivity (10m) or --max-failing-
        # time (15m), or none ever did within --max-startup-time (20m): a pod stuck at
        # "Waiting for caches to sync" (a grant missing) is restarted, visibly, not silent.
        # The chart's probe at the pinned tags (templates/deployment.yaml) is the same.
        "ports": [{"name": "http", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "livenessProbe": {"httpGet": {"path": "/health-check", "port": HEALTH_PORT}},
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
    return [namespace, *autoscaler_rbac.objects(env), *config,
            _service_deployment(settings_text, code), service,
            _cluster_autoscaler_deployment(env)]


def manifest(env: Environment) -> str | None:
    """autoscaler/manifests.yaml as rendered (late values as markers); None without
    autoscaled pools."""
    if not enabled(env):
        return None
    return yaml.safe_dump_all(objects(env, marker_settings(env)), sort_keys=False)
