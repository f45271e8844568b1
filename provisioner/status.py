"""`provision status`: one screen of what runs, read from the cloud and the cluster.

Each source is optional: without a token the droplets are not listed, without a reachable
cluster the nodes and apps are not; what could not be read says why instead of failing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from provisioner.config.model import Environment


def cloud_status(env: Environment, token: str) -> dict[str, Any]:
    """Droplets by role with state and addresses, and who holds the floating IP."""
    import digitalocean

    manager = digitalocean.Manager(token=token)
    droplets = manager.get_all_droplets(tag_name=f"provision:{env.name}")
    by_id = {}
    roles: dict[str, list[dict[str, Any]]] = {"control-plane": [], "workers": []}
    for d in sorted(droplets, key=lambda d: d.name):
        role = "control-plane" if f"provision:{env.name}:controller" in (d.tags or []) \
            else "workers"
        entry = {"name": d.name, "id": d.id, "status": d.status, "size": d.size_slug,
                 "public_ip": d.ip_address, "private_ip": d.private_ip_address}
        roles[role].append(entry)
        by_id[int(d.id)] = d.name
    holder = None
    endpoint = None
    for ip in manager.get_all_floating_ips():
        droplet = ip.droplet or {}
        if droplet and int(droplet.get("id", 0)) in by_id:
            endpoint, holder = ip.ip, by_id[int(droplet["id"])]
    return {"droplets": roles, "floating_ip": endpoint, "floating_ip_holder": holder}


def cluster_status(env: Environment, kubeconfig: Path) -> dict[str, Any]:
    """Nodes Ready, apps desired / updated / available, and the last deploy."""
    from kubernetes.client import AppsV1Api, CoreV1Api

    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.pipeline.deploy_stage import LAST_DEPLOY
    from provisioner.workloads.objects import parent_name

    api = api_client(kubeconfig)
    core, apps = CoreV1Api(api), AppsV1Api(api)
    nodes = []
    for node in core.list_node(_request_timeout=10).items:
        ready = next((c for c in ((node.status.conditions if node.status else None) or [])
                      if c.type == "Ready"), None)
        nodes.append({"name": node.metadata.name if node.metadata else "?",
                      "ready": bool(ready and ready.status == "True")})
    workloads = []
    selector = "app.kubernetes.io/managed-by=provision"
    for item in apps.list_namespaced_deployment(env.namespace, label_selector=selector,
                                                _request_timeout=10).items:
        spec, st = item.spec, item.status
        workloads.append({"name": item.metadata.name if item.metadata else "?",
                          "kind": "Deployment",
                          "desired": (spec.replicas if spec else 0) or 0,
                          "updated": (st.updated_replicas if st else 0) or 0,
                          "available": (st.available_replicas if st else 0) or 0})
    for sts in apps.list_namespaced_stateful_set(env.namespace, label_selector=selector,
                                                 _request_timeout=10).items:
        sspec, sst = sts.spec, sts.status
        workloads.append({"name": sts.metadata.name if sts.metadata else "?",
                          "kind": "StatefulSet",
                          "desired": (sspec.replicas if sspec else 0) or 0,
                          "updated": (sst.updated_replicas if sst else 0) or 0,
                          "available": (sst.available_replicas if sst else 0) or 0})
    last = None
    try:
        parent = core.read_namespaced_config_map(parent_name(env), env.namespace,
                                                 _request_timeout=10)
        raw = ((parent.metadata.annotations if parent.metadata else None) or {}).get(LAST_DEPLOY)
        last = json.loads(raw) if raw else None
    except Exception:  # no deploy yet, or not readable: the rest of the status still stands
        last = None
    return {"nodes": sorted(nodes, key=lambda n: n["name"]),
            "apps": sorted(workloads, key=lambda w: w["name"]), "last_deploy": last}


def collect(env: Environment, token: str | None, kubeconfig: Path | None) -> dict[str, Any]:
    """Everything status shows; unreadable parts carry an ``error``."""
    result: dict[str, Any] = {"environment": env.name}
    if token:
        try:
            result["cloud"] = cloud_status(env, token)
        except Exception as e:  # reported, not raised: status must show what it can
            result["cloud"] = {"error": f"{type(e).__name__}: {e}"}
    else:
        result["cloud"] = {"error": "no DIGITALOCEAN_TOKEN: droplets not listed"}
    if kubeconfig is not None and kubeconfig.is_file():
        try:
            result["cluster"] = cluster_status(env, kubeconfig)
        except Exception as e:  # an unreachable cluster is a status, not a crash
            result["cluster"] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}
    else:
        result["cluster"] = {"error": "no kubeconfig yet: run `provision up`"}
    return result


def format_status(status: dict[str, Any]) -> str:
    """The one screen."""
    lines = [f"Environment {status['environment']}"]
    cloud = status["cloud"]
    if "error" in cloud:
        lines.append(f"  droplets: {cloud['error']}")
    else:
        for role, droplets in cloud["droplets"].items():
            lines.append(f"  {role}:")
            for d in droplets:
                mark = "  <- floating IP" if d["name"] == cloud["floating_ip_holder"] else ""
                lines.append(f"    {d['name']:<28} {d['status']:<8} {d['size'] or '':<13} "
                             f"{d['public_ip'] or '-':<16} {d['private_ip'] or '-'}{mark}")
        if cloud["floating_ip"]:
            lines.append(f"  floating IP {cloud['floating_ip']} on "
                         f"{cloud['floating_ip_holder']}")
    cluster = status["cluster"]
    if "error" in cluster:
        lines.append(f"  cluster: {cluster['error']}")
    else:
        ready = sum(1 for n in cluster["nodes"] if n["ready"])
        lines.append(f"  nodes: {ready}/{len(cluster['nodes'])} Ready"
                     + "".join(f"; {n['name']} NotReady" for n in cluster["nodes"]
                               if not n["ready"]))
        lines.append("  apps:             desired  updated  available")
        for w in cluster["apps"]:
            lines.append(f"    {w['name']:<16} {w['desired']:>7} {w['updated']:>8} "
                         f"{w['available']:>10}")
        last = cluster["last_deploy"]
        if last:
            lines.append(f"  last deploy: {last.get('at')} by {last.get('by')}: "
                         + ", ".join(f"{k}={v}" for k, v in (last.get("images") or {}).items()))
    return "\n".join(lines) + "\n"
