"""`provision status`: one screen of what runs, read from the cloud and the cluster.

Each source is optional: without a token the droplets are not listed, without a reachable
cluster the nodes and apps are not; what could not be read says why instead of failing.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

from provisioner.cloud.inventory import inventory
from provisioner.config.model import Environment


def cluster_status(env: Environment, kubeconfig: Path) -> dict[str, Any]:
    """Nodes Ready, apps desired / updated / available, and the last deploy."""
    from provisioner.bootstrap.readiness import listed_nodes
    from provisioner.kube import Kube, KubeError
    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.pipeline.deploy_stage import LAST_DEPLOY
    from provisioner.workloads.objects import parent_name

    kube = Kube(api_client(kubeconfig), timeout=10, attempts=2)
    nodes = [{"name": node.name or "?", "ready": node.ready} for node in listed_nodes(kube)]
    workloads = []
    selector = [("labelSelector", "app.kubernetes.io/managed-by=provision")]
    for kind, resource in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        listing = kube.request("GET", f"/apis/apps/v1/namespaces/{env.namespace}/{resource}",
                               selector, verb=f"list {resource}")
        for item in listing.get("items") or []:
            spec, st = item.get("spec") or {}, item.get("status") or {}
            workloads.append({"name": (item.get("metadata") or {}).get("name") or "?",
                              "kind": kind, "desired": int(spec.get("replicas") or 0),
                              "updated": int(st.get("updatedReplicas") or 0),
                              "available": int(st.get("availableReplicas") or 0)})
    try:
        parent = kube.request("GET", f"/api/v1/namespaces/{env.namespace}/configmaps/"
                              f"{parent_name(env)}", verb="get configmaps")
        raw = ((parent.get("metadata") or {}).get("annotations") or {}).get(LAST_DEPLOY)
        last = json.loads(raw) if raw else None
    except (KubeError, ValueError):  # no deploy yet, or unreadable: the rest still stands
        last = None
    return {"nodes": sorted(nodes, key=lambda n: n["name"]),
            "apps": sorted(workloads, key=lambda w: w["name"]), "last_deploy": last}


def collect(env: Environment, token: str | None, kubeconfig: Path | None) -> dict[str, Any]:
    """Everything status shows; unreadable parts carry an ``error``."""
    result: dict[str, Any] = {"environment": env.name}

    def cloud() -> None:
        try:
            result["cloud"] = inventory(env, token or "")
        except Exception as e:  # reported, not raised: status must show what it can
            result["cloud"] = {"error": f"{type(e).__name__}: {e}"}

    def cluster() -> None:
        try:
            result["cluster"] = cluster_status(env, kubeconfig or Path())
        except Exception as e:  # an unreachable cluster is a status, not a crash
            result["cluster"] = {"error": f"{type(e).__name__}: {str(e)[:200]}"}

    # The two sources are independent: read them at the same time (one waits on the
    # cloud's API, the other on the cluster's). Their clients are imported first, here:
    # two threads importing them at once failed with ImportError from a half-initialised
    # `requests.utils` (both clients import `requests`).
    if token:
        import digitalocean  # noqa: F401
    if kubeconfig is not None and kubeconfig.is_file():
        import kubernetes.config  # noqa: F401
    readers = []
    if token:
        readers.append(threading.Thread(target=cloud, daemon=True))
    else:
        result["cloud"] = {"error": "no DIGITALOCEAN_TOKEN: droplets not listed"}
    if kubeconfig is not None and kubeconfig.is_file():
        readers.append(threading.Thread(target=cluster, daemon=True))
    else:
        result["cluster"] = {"error": "no kubeconfig yet: run `provision up`"}
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    return {key: result[key] for key in ("environment", "cloud", "cluster")}


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
