"""Kubernetes manifests of the environment's applications, one multi-document file each."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from provisioner import lb_names
from provisioner.config import checks
from provisioner.config.model import App, Environment, Probe
from provisioner.render.engine import render

MANAGED_BY = "provision"
CONFIG_NAME = "global-config"
SECRET_NAME = "global-secrets"
ANNOTATION_PREFIX = "provision.dev"
COLOUR_LABEL = f"{ANNOTATION_PREFIX}/colour"
CONFIG_CHECKSUM = f"{ANNOTATION_PREFIX}/config-checksum"


@dataclass(frozen=True)
class ManifestFile:
    """One rendered file of manifests."""

    name: str
    text: str


def _image_tag(image: str) -> str | None:
    tail = image.rsplit("/", 1)[-1].split("@", 1)[0]
    tag = tail.split(":", 1)[1] if ":" in tail else None
    return tag if tag and checks.label_value(tag) is None else None


def app_labels(env: Environment, app: App) -> dict[str, str]:
    """The recommended ``app.kubernetes.io/*`` labels of every object of an app."""
    labels = {
        "app.kubernetes.io/name": app.name,
        "app.kubernetes.io/instance": app.name,
        "app.kubernetes.io/part-of": env.name,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }
    if (tag := _image_tag(app.image)) is not None:
        labels["app.kubernetes.io/version"] = tag
    return labels


def config_checksum(env: Environment) -> str:
    """Changes whenever a shared setting changes, so exactly the apps using them roll."""
    payload = json.dumps([list(pair) for pair in env.config], ensure_ascii=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def _probe(probe: Probe | None) -> dict[str, Any] | None:
    if probe is None:
        return None
    result: dict[str, Any]
    if probe.http_path is not None:
        result = {"httpGet": {"path": probe.http_path, "port": probe.port}}
    elif probe.exec_command:
        result = {"exec": {"command": list(probe.exec_command)}}
    else:
        result = {"tcpSocket": {"port": probe.port}}
    result.update({
        "initialDelaySeconds": probe.initial_delay,
        "periodSeconds": probe.period,
        "timeoutSeconds": probe.timeout,
        "failureThreshold": probe.failure_threshold,
    })
    return result


def _container(env: Environment, app: App) -> dict[str, Any]:
    container: dict[str, Any] = {"name": app.name, "image": app.image}
    if app.command:
        container["command"] = list(app.command)
    if app.args:
        container["args"] = list(app.args)
    if app.ports:
        container["ports"] = [{"name": p.name, "containerPort": p.port, "protocol": p.protocol}
                              for p in app.ports]
    if app.env:
        container["env"] = [{"name": k, "value": v} for k, v in app.env]
    env_from = []
    if app.global_config and env.config:
        env_from.append({"configMapRef": {"name": CONFIG_NAME}})
    if app.global_config and env.secrets:
        env_from.append({"secretRef": {"name": SECRET_NAME}})
    if env_from:
        container["envFrom"] = env_from
    resources = {}
    if app.resources.requests:
        resources["requests"] = dict(app.resources.requests)
    if app.resources.limits:
        resources["limits"] = dict(app.resources.limits)
    if resources:
        container["resources"] = resources
    for key, probe in (("readinessProbe", app.readiness), ("livenessProbe", app.liveness)):
        if (spec := _probe(probe)) is not None:
            container[key] = spec
    if app.volumes:
        container["volumeMounts"] = [{"name": v.name, "mountPath": v.mount_path}
                                     for v in app.volumes]
    container["securityContext"] = {"allowPrivilegeEscalation": False}
    return container


def _pod_template(env: Environment, app: App, labels: Mapping[str, str],
                  selector: Mapping[str, str]) -> dict[str, Any]:
    annotations = {}
    if app.global_config and env.config:
        annotations[CONFIG_CHECKSUM] = config_checksum(env)
    spec: dict[str, Any] = {}
    if app.min_replicas > 1 or (app.autoscale and app.autoscale.max > 1):
        # Replicas on one node die together: spread them, and never stack two while others
        # have room. matchLabelKeys keeps a rollout's new pods from counting the old ones.
        constraint: dict[str, Any] = {
            "maxSkew": 1,
            "topologyKey": "kubernetes.io/hostname",
            "whenUnsatisfiable": "DoNotSchedule",
            "labelSelector": {"matchLabels": dict(selector)},
            # Tainted control-plane nodes would otherwise count as empty domains and cap
            # the app at one replica per worker.
            "nodeTaintsPolicy": "Honor",
        }
        if not app.stateful:
            constraint["matchLabelKeys"] = ["pod-template-hash"]
        spec["topologySpreadConstraints"] = [constraint]
    if app.fs_group is not None:
        # Fresh block volumes belong to root; the app's group must be able to write them.
        spec["securityContext"] = {"fsGroup": app.fs_group}
    spec["containers"] = [_container(env, app)]
    metadata: dict[str, Any] = {"labels": dict(labels)}
    if annotations:
        metadata["annotations"] = annotations
    return {"metadata": metadata, "spec": spec}


def _service_ports(app: App) -> list[dict[str, Any]]:
    ports = []
    for p in app.ports:
        port: dict[str, Any] = {"name": p.name, "port": p.published, "targetPort": p.name,
                                "protocol": p.protocol}
        if app.expose == "node_port" and p.node_port is not None:
            port["nodePort"] = p.node_port
        ports.append(port)
    return ports


LB_TYPE_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-type"
LB_PROTOCOL_ANNOTATION = "service.beta.kubernetes.io/do-loadbalancer-protocol"


def app_context(env: Environment, app: App, colour: str = "blue") -> dict[str, Any]:
    """Everything the app template needs, computed once."""
    labels = app_labels(env, app)
    selector = {"app.kubernetes.io/name": app.name, "app.kubernetes.io/instance": app.name}
    blue_green = app.strategy.kind == "blue_green"
    workload_selector = selector | ({COLOUR_LABEL: colour} if blue_green else {})
    workload_labels = labels | ({COLOUR_LABEL: colour} if blue_green else {})
    service_type = {"cluster": "ClusterIP", "node_port": "NodePort",
                    "load_balancer": "LoadBalancer"}[app.expose]
    annotations = {}
    if app.expose == "load_balancer":
        # A predictable name lets `provision destroy` find the load balancer the CCM created;
        # one no other environment's can equal (lb_names.py), or the CCM takes theirs over.
        annotations[lb_names.NAME_ANNOTATION] = lb_names.load_balancer(env.name, app.name)
        if app.load_balancer == "http":
            # The pinned CCM (v0.1.68) otherwise makes a REGIONAL_NETWORK load balancer with
            # tcp rules (getType, getProtocol in do/loadbalancers.go), which reports no HTTP
            # response codes; REGIONAL with http rules does (the fleet's 5xx gate reads it).
            annotations[LB_TYPE_ANNOTATION] = "REGIONAL"
            annotations[LB_PROTOCOL_ANNOTATION] = "http"
    return {
        "name": app.name,
        "namespace": env.namespace,
        "labels": labels,
        "selector": workload_selector,
        "stateful": app.stateful,
        "workload_kind": "StatefulSet" if app.stateful else "Deployment",
        "workload_name": f"{app.name}-{colour}" if blue_green else app.name,
        "headless_name": f"{app.name}-headless",
        "replicas": None if app.autoscale else app.replicas,
        "strategy_kind": app.strategy.kind,
        "max_surge": app.strategy.max_surge,
        "max_unavailable": app.strategy.max_unavailable,
        "pod_template": _pod_template(env, app, workload_labels, workload_selector),
        "volume_claims": [{
            # Selector labels only: claim templates are immutable, a version label would
            # make every image bump a rejected update.
            "metadata": {"name": v.name, "labels": dict(selector)},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": v.storage_class,
                     "resources": {"requests": {"storage": v.size}}},
        } for v in app.volumes],
        "ports": bool(app.ports),
        "service_type": service_type,
        "service_annotations": annotations,
        "service_selector": workload_selector,
        "service_ports": _service_ports(app),
        "headless_ports": [{"name": p.name, "port": p.port, "targetPort": p.name,
                            "protocol": p.protocol} for p in app.ports],
        "autoscale": app.autoscale,
        "pdb": app.min_replicas > 1,
        "pdb_selector": selector,
    }


def shared(env: Environment) -> ManifestFile:
    """The namespace and the shared ConfigMap."""
    text = render(
        "manifests/shared.yaml.j2",
        namespace=env.namespace,
        namespace_labels={
            "app.kubernetes.io/part-of": env.name,
            "app.kubernetes.io/managed-by": MANAGED_BY,
            # No privileged or host-network pods among the apps: the metadata-service guard on
            # the nodes relies on app traffic coming from the pod network.
            "pod-security.kubernetes.io/enforce": "baseline",
            "pod-security.kubernetes.io/warn": "restricted",
        },
        config_name=CONFIG_NAME,
        labels={"app.kubernetes.io/part-of": env.name, "app.kubernetes.io/managed-by": MANAGED_BY},
        config=dict(env.config),
    )
    return ManifestFile("00-shared.yaml", text)


def all_files(env: Environment, colours: Mapping[str, str] | None = None) -> list[ManifestFile]:
    """The shared file and one file per app; ``colours`` picks blue/green colours."""
    files = [shared(env)]
    for app in env.apps:
        colour = (colours or {}).get(app.name, "blue")
        files.append(ManifestFile(f"app-{app.name}.yaml",
                                  render("manifests/app.yaml.j2", **app_context(env, app, colour))))
    return files
