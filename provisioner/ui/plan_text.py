"""The offline plan as a person reads it."""

from __future__ import annotations

from typing import Any


def _replicas(app: dict[str, Any]) -> str:
    scale = app.get("autoscale")
    if scale:
        return f"{scale['min']}-{scale['max']} replicas (autoscale at {scale['cpu_percent']}% CPU)"
    return f"{app['replicas']} replica" + ("" if app["replicas"] == 1 else "s")


def format_offline_plan(plan: dict[str, Any]) -> str:
    """Plain text, one fact per line, grouped by what gets created."""
    k8s = plan["kubernetes"]
    cp = plan["control_plane"]
    lines = [
        f"Environment {plan['environment']} in {plan['region']}: Kubernetes {k8s['version']}"
        f" ({k8s['cni']}), pods {k8s['pod_cidr']}, services {k8s['service_cidr']}",
        "",
        "Would create:",
        f"  + VPC {plan['vpc']['name']} ({plan['vpc']['cidr']})",
        f"  + {len(cp['droplets'])} control-plane droplet(s), {cp['size']}: "
        + ", ".join(cp["droplets"]),
    ]
    for pool in plan["worker_pools"]:
        extra = ""
        if pool["labels"]:
            extra += " labels " + ",".join(f"{k}={v}" for k, v in pool["labels"].items())
        if pool["taints"]:
            extra += " taints " + ",".join(pool["taints"])
        lines.append(f"  + worker pool {pool['name']}: {pool['count']} x {pool['size']}{extra}"
                     + (": " + ", ".join(pool["droplets"]) if pool["droplets"] else ""))
    endpoint = plan["api_endpoint"]
    kind = "floating IP" if endpoint["kind"] == "floating_ip" else "load balancer"
    lines.append(f"  + API endpoint: {kind} ({endpoint['failover']})")
    for role, rules in plan["firewalls"].items():
        lines.append(f"  + firewall {plan['environment']}-{role}:")
        for rule in rules:
            lines.append(f"      {rule['protocol']:<4} {rule['ports']:<11} from "
                         f"{', '.join(rule['sources'])}  # {rule['purpose']}")
    if plan["apps"]:
        lines += ["", f"Apps in namespace {plan['namespace']}:"]
        for app in plan["apps"]:
            ports = ", ".join(f"{p['name']}:{p['port']}" for p in app["ports"]) or "no ports"
            volumes = "".join(f", volume {v['name']} {v['size']}" for v in app["volumes"])
            lines.append(f"  + {app['name']} ({app['kind']}, {_replicas(app)}, {app['strategy']},"
                         f" {app['expose']}: {ports}{volumes})  {app['image']}")
    if plan["config_keys"] or plan["secrets"]:
        lines.append(f"  shared config: {', '.join(plan['config_keys']) or '-'}; secrets from "
                     "environment: "
                     + (", ".join(f"{s['key']}<-${s['from_env']}" for s in plan["secrets"]) or "-"))
    governed = ", ".join(plan["windows_apply_to"]) or "nothing"
    if plan["deploy_windows"]:
        lines += ["", f"Changes allowed (to {governed}):"]
        for w in plan["deploy_windows"]:
            lines.append(f"  {','.join(w['days'])} {w['from']}-{w['to']} {w['timezone']}")
    elif plan["freezes"]:
        lines += ["", f"Changes frozen (to {governed}):"]
    for f in plan["freezes"]:
        lines.append(f"  frozen {f['from']} to {f['to']}" + (f" ({f['reason']})" if f["reason"]
                                                              else ""))
    if plan["deletion_protection"]:
        lines += ["", "Deletion protection is on: `provision destroy` needs --force."]
    return "\n".join(lines) + "\n"
