"""The offline plan: what the environment file declares, as the user will review it.

Built from the same values the render stage hands to Terraform (firewall rules, droplet
names), so the plan cannot disagree with what would be applied.
"""

from __future__ import annotations

from typing import Any

from provisioner import lb_names
from provisioner.config.model import App, Environment
from provisioner.render.firewall import all_rules
from provisioner.render.names import controller_names, worker_names


def _app(app: App) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": app.name,
        "kind": "StatefulSet" if app.stateful else "Deployment",
        "image": app.image,
        "replicas": app.replicas,
        "expose": app.expose,
        "strategy": app.strategy.kind,
        "ports": [{"name": p.name, "port": p.published, "node_port": p.node_port}
                  for p in app.ports],
        "volumes": [{"name": v.name, "size": v.size} for v in app.volumes],
    }
    if app.autoscale:
        entry["autoscale"] = {"min": app.autoscale.min, "max": app.autoscale.max,
                              "cpu_percent": app.autoscale.cpu_percent}
    return entry


def offline_plan(env: Environment) -> dict[str, Any]:
    """Everything ``up`` would create for ``env``, grouped as a reviewer reads it."""
    controllers = controller_names(env)
    workers = worker_names(env)
    pools = [{"name": pool.name, "size": pool.size, "count": pool.count,
              "droplets": workers[pool.name],
              "labels": dict(pool.labels),
              "taints": [f"{t.key}={t.value}:{t.effect}" for t in pool.taints]}
             for pool in env.worker_pools]
    return {
        "environment": env.name,
        "region": env.digitalocean.region,
        "kubernetes": {"version": env.kubernetes.version, "cni": env.kubernetes.cni,
                       "pod_cidr": env.kubernetes.pod_cidr,
                       "service_cidr": env.kubernetes.service_cidr},
        "vpc": {"name": f"{env.name}-vpc", "cidr": env.digitalocean.vpc_cidr},
        "control_plane": {"size": env.control_plane.size, "droplets": controllers},
        "worker_pools": pools,
        "api_endpoint": {
            "kind": env.control_plane.endpoint,
            "name": lb_names.api_load_balancer(env.name),
            "failover": ("keepalived moves the floating IP to a healthy control-plane node"
                         if env.control_plane.endpoint == "floating_ip"
                         else "the load balancer health-checks every control-plane node"),
        },
        "firewalls": {role: [{"purpose": r.purpose, "protocol": r.protocol,
                              "ports": r.port_range or "-",
                              "sources": [*r.source_addresses,
                                          *(f"tag:{t}" for t in r.source_tags)]}
                             for r in rules]
                      for role, rules in all_rules(env).items()},
        "apps": [_app(app) for app in env.apps],
        "namespace": env.namespace,
        "config_keys": [key for key, _ in env.config],
        "secrets": [{"key": s.key, "from_env": s.from_env} for s in env.secrets],
        "deploy_windows": [
            {"days": list(w.days), "from": w.start.strftime("%H:%M"),
             "to": w.end.strftime("%H:%M"), "timezone": w.timezone}
            for w in env.deploy_policy.windows],
        "freezes": [{"from": f.start.isoformat(), "to": f.end.isoformat(), "reason": f.reason}
                    for f in env.deploy_policy.freezes],
        "windows_apply_to": list(env.deploy_policy.applies_to),
        "deletion_protection": env.deletion_protection,
    }
