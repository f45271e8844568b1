"""The page `provision status --web` serves: the status data (`provisioner.status.collect`,
the same dict `status --output json` prints) as one self-contained HTML document.

Every value comes from the cloud, the cluster or the work folder, and names and labels
there are not ours to trust (a Deployment anyone with write access to the namespace can
name, an annotation a deploy wrote): each one goes through `html.escape` (quotes included)
on its way into the page, and the page loads no script, style sheet or image from
anywhere (a Content-Security-Policy header says so too; see `provisioner/status_web.py`).
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

from provisioner.status import age_text

_STYLE = """
body{font-family:sans-serif;margin:1.5em;background:#fafafa;color:#222}
h1{font-size:1.5em;margin:0 0 .2em}h2{font-size:1.15em;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;font-size:.92em}
th{background:#e8eef6}.bad{color:#b00020;font-weight:bold}.good{color:#1b6e20}
.note{color:#555;font-size:.9em}.error{color:#b00020}
.blue{color:#fff;background:#1f5fbf;padding:0 .4em}
.green{color:#fff;background:#2e7d32;padding:0 .4em}
"""


def _e(value: object) -> str:
    """Text for HTML: ``-`` for nothing, everything else escaped (quotes too)."""
    if value is None or value == "":
        return "-"
    return html.escape(str(value), quote=True)


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], table_id: str) -> str:
    """Cells are HTML already escaped by the caller (`_e`), headers are ours."""
    head = "".join(f"<th>{h}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _error(section: dict[str, Any]) -> str:
    return f'<p class="error">{_e(section["error"])}</p>'


def _droplets(cloud: dict[str, Any]) -> str:
    if "error" in cloud:
        return _error(cloud)
    holder = cloud.get("floating_ip_holder")
    rows = []
    for role, droplets in (cloud.get("droplets") or {}).items():
        for d in droplets:
            mark = ' <span class="good">floating IP</span>' if d["name"] == holder else ""
            rows.append([_e(d["name"]) + mark, _e(role), _e(d.get("size")), _e(d.get("region")),
                         _e(d.get("status")), _e(d.get("public_ip")), _e(d.get("private_ip")),
                         _e(age_text(d.get("age_seconds")))])
    table = _table(["droplet", "role", "size", "region", "status", "public IP", "private IP",
                    "age"], rows, "droplets")
    if cloud.get("floating_ip"):
        floating = (f'<p id="floating-ip">Floating IP {_e(cloud["floating_ip"])} is on '
                    f"<strong>{_e(holder)}</strong></p>")
    else:
        floating = '<p id="floating-ip" class="note">No floating IP held by a droplet of ' \
                   "this environment.</p>"
    return table + floating


def _nodes(nodes: list[dict[str, Any]]) -> str:
    rows = []
    for n in nodes:
        ready = '<span class="good">Ready</span>' if n["ready"] else \
            '<span class="bad">NotReady</span>'
        rows.append([_e(n["name"]), ready, _e(n.get("role")), _e(n.get("kubelet")),
                     "yes" if n.get("cordoned") else "no", _e(n.get("etcd")),
                     _e(n.get("vrrp_state")), _e(age_text(n.get("droplet_age_seconds")))])
    ready_count = sum(1 for n in nodes if n["ready"])
    return (f"<p>{ready_count}/{len(nodes)} Ready</p>"
            + _table(["node", "ready", "role", "version", "cordoned", "etcd", "VRRP", "age"],
                     rows, "nodes"))


def _apps(apps: list[dict[str, Any]]) -> str:
    rows = []
    for a in apps:
        colour = a.get("colour")
        # The class is chosen from our two names, never taken from the label's value.
        css = colour if colour in ("blue", "green") else ""
        colour_cell = f'<span class="{css}">{_e(colour)}</span>' if colour else "-"
        ok = a.get("available", 0) >= a.get("desired", 0)
        ratio = f'<span class="{"good" if ok else "bad"}">' \
                f'{_e(a.get("ready", a.get("available")))}/{_e(a.get("desired"))}</span>'
        rows.append([_e(a["name"]), _e(a.get("kind")), ratio, _e(a.get("available")),
                     "<br>".join(_e(i) for i in a.get("images") or []) or "-", colour_cell])
    return _table(["app", "kind", "ready/desired", "available", "image", "colour"], rows,
                  "apps")


def _last_deploy(last: dict[str, Any] | None) -> str:
    if not last:
        return '<p id="last-deploy" class="note">No deploy recorded yet.</p>'
    images = ", ".join(f"{_e(k)}={_e(v)}" for k, v in (last.get("images") or {}).items())
    return (f'<p id="last-deploy">{_e(last.get("at"))} by {_e(last.get("by"))}: '
            f"{images or '-'}</p>")


def _backups(backups: dict[str, Any] | None) -> str:
    if backups is None:
        return ""
    if "error" in backups:
        body = _error(backups)
    elif backups.get("last_snapshot_at"):
        stale = ' <span class="bad">STALE</span>' if backups.get("stale") else ""
        body = (f'<p id="backups">Newest etcd snapshot {_e(age_text(backups["age_seconds"]))} '
                f'ago ({_e(backups["last_snapshot_at"])}, {_e(backups.get("node"))}){stale}</p>')
    else:
        body = '<p id="backups">No snapshot recorded yet.</p>'
    if backups.get("last_error"):
        body += (f'<p class="error">Last pass failed at {_e(backups.get("last_error_at"))}: '
                 f'{_e(backups["last_error"])}</p>')
    return "<h2>Backups</h2>" + body


def render_page(status: dict[str, Any], read_at: str) -> str:
    """The whole document; `read_at` says when the status was read (shown, not trusted)."""
    parts = [f"<h1>Environment {_e(status.get('environment'))}</h1>",
             f'<p class="note">Read at {_e(read_at)}. Read-only: reload the page to read '
             "again.</p>"]
    infrastructure = status.get("infrastructure") or {}
    if "error" in infrastructure:
        parts.append(_error(infrastructure))
    elif infrastructure.get("endpoint"):
        parts.append(f'<p id="endpoint">API endpoint: https://{_e(infrastructure["endpoint"])}'
                     ":6443</p>")
    parts += ["<h2>Droplets</h2>", _droplets(status.get("cloud") or {})]
    cluster = status.get("cluster") or {}
    if "error" in cluster:
        parts += ["<h2>Cluster</h2>", _error(cluster)]
    else:
        parts += ["<h2>Nodes</h2>", _nodes(cluster.get("nodes") or []),
                  "<h2>Apps</h2>", _apps(cluster.get("apps") or []),
                  "<h2>Last deploy</h2>", _last_deploy(cluster.get("last_deploy")),
                  _backups(cluster.get("backups"))]
    title = f"provision status: {_e(status.get('environment'))}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{title}</title><style>{_STYLE}</style></head><body>"
            + "".join(parts) + "</body></html>\n")
