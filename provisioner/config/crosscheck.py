"""Checks that span sections: overlaps, uniqueness and combinations that cannot work."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable

from provisioner import lb_names
from provisioner.config.model import App, Environment
from provisioner.config.reader import Issues

Locate = Callable[[str], int]

# Longest suffix provision adds to the environment name for a droplet: "-cp-5", "-<pool>-NNN".
_HOSTNAME_MAX = 63


def check_environment(env: Environment, issues: Issues, locate: Locate) -> None:
    """Record every cross-section problem of an already-read environment."""
    _networks(env, issues, locate)
    _network_sizes(env, issues, locate)
    _endpoint(env, issues, locate)
    _pools(env, issues, locate)
    _apps(env, issues, locate)


def _networks(env: Environment, issues: Issues, locate: Locate) -> None:
    named = [("digitalocean.vpc_cidr", env.digitalocean.vpc_cidr),
             ("kubernetes.pod_cidr", env.kubernetes.pod_cidr),
             ("kubernetes.service_cidr", env.kubernetes.service_cidr)]
    for i, (path_a, a) in enumerate(named):
        for path_b, b in named[i + 1:]:
            try:
                overlap = ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))
            except ValueError:
                continue  # already reported as malformed
            if overlap:
                issues.add(locate(path_b), path_b, f"{b} overlaps {path_a} ({a})",
                           "pick ranges that do not overlap, e.g. VPC 10.10.0.0/16, pods "
                           "10.244.0.0/16, services 10.96.0.0/12")


def _node_count(env: Environment) -> int:
    return env.control_plane.count + sum(p.count for p in env.worker_pools)


def _network_sizes(env: Environment, issues: Issues, locate: Locate) -> None:
    nodes = _node_count(env)
    try:
        vpc = ipaddress.ip_network(env.digitalocean.vpc_cidr)
        pods = ipaddress.ip_network(env.kubernetes.pod_cidr)
        services = ipaddress.ip_network(env.kubernetes.service_cidr)
    except ValueError:
        return  # already reported as malformed
    # DigitalOcean keeps a few addresses of every VPC; leave room for load balancers too.
    if vpc.num_addresses - 8 < nodes + 4:
        issues.add(locate("digitalocean.vpc_cidr"), "digitalocean.vpc_cidr",
                   f"{vpc} has room for {max(vpc.num_addresses - 12, 0)} droplets, the "
                   f"environment runs {nodes}", "use a larger range, e.g. a /20")
    # Each node takes a /24 of the pod network (kube-controller-manager's default).
    if pods.prefixlen > 20 or 2 ** (24 - min(pods.prefixlen, 24)) < nodes:
        issues.add(locate("kubernetes.pod_cidr"), "kubernetes.pod_cidr",
                   f"{pods} is too small: every node takes a /24 of it",
                   f"use a /20 or larger (up to 4096 nodes per /12); {nodes} nodes now")
    if not 12 <= services.prefixlen <= 24:
        issues.add(locate("kubernetes.service_cidr"), "kubernetes.service_cidr",
                   f"a /{services.prefixlen} service range is not allowed",
                   "kubeadm takes /12 to /24; the default 10.96.0.0/12 is fine")


def _endpoint(env: Environment, issues: Issues, locate: Locate) -> None:
    if env.control_plane.endpoint == "load_balancer" and not any(
            c in ("0.0.0.0/0", "::/0") for c in env.access.api_cidrs):
        issues.add(locate("control_plane.endpoint"), "control_plane.endpoint",
                   "a load balancer cannot restrict the API to access.api_cidrs",
                   "nodes reach it from addresses known only after they exist; use "
                   "endpoint: floating_ip, or set api_cidrs: [0.0.0.0/0] to accept that")


def _pools(env: Environment, issues: Issues, locate: Locate) -> None:
    seen: dict[str, int] = {}
    for index, pool in enumerate(env.worker_pools):
        path = f"worker_pools[{index}].name"
        if pool.name in seen:
            issues.add(locate(path), path, f"pool name {pool.name!r} is used twice",
                       f"already used by worker_pools[{seen[pool.name]}]")
        seen.setdefault(pool.name, index)
        longest = f"{env.name}-{pool.name}-{max(pool.count, 1)}"
        if len(longest) > _HOSTNAME_MAX:
            issues.add(locate(path), path, f"droplet name {longest!r} exceeds 63 characters",
                       "shorten the environment or pool name")
        if pool.name == "cp":
            issues.add(locate(path), path, "'cp' names the control-plane droplets",
                       "choose another pool name")
    if env.apps and not any(pool.count > 0 for pool in env.worker_pools):
        issues.add(locate("worker_pools"), "worker_pools", "no worker nodes to run the apps on",
                   "give at least one pool a count above 0")


def _app_names(app: App) -> list[str]:
    """Object names an app claims, so two apps never collide (blue/green adds colours)."""
    if app.strategy.kind == "blue_green":
        return [app.name, f"{app.name}-blue", f"{app.name}-green"]
    return [app.name]


def _apps(env: Environment, issues: Issues, locate: Locate) -> None:
    claimed: dict[str, str] = {}
    node_ports: dict[int, str] = {}
    secret_keys = {s.key for s in env.secrets}
    for key, _ in env.config:
        if key in secret_keys:
            issues.add(locate(f"secrets.{key}"), f"secrets.{key}", f"{key!r} is also in config",
                       "a name is either a setting or a secret, not both")
    for index, app in enumerate(env.apps):
        base = f"apps[{index}]"
        for name in _app_names(app):
            if name in claimed:
                issues.add(locate(f"{base}.name"), f"{base}.name",
                           f"{app.name!r} collides with app {claimed[name]!r} (object {name!r})",
                           "app names must be unique, and blue/green apps also use -blue/-green")
            claimed.setdefault(name, app.name)
        _one_app(app, base, issues, locate, node_ports)
        _load_balancer_name(env, app, base, issues, locate)


def _load_balancer_name(env: Environment, app: App, base: str, issues: Issues,
                        locate: Locate) -> None:
    """An app's load balancer may not be named like the API's: the CCM would take it over.

    The cloud controller manager finds a Service's load balancer by name among all of the
    account's and updates the one it finds (lb_names.py), here the API's own.
    """
    if app.expose != "load_balancer" or env.control_plane.endpoint != "load_balancer":
        return
    name = lb_names.load_balancer(env.name, app.name)
    if name == lb_names.api_load_balancer(env.name):
        issues.add(locate(f"{base}.name"), f"{base}.name",
                   f"app {app.name!r} would name its load balancer {name!r}, the name of the "
                   "API's load balancer (the cloud controller manager would take it over)",
                   f"rename the app, e.g. '{app.name}-app', or use expose: node_port")


def _one_app(app: App, base: str, issues: Issues, locate: Locate,
             node_ports: dict[int, str]) -> None:
    names = [p.name for p in app.ports]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        issues.add(locate(f"{base}.ports"), f"{base}.ports", f"port name {dup!r} is used twice",
                   "each port needs its own name")
    published = [(p.published, p.protocol) for p in app.ports]
    for number, protocol in sorted({x for x in published if published.count(x) > 1}):
        issues.add(locate(f"{base}.ports"), f"{base}.ports",
                   f"the Service would publish {protocol} {number} twice",
                   "give each port its own service_port")
    mounts = [v.mount_path for v in app.volumes]
    for mount in sorted({m for m in mounts if mounts.count(m) > 1}):
        issues.add(locate(f"{base}.volumes"), f"{base}.volumes", f"two volumes mount at {mount}",
                   "each volume needs its own mount_path")
    if app.expose != "cluster" and not app.ports:
        issues.add(locate(f"{base}.expose"), f"{base}.expose", f"expose: {app.expose} needs ports",
                   "add ports: [{name: http, port: 8080}]")
    for i, port in enumerate(app.ports):
        path = f"{base}.ports[{i}].node_port"
        if port.node_port is None:
            if app.expose == "node_port":
                issues.add(locate(f"{base}.ports[{i}]"), path, "is required with expose: node_port",
                           "pick a port in 30000-32767 so the firewall can open exactly it")
            continue
        if app.expose != "node_port":
            issues.add(locate(path), path, f"node_port with expose: {app.expose}",
                       "set expose: node_port, or remove node_port")
        elif port.node_port in node_ports:
            issues.add(locate(path), path, f"node port {port.node_port} is already used by "
                       f"{node_ports[port.node_port]!r}", "each node port can be used once")
        node_ports.setdefault(port.node_port, app.name)
    if app.autoscale and "cpu" not in dict(app.resources.requests):
        issues.add(locate(f"{base}.autoscale"), f"{base}.autoscale",
                   "CPU autoscaling needs a CPU request",
                   "add resources: {requests: {cpu: 250m}}")
    if app.stateful and app.strategy.kind == "blue_green":
        issues.add(locate(f"{base}.strategy"), f"{base}.strategy",
                   "blue_green cannot run with volumes",
                   "two colours cannot share volumes; use rolling")
