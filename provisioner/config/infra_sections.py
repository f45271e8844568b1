"""Reading the infrastructure half of an environment file: cloud, cluster, nodes, access."""

from __future__ import annotations

from typing import cast

from provisioner.config import checks
from provisioner.config.model import (
    Access,
    Cni,
    ControlPlane,
    DigitalOcean,
    EndpointKind,
    Kubernetes,
    PoolAutoscale,
    State,
    Taint,
    TaintEffect,
    WorkerPool,
)
from provisioner.config.reader import Section
from provisioner.config.yamlpos import Mapping, Node

_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def read_digitalocean(top: Section) -> DigitalOcean:
    """The ``digitalocean:`` section."""
    s = top.section("digitalocean", ("region", "ssh_keys", "vpc_cidr", "tags", "project", "image"),
                    required=True, hint="give at least region, ssh_keys and vpc_cidr")
    return DigitalOcean(
        region=s.text("region", "nyc3", checks.region, required=True, hint="e.g. region: fra1"),
        ssh_keys=s.texts("ssh_keys", checks.ssh_key, required=True,
                         hint="list the fingerprints of keys uploaded to DigitalOcean"),
        vpc_cidr=s.text("vpc_cidr", "10.10.0.0/16", checks.vpc_cidr),
        tags=s.texts("tags", checks.user_tag),
        project=s.text("project", None, checks.project_name),
        image=s.text("image", "ubuntu-24-04-x64", checks.droplet_image),
    )


def read_kubernetes(top: Section) -> Kubernetes:
    """The ``kubernetes:`` section."""
    s = top.section("kubernetes", ("version", "pod_cidr", "service_cidr", "cni"), required=True,
                    hint='e.g. kubernetes: {version: "1.36.2"}')
    return Kubernetes(
        version=s.text("version", "1.36.0", checks.kubernetes_version, required=True,
                       hint='e.g. version: "1.36.2"').removeprefix("v"),
        pod_cidr=s.text("pod_cidr", "10.244.0.0/16", checks.private_cidr),
        service_cidr=s.text("service_cidr", "10.96.0.0/12", checks.private_cidr),
        cni=cast(Cni, s.choice("cni", "calico", ("calico", "flannel"))),
    )


def read_control_plane(top: Section) -> ControlPlane:
    """The ``control_plane:`` section; counts are odd so etcd keeps a majority."""
    s = top.section("control_plane", ("count", "size", "endpoint"))
    count = s.integer("count", 3, 1, 7)
    if s.has("count") and count not in (1, 3, 5):
        hint = ("etcd needs a majority: an even count tolerates no more failures than one"
                f" node fewer; use {count - 1 if count > 1 else 1} or {count + 1}"
                if count % 2 == 0 else "use 1, 3 or 5")
        top.issues.add(s.line_of("count"), s.sub("count"), f"{count} control-plane nodes", hint)
    return ControlPlane(
        count=count,
        size=s.text("size", "s-2vcpu-4gb", checks.control_plane_size),
        endpoint=cast(EndpointKind, s.choice("endpoint", "floating_ip",
                                             ("floating_ip", "load_balancer"))),
    )


def _taint(pool: Section, node: Node, path: str) -> Taint | None:
    t = Section(pool.issues, node, path, ("key", "value", "effect"))
    if not isinstance(node, Mapping):
        return None
    key = t.text("key", "", checks.qualified_name, required=True, hint="e.g. key: dedicated")
    value = t.text("value", "", checks.label_value)
    effect = t.choice("effect", "NoSchedule", _EFFECTS)
    return Taint(key, value, cast(TaintEffect, effect)) if key else None


def read_worker_pools(top: Section) -> tuple[WorkerPool, ...]:
    """The ``worker_pools:`` list."""
    pools = []
    items = top.items_of("worker_pools", required=True,
                         hint="add a pool: worker_pools: [{name: general, count: 3, size: ...}]")
    for index, node in enumerate(items):
        s = Section(top.issues, node, top.sub("worker_pools") + f"[{index}]",
                    ("name", "count", "size", "labels", "taints", "replace", "autoscale"))
        taints = tuple(t for i, n in enumerate(s.items_of("taints"))
                       if (t := _taint(s, n, s.sub("taints") + f"[{i}]")) is not None)
        replace = s.section("replace", ("at_once", "drain_timeout"))
        autoscale = _pool_autoscale(s)
        if autoscale is not None and s.has("count"):
            s.issues.add(s.line_of("count"), s.sub("count"),
                         "is set with autoscale (an autoscaled pool has autoscale.min to "
                         "autoscale.max workers)", "remove count")
        pools.append(WorkerPool(
            name=s.text("name", f"pool{index}", checks.dns_label, required=True,
                        hint="e.g. name: general"),
            count=(autoscale.min if autoscale is not None else
                   s.integer("count", 1, 0, 500, required=not s.has("autoscale"),
                             hint="e.g. count: 3")),
            size=s.text("size", "s-2vcpu-4gb", checks.size, required=True,
                        hint="e.g. size: s-4vcpu-8gb"),
            labels=s.pairs("labels", checks.node_label_key, checks.label_value),
            taints=taints,
            replace_at_once=replace.integer("at_once", 1, 1, 500, hint="e.g. at_once: 1"),
            drain_timeout=replace.integer("drain_timeout", 600, 1, 86400,
                                          hint="seconds, e.g. drain_timeout: 600"),
            autoscale=autoscale,
        ))
    return tuple(pools)


def _pool_autoscale(pool: Section) -> PoolAutoscale | None:
    """A pool's ``autoscale: {min, max}``, or None when the pool has a fixed count."""
    if not pool.has("autoscale"):
        return None
    s = pool.section("autoscale", ("min", "max"))
    low = s.integer("min", 0, 0, 500, required=True, hint="e.g. autoscale: {min: 2, max: 10}")
    high = s.integer("max", low + 1, 1, 500, required=True,
                     hint="e.g. autoscale: {min: 2, max: 10}")
    if high <= low:
        s.issues.add(s.line_of("max"), s.sub("max"), f"{high} is not above min ({low})",
                     f"raise max above {low}, or drop autoscale and set count: {low}")
        return None
    return PoolAutoscale(low, high)


def read_access(top: Section) -> Access:
    """The ``access:`` section: no defaults, so nobody opens the API to the world by accident."""
    s = top.section("access", ("api_cidrs", "ssh_cidrs"), required=True,
                    hint="say who may reach the API and SSH, e.g. api_cidrs: [203.0.113.0/24]")
    return Access(
        api_cidrs=s.texts("api_cidrs", checks.cidr, required=True,
                          hint="e.g. [203.0.113.0/24]; 0.0.0.0/0 opens it to everyone"),
        ssh_cidrs=s.texts("ssh_cidrs", checks.cidr),
    )


def read_state(top: Section) -> State:
    """The ``state:`` section: where Terraform keeps its state."""
    s = top.section("state", ("backend", "bucket", "key", "region", "endpoint"))
    backend = s.choice("backend", "local", ("local", "spaces"))
    if backend == "local":
        for key in ("bucket", "key", "region", "endpoint"):
            if s.has(key):
                top.issues.add(s.line_of(key), s.sub(key), "only used with backend: spaces",
                               "remove it, or set backend: spaces")
        return State()
    return State(
        backend="spaces",
        bucket=s.text("bucket", None, checks.dns_subdomain, required=True,
                      hint="the Spaces bucket that holds state"),
        key=s.text("key", None, checks.state_key),
        region=s.text("region", None, checks.region, required=True,
                      hint="the bucket's region, e.g. fra1"),
        endpoint=s.text("endpoint", None, checks.url),
    )
