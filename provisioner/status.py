"""`provision status`: one screen of what runs, read from the cloud and the cluster.

Each source is optional: without a token the droplets are not listed, without a kubeconfig
yet the nodes and apps are not; what could not be read says why instead of failing. A
source that is there but cannot be used (a kubeconfig or infrastructure record that is not
what provision writes, a cluster or API that does not answer) is shown as such and makes
the command exit non-zero (see `problems`): a script reading status must not take a
half-read screen for a healthy one.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from pathlib import Path
from typing import Any

from provisioner import clock
from provisioner.cloud.inventory import inventory
from provisioner.config.model import Environment
from provisioner.node_facts import list_nodes, parse_instant

# How a source that is not shown came to be missing.
ABSENT = "absent"  # not made yet (no token exported, no `up` run): exit 0
UNREADABLE = "unreadable"  # a local file is there but cannot be used: the user's to fix, exit 2
UNREACHABLE = "unreachable"  # an API failed or refused: exit 1


class _Unreadable(Exception):
    """The kubeconfig could not be loaded into a client."""


def etcd_member(kube: Any, node: str) -> str:
    """``Ready``, ``not Ready`` or ``missing``: the node's etcd as its mirror pod shows it.

    kubeadm runs etcd on every control-plane node as the static pod ``etcd`` whose mirror
    pod the kubelet names ``etcd-<node name>`` in kube-system (kubernetes/kubernetes
    cmd/kubeadm/app/phases/etcd/local.go at commit 5f3bc7cdab9b, the container
    ``kubeadmconstants.Etcd``; pkg/kubelet/config/common.go at commit 869cfacbd0d0,
    generatePodName appends the node name).
    A pod of that name that is not the kubelet's mirror of it (`is_mirror_of`) is not the
    node's etcd: ``missing``.
    """
    from provisioner.cluster.etcd_members import is_mirror_of
    from provisioner.kube import KubeError

    try:
        pod = kube.request("GET", f"/api/v1/namespaces/kube-system/pods/etcd-{node}",
                           verb="get pods in kube-system")
    except KubeError as e:
        if e.status == 404:
            return "missing"
        raise
    if not is_mirror_of(pod, node):
        return "missing"
    conditions = (pod.get("status") or {}).get("conditions") or []
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
    return "Ready" if ready else "not Ready"


def cluster_status(env: Environment, kubeconfig: Path) -> dict[str, Any]:
    """Nodes (Ready, kubelet, cordoned; etcd and VRRP state of control-plane nodes), apps
    desired / updated / available, and the last deploy."""
    from provisioner.kube import Kube, KubeError
    from provisioner.pipeline.cluster_stage import api_client
    from provisioner.pipeline.deploy_stage import LAST_DEPLOY
    from provisioner.render.manifests import COLOUR_LABEL
    from provisioner.workloads.objects import parent_name

    try:
        client = api_client(kubeconfig)
    except Exception as e:  # the client's ConfigException, OSError, ValueError, KeyError ...
        raise _Unreadable(" ".join(str(e).split())[:200] or type(e).__name__) from e
    kube = Kube(client, timeout=10, attempts=2)
    nodes = []
    for node in list_nodes(kube):
        entry: dict[str, Any] = {
            "name": node.name, "ready": node.ready, "kubelet": node.kubelet or None,
            "role": "control-plane" if node.control_plane else "worker",
            "cordoned": node.cordoned}
        if node.control_plane:
            entry["etcd"] = etcd_member(kube, node.name)
            if env.control_plane.endpoint == "floating_ip":  # else no keepalived runs
                entry["vrrp_state"] = node.vrrp_state
        nodes.append(entry)
    workloads = []
    selector = [("labelSelector", "app.kubernetes.io/managed-by=provision")]
    for kind, resource in (("Deployment", "deployments"), ("StatefulSet", "statefulsets")):
        listing = kube.request("GET", f"/apis/apps/v1/namespaces/{env.namespace}/{resource}",
                               selector, verb=f"list {resource}")
        for item in listing.get("items") or []:
            spec, st = item.get("spec") or {}, item.get("status") or {}
            meta = item.get("metadata") or {}
            pod = ((spec.get("template") or {}).get("spec") or {})
            workloads.append({"name": meta.get("name") or "?",
                              "kind": kind, "desired": int(spec.get("replicas") or 0),
                              "updated": int(st.get("updatedReplicas") or 0),
                              "available": int(st.get("availableReplicas") or 0),
                              "ready": int(st.get("readyReplicas") or 0),
                              "images": [c.get("image") for c in pod.get("containers") or []
                                         if c.get("image")],
                              # blue/green apps run one workload a colour (its pods and
                              # selector carry it); other apps have none
                              "colour": ((spec.get("selector") or {}).get("matchLabels")
                                         or {}).get(COLOUR_LABEL)})
    try:
        parent = kube.request("GET", f"/api/v1/namespaces/{env.namespace}/configmaps/"
                              f"{parent_name(env)}", verb="get configmaps")
        raw = ((parent.get("metadata") or {}).get("annotations") or {}).get(LAST_DEPLOY)
        last = json.loads(raw) if raw else None
    except (KubeError, ValueError):  # no deploy yet, or unreadable: the rest still stands
        last = None
    return {"nodes": sorted(nodes, key=lambda n: n["name"]),
            "apps": sorted(workloads, key=lambda w: w["name"]), "last_deploy": last,
            "backups": _backups(env, client)}


def _backups(env: Environment, client: Any) -> dict[str, Any] | None:
    """The newest etcd snapshot as the agents recorded it; None without ``backups:``."""
    from provisioner.analysis.backups import summary
    from provisioner.cluster.backup_record import read_record
    from provisioner.kube import KubeError

    if env.backups is None:
        return None
    try:
        record = read_record(client)
    except KubeError as e:  # the rest of the cluster's status still stands
        return {"error": f"cannot read kube-system/provision-etcd-backup: {e}"}
    if record is None:
        return {"error": "kube-system/provision-etcd-backup does not exist yet (`provision "
                         "up` creates it)"}
    return summary(record, env.backups, clock.now())


def _backup_line(backups: dict[str, Any] | None) -> str:
    if backups is None:
        return "  etcd backups: not configured (no `backups:` section)"
    if "error" in backups:
        return f"  etcd backups: {backups['error']}"
    if backups["last_snapshot_at"]:
        line = (f"  etcd backups: newest snapshot {age_text(backups['age_seconds'])} ago "
                f"({backups['last_snapshot_at']}, {backups['node'] or '?'}"
                + (", STALE" if backups["stale"] else "") + ")")
    else:
        line = "  etcd backups: no snapshot recorded yet"
    if backups["last_error"]:
        line += f"; last pass failed at {backups['last_error_at']}: {backups['last_error']}"
    return line


def _missing(kind: str, message: str) -> dict[str, Any]:
    return {"error": message, "kind": kind}


def read_endpoint(path: Path) -> dict[str, Any]:
    """The API endpoint the last `up` recorded in infrastructure.json, or why not."""
    if not path.exists():
        return {"endpoint": None}
    try:
        recorded = json.loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as e:
        why = e.strerror if isinstance(e, OSError) else "not the JSON provision writes"
        return {"endpoint": None, **_missing(UNREADABLE, f"cannot read {path}: {why} (delete "
                                             "it and run `provision up`: it records what "
                                             "Terraform created)")}
    endpoint = recorded.get("api_endpoint") if isinstance(recorded, dict) else None
    if not isinstance(recorded, dict) or not isinstance(endpoint, (str, type(None))):
        return {"endpoint": None, **_missing(UNREADABLE, f"cannot read {path}: not the JSON "
                                             "provision writes (delete it and run "
                                             "`provision up`)")}
    return {"endpoint": endpoint}


def _age(created_at: object, now: dt.datetime) -> int | None:
    created = parse_instant(created_at)
    if created is None:
        return None
    return max(0, int((now - created).total_seconds()))  # a skewed clock is not negative


def collect(env: Environment, token: str | None, kubeconfig: Path | None,
            infrastructure: Path | None = None) -> dict[str, Any]:
    """Everything status shows; parts not shown carry an ``error`` and its ``kind``."""
    result: dict[str, Any] = {"environment": env.name}

    def cloud() -> None:
        try:
            result["cloud"] = inventory(env, token or "")
        except Exception as e:  # reported, not raised: status must show what it can
            result["cloud"] = _missing(UNREACHABLE, f"{type(e).__name__}: {e}")
        try:
            result["cost"] = run_rate_now(env, token or "", infrastructure)
        except Exception as e:  # the droplets above still stand
            result["cost"] = _missing(UNREACHABLE, f"run rate: {type(e).__name__}: {e}")

    def cluster() -> None:
        try:
            result["cluster"] = cluster_status(env, kubeconfig or Path())
        except _Unreadable as e:
            result["cluster"] = _missing(UNREADABLE, f"cannot use kubeconfig {kubeconfig}: {e}")
        except Exception as e:  # an unreachable cluster is a status, not a crash
            result["cluster"] = _missing(UNREACHABLE, f"{type(e).__name__}: {str(e)[:200]}")

    # The two sources are independent: read them at the same time (one waits on the
    # cloud's API, the other on the cluster's). Their clients are imported first, here:
    # two threads importing them at once failed with ImportError from a half-initialised
    # `requests.utils` (both clients import `requests`).
    if token:
        import digitalocean  # noqa: F401
    if kubeconfig is not None and kubeconfig.exists():
        import kubernetes.config  # noqa: F401
    readers = []
    if token:
        readers.append(threading.Thread(target=cloud, daemon=True))
    else:
        result["cloud"] = _missing(ABSENT, "no DIGITALOCEAN_TOKEN: droplets not listed")
        result["cost"] = _missing(ABSENT, "no DIGITALOCEAN_TOKEN: run rate not read")
    if kubeconfig is None or not kubeconfig.exists():
        result["cluster"] = _missing(ABSENT, "no kubeconfig yet: run `provision up`")
    elif not kubeconfig.is_file():
        result["cluster"] = _missing(UNREADABLE, f"cannot use kubeconfig {kubeconfig}: not a "
                                     "regular file")
    else:
        readers.append(threading.Thread(target=cluster, daemon=True))
    for reader in readers:
        reader.start()
    for reader in readers:
        reader.join()
    result["infrastructure"] = read_endpoint(infrastructure) if infrastructure else {
        "endpoint": None}
    _droplet_ages(result)
    return {key: result[key] for key in ("environment", "infrastructure", "cloud", "cluster",
                                         "cost")}


def run_rate_now(env: Environment, token: str, infrastructure: Path | None) -> dict[str, Any]:
    """What the environment's resources in the account cost a month now, at the account's
    prices (autoscaled droplets included)."""
    from provisioner.cost.online import account_costs

    _planned, running = account_costs(env, token, infrastructure)
    return running.as_json()


def _droplet_ages(result: dict[str, Any]) -> None:
    """Each droplet's age, and each node's (a node is named after its droplet)."""
    now = clock.now()
    ages: dict[str, int | None] = {}
    cloud = result["cloud"]
    groups = [g["droplets"] for g in (cloud.get("autoscaled") or {}).values()]
    for droplets in [*(cloud.get("droplets") or {}).values(), *groups]:
        for droplet in droplets:
            droplet["age_seconds"] = ages[droplet["name"]] = _age(droplet.get("created_at"),
                                                                  now)
    for node in result["cluster"].get("nodes") or []:
        node["droplet_age_seconds"] = ages.get(node["name"])


def problems(status: dict[str, Any]) -> tuple[int, list[str]]:
    """The exit code status ends with and why: 2 for an unreadable local file, 1 for an API
    that failed; 0 when every source was read or is simply not there yet."""
    from provisioner.errors import EXIT_FAILURE, EXIT_OK, EXIT_USAGE

    sources = [status["infrastructure"], status["cloud"], status["cluster"],
               status.get("cost") or {}]
    unreadable = [s["error"] for s in sources if s.get("kind") == UNREADABLE]
    if unreadable:
        return EXIT_USAGE, unreadable
    failed = [s["error"] for s in sources if s.get("kind") == UNREACHABLE]
    return (EXIT_FAILURE, failed) if failed else (EXIT_OK, [])


def age_text(seconds: int | None) -> str:
    """``3d4h``, ``5h12m``, ``7m``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m"


def format_status(status: dict[str, Any]) -> str:
    """The one screen."""
    lines = [f"Environment {status['environment']}"]
    infrastructure = status["infrastructure"]
    if "error" in infrastructure:
        lines.append(f"  infrastructure: {infrastructure['error']}")
    elif infrastructure["endpoint"]:
        lines.append(f"  API endpoint: https://{infrastructure['endpoint']}:6443")
    cloud = status["cloud"]
    if "error" in cloud:
        lines.append(f"  droplets: {cloud['error']}")
    else:
        for role, droplets in cloud["droplets"].items():
            lines.append(f"  {role}:")
            for d in droplets:
                mark = "  <- floating IP" if d["name"] == cloud["floating_ip_holder"] else ""
                lines.append(f"    {d['name']:<28} {d['status']:<8} {d['size'] or '':<13} "
                             f"{d['public_ip'] or '-':<16} {d['private_ip'] or '-':<16} "
                             f"{age_text(d.get('age_seconds')):>6}{mark}")
        for pool, group in (cloud.get("autoscaled") or {}).items():
            bounds = (f"{group['min']}..{group['max']}" if group["min"] is not None
                      else "pool not autoscaled in the file")
            lines.append(f"  autoscaled {pool} (node group {group['node_group']}, "
                         f"0..{group['group_max'] if group['group_max'] is not None else '?'}"
                         f" above Terraform's floor; pool {bounds}): {group['count']}"
                         + (": " + ", ".join(d["name"] for d in group["droplets"])
                            if group["droplets"] else ""))
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
        if cluster["nodes"]:
            lines.append(f"    {'node':<28} {'ready':<9} {'kubelet':<10} {'age':>6}  "
                         f"{'cordoned':<9} {'etcd':<10} vrrp")
        for n in cluster["nodes"]:
            control = n["role"] == "control-plane"
            lines.append(  # a worker has no etcd member; only floating_ip runs keepalived
                f"    {n['name']:<28} {'Ready' if n['ready'] else 'NotReady':<9} "
                f"{n['kubelet'] or '?':<10} {age_text(n.get('droplet_age_seconds')):>6}  "
                f"{'yes' if n['cordoned'] else 'no':<9} "
                f"{n.get('etcd') if control else '-':<10} "
                f"{(n['vrrp_state'] or 'unknown') if 'vrrp_state' in n else '-'}")
        lines.append("  apps:             desired  updated  available")
        for w in cluster["apps"]:
            lines.append(f"    {w['name']:<16} {w['desired']:>7} {w['updated']:>8} "
                         f"{w['available']:>10}")
        last = cluster["last_deploy"]
        if last:
            lines.append(f"  last deploy: {last.get('at')} by {last.get('by')}: "
                         + ", ".join(f"{k}={v}" for k, v in (last.get("images") or {}).items()))
        lines.append(_backup_line(cluster.get("backups")))
    text = "\n".join(lines) + "\n"
    cost = status.get("cost") or {}
    if "error" in cost:
        return text + f"  run rate: {cost['error']}\n"
    if cost:
        from provisioner.cost.text import format_cost

        text += format_cost(cost, "  Run rate now").replace("\n  ", "\n    ")
    return text
