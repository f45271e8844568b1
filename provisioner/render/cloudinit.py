"""Cloud-init user-data for each node role, with the kubeadm configuration inside.

Roles: ``controller-init`` (the first control-plane node), ``controller-join`` (the others)
and ``worker-<pool>`` (one per worker pool, since labels and taints differ per pool).
"""

from __future__ import annotations

import base64
import gzip
import json
from dataclasses import dataclass

from provisioner.bootstrap.pki import SHARED_MARKERS
from provisioner.config.model import Environment, WorkerPool
from provisioner.errors import RenderError
from provisioner.render import addons, agents, bundle, packages, shell
from provisioner.render.engine import render
from provisioner.render.markers import has_markers, marker
from provisioner.resources import data_dir

# Values only a booting droplet knows; the bootstrap script fills them from the metadata service.
NODE_PRIVATE_IP = "__PRIVATE_IPV4__"
NODE_DROPLET_ID = "__DROPLET_ID__"
# Long enough for a slow first boot, short enough that a leaked token soon stops working.
TOKEN_TTL = "4h0m0s"


@dataclass(frozen=True)
class UserData:
    """One role's rendered cloud-config (markers still in place)."""

    role: str
    text: str


def _common(env: Environment) -> dict[str, object]:
    endpoint = marker("api_endpoint")
    return {
        "cluster_name": env.name,
        "version": env.kubernetes.version,
        "minor": env.kubernetes.minor,
        "containerd_version": packages.CONTAINERD,
        "pod_cidr": env.kubernetes.pod_cidr,
        "service_cidr": env.kubernetes.service_cidr,
        "cni": env.kubernetes.cni,
        "endpoint": endpoint,
        "cert_sans": [endpoint, f"{env.name}-api"],
        "token": marker("bootstrap_token"),
        "token_ttl": TOKEN_TTL,
        "certificate_key": marker("certificate_key"),
        "ca_cert_hash": marker("ca_cert_hash"),
        "ca_crt": marker("ca_crt_b64"),
        "ca_key": marker("ca_key_b64"),
        # Made by provision, so `kubeadm init` uses them (it generates only what is missing)
        # and provision can re-upload them for control-plane joins at any time.
        "shared_keys": [{"name": name, "content": marker(value),
                         "mode": "0644" if name.endswith((".crt", ".pub")) else "0600"}
                        for name, value in SHARED_MARKERS.items()],
        "restore": {"url": marker("restore_url"), "key": marker("restore_key"),
                    "sha256": marker("restore_sha256")},
        "private_ip": NODE_PRIVATE_IP,
        "droplet_id": NODE_DROPLET_ID,
    }


FAILOVER_AGENT = "/usr/local/lib/provision/failover.py"
# VRRP rides a VXLAN tunnel on this UDP port: DigitalOcean firewalls drop IP protocol 112.
VRRP_TUNNEL_PORT = 8473


def _packed_text(text: str) -> str:
    """Rendered text for ``encoding: gz+b64``: the first node's user-data (CA and shared
    keys, add-on kustomizations, agents) is near DigitalOcean's 64 KiB. ``mtime=0`` keeps the
    bytes the same from run to run. Only text without late-bound markers may be packed:
    Terraform splices values into the user-data as written."""
    if has_markers(text):
        raise RenderError("a file with late-bound values cannot be compressed")
    packed = gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0)
    return base64.b64encode(packed).decode("ascii")


def _json(settings: dict[str, object]) -> str:
    return json.dumps(settings, indent=2, sort_keys=True) + "\n"


SYSTEMD = "/etc/systemd/system"


def _failover_files(env: Environment) -> dict[str, object]:
    """The keepalived failover agent's settings (floating_ip mode, controllers only; with
    the API token, so written by cloud-init, 0600)."""
    if env.control_plane.endpoint != "floating_ip":
        return {"failover": None}
    settings = {
        "cluster": env.name,
        "floating_ip": marker("api_endpoint"),
        "token": marker("failover_token"),
        "controller_tag": f"provision:{env.name}:controller",
        "check_url": "https://127.0.0.1:6443/readyz",
        "vxlan_port": VRRP_TUNNEL_PORT,
        "notify_command": f"/usr/bin/python3 {FAILOVER_AGENT} notify",
        "check_command": f"/usr/bin/python3 {FAILOVER_AGENT} check",
    }
    return {"failover": {
        "agent_path": FAILOVER_AGENT,
        "settings": _json(settings),
    }}


def _failover_units(env: Environment) -> dict[str, str]:
    """The failover agent's units and keepalived's drop-in (floating_ip mode; they name the
    agent, no secret, and travel in the bundle, ``_bundle``)."""
    if env.control_plane.endpoint != "floating_ip":
        return {}
    return {
        f"{SYSTEMD}/provision-failover.service": render(
            "systemd/provision-failover.service.j2", agent_path=FAILOVER_AGENT),
        f"{SYSTEMD}/provision-failover.timer": render("systemd/provision-failover.timer.j2"),
        # keepalived waits for its tunnel and comes back when it dies (see the template).
        f"{SYSTEMD}/keepalived.service.d/provision-failover.conf": render(
            "systemd/keepalived-provision.conf.j2", agent_path=FAILOVER_AGENT),
    }


CSR_APPROVER = "/usr/local/lib/provision/csr_approver.py"


def _approver_units(env: Environment) -> dict[str, str]:
    """The kubelet serving certificate approver's units (every control-plane node; they and
    the agent travel in the bundle, ``_bundle``, but a service naming the floating IP carries
    its marker and so stays in write_files)."""
    # No kubelet may be certified for a service or pod address or the API endpoint.
    refused = [env.kubernetes.service_cidr, env.kubernetes.pod_cidr] + (
        [f"{marker('api_endpoint')}/32"] if env.control_plane.endpoint == "floating_ip" else [])
    return {
        f"{SYSTEMD}/provision-csr-approver.service": render(
            "systemd/provision-csr-approver.service.j2", agent_path=CSR_APPROVER,
            refused=refused),
        f"{SYSTEMD}/provision-csr-approver.timer": (
            data_dir("templates") / "systemd" / "provision-csr-approver.timer").read_text(
            encoding="utf-8"),
    }


ETCD_BACKUP_AGENT = "/usr/local/lib/provision/etcd_backup.py"
ETCD_BACKUP_SETTINGS = "/etc/provision/etcd-backup.json"


def backup_settings(env: Environment) -> dict[str, object] | None:
    """/etc/provision/etcd-backup.json: where and how often (no secrets: the Spaces key and
    the recipient key are in the kube-system/provision-backup Secret)."""
    if env.backups is None:
        return None
    b = env.backups
    return {"environment": env.name, "endpoint": b.endpoint, "region": b.region,
            "bucket": b.bucket, "prefix": b.prefix, "every_seconds": b.every,
            "keep_hourly": b.keep_hourly, "keep_daily": b.keep_daily}


def _backup_units(env: Environment) -> dict[str, str]:
    """The etcd backup agent's units (control-plane nodes, with backups; they travel in the
    bundle with the agent and its settings, ``_bundle``)."""
    if env.backups is None:
        return {}
    return {
        f"{SYSTEMD}/provision-etcd-backup.service": render(
            "systemd/provision-etcd-backup.service.j2", agent_path=ETCD_BACKUP_AGENT),
        f"{SYSTEMD}/provision-etcd-backup.timer": (
            data_dir("templates") / "systemd" / "provision-etcd-backup.timer").read_text(
            encoding="utf-8"),
    }


NODE_UPGRADE = "/usr/local/lib/provision/node_upgrade.py"


def _upgrade_units() -> dict[str, str]:
    systemd = data_dir("templates") / "systemd"
    return {f"upgrade_{kind}": (systemd / f"provision-node-upgrade.{kind}").read_text(
        encoding="utf-8") for kind in ("service", "timer")}


ADDONS_DIR = "/var/lib/provision/addons"


def _addons(env: Environment) -> list[addons.Addon]:
    return [addons.cni(env.kubernetes.cni, env.digitalocean.vpc_cidr),
            *addons.platform(env.digitalocean.region)]


def addon_sources(env: Environment) -> list[dict[str, object]]:
    """Where the node puts each add-on, in apply order: a file, or a kustomization folder.

    A patched add-on is fetched as ``upstream.yaml`` into a folder whose kustomization.yaml
    (``kustomization``, rendered here) applies provision's patches to it. A kustomize tree
    (several files) is laid out in its folder as upstream has it and applied from its entry.
    Each download carries the pinned URL and SHA-256 the node checks it against.
    """
    sources: list[dict[str, object]] = []
    for number, addon in enumerate(_addons(env), start=1):
        name = f"{number:02d}-{addon.name}"
        kustomization = ""
        if len(addon.files) > 1:
            dests = [f"{name}/{addon.layout(pin)}" for pin in addon.files]
            source = f"{name}/{addon.entry}"
        elif addon.patches:
            dests = [f"{name}/upstream.yaml"]
            source = name
            kustomization = render("addons/kustomization.yaml.j2", addon=addon)
        else:
            dests = [f"{name}.yaml"]
            source = dests[0]
        folders = sorted({dest.rsplit("/", 1)[0] for dest in dests if "/" in dest})
        sources.append({
            "name": addon.name, "source": source, "kustomization": kustomization,
            "folders": folders,
            "downloads": [{"url": pin.url, "sha256": pin.sha256, "dest": dest}
                          for pin, dest in zip(addon.files, dests, strict=True)],
        })
    return sources


BUNDLE = "/usr/local/lib/provision/bundle.tar.gz"
# Where each agent lands (the units and settings name these paths).
AGENT_PATHS = {"failover": FAILOVER_AGENT, "csr_approver": CSR_APPROVER,
               "etcd_backup": ETCD_BACKUP_AGENT, "node_upgrade": NODE_UPGRADE}


def _agents(names: list[str]) -> list[bundle.Member]:
    """The agents a role runs, for the bundle: their code without docstrings
    (render/agents.py), mode 0755 as cloud-init wrote them before."""
    return [bundle.Member(AGENT_PATHS[name], 0o755, agents.shipped_agent(name))
            for name in names]


def _bundle(members: list[bundle.Member], files: list[dict[str, str]]
            ) -> tuple[str, list[dict[str, str]]]:
    """(the bundle, the 0644 files cloud-init writes itself).

    ``members`` (agents and their settings without secrets) and the ``files`` (systemd units
    and add-on kustomizations) without late-bound values (0644) travel as one archive
    (render/bundle.py says why). A file with a marker stays a plain write_files entry:
    Terraform fills markers in the user-data as written. The bootstrap script reloads
    systemd right after it unpacks, before it installs or enables anything.
    """
    members = list(members)
    written = []
    for file in files:
        if has_markers(file["content"]):
            written.append(file)
        else:
            members.append(bundle.Member(file["path"], 0o644, file["content"]))
    return bundle.packed(members), written


def _node_files(context: dict[str, object], role: str, sources: list[dict[str, object]],
                members: list[bundle.Member], units: dict[str, str] | None = None
                ) -> dict[str, object]:
    systemd = data_dir("templates") / "systemd"
    # Only the first control-plane node installs the add-ons.
    kustomizations = [
        {"path": f"{ADDONS_DIR}/{s['source']}/kustomization.yaml",
         "content": str(s["kustomization"])}
        for s in sources if s["kustomization"]] if role == "controller-init" else []
    unit_files = [{"path": path, "content": text} for path, text in (units or {}).items()]
    packed, written = _bundle(members, unit_files + kustomizations)
    return {
        # The scripts carry no late-bound values, so they travel compressed (``_packed``).
        "metadata_guard": _packed_text(render("scripts/metadata-guard.sh.j2", **context)),
        "metadata_guard_unit": (systemd / "provision-metadata-guard.service").read_text(
            encoding="utf-8"),
        # Droplets have monitoring on: do-agent's user must be allowed by the guard.
        "do_agent_dropin": (systemd / "do-agent-metadata-guard.conf").read_text(
            encoding="utf-8"),
        # Without its comment lines (render/shell.py): they are for readers of the template.
        "bootstrap": _packed_text(shell.without_comments(render(
            "scripts/bootstrap.sh.j2", **context, **_upgrade_units(),
            role="worker" if role.startswith("worker") else role,
            addons=sources, addons_dir=ADDONS_DIR, bundle=BUNDLE))),
        "bundle": packed,
        "bundle_path": BUNDLE,
        "late_files": written,
    }


def _labels(pool: WorkerPool) -> str:
    # kubelet takes labels as one comma-separated flag; label syntax excludes ',' and '='.
    return ",".join(f"{key}={value}" for key, value in pool.labels)


def controller(env: Environment, first: bool) -> UserData:
    """User-data of the first control-plane node (init) or of a joining one."""
    role = "controller-init" if first else "controller-join"
    context = _common(env) | {"node_labels": "", "taints": None, "control_plane": True}
    template = "kubeadm/init.yaml.j2" if first else "kubeadm/join.yaml.j2"
    kubeadm = render(template, **context)
    failover = _failover_files(env)
    units = _failover_units(env) | _approver_units(env) | _backup_units(env)
    context["failover_enabled"] = failover["failover"] is not None
    context["etcd_backup_enabled"] = env.backups is not None
    settings = backup_settings(env)
    members = _agents([name for name, wanted in (
        ("failover", failover["failover"] is not None), ("csr_approver", True),
        ("etcd_backup", settings is not None), ("node_upgrade", True)) if wanted])
    if settings is not None:
        # No secrets in it (see ``backup_settings``), so it may travel packed.
        members.append(bundle.Member(ETCD_BACKUP_SETTINGS, 0o644, _json(settings)))
    text = render("cloud-init/node.yaml.j2", **context,
                  **_node_files(context, role, addon_sources(env), members, units),
                  **failover, role=role, kubeadm=kubeadm)
    return UserData(role, text)


def worker(env: Environment, pool: WorkerPool) -> UserData:
    """User-data of one worker pool."""
    role = f"worker-{pool.name}"
    taints = [{"key": t.key, "value": t.value, "effect": t.effect} for t in pool.taints]
    context = _common(env) | {"node_labels": _labels(pool), "taints": taints,
                              "control_plane": False}
    context["failover_enabled"] = False
    context["etcd_backup_enabled"] = False
    kubeadm = render("kubeadm/join.yaml.j2", **context)
    text = render("cloud-init/node.yaml.j2", **context,
                  **_node_files(context, role, addon_sources(env), _agents(["node_upgrade"])),
                  failover=None, role=role, kubeadm=kubeadm)
    return UserData(role, text)


def image_builder(env: Environment) -> UserData:
    """User-data of `provision image build`'s droplet: the same bootstrap script in role
    "image" (bake_image: the package installs and image pulls every node does, then the
    manifest nodes read), no secrets and no late-bound values."""
    context = _common(env) | {"failover_enabled": False, "etcd_backup_enabled": False}
    script = shell.without_comments(render(
        "scripts/bootstrap.sh.j2", **context, **_upgrade_units(), role="image",
        addons=addon_sources(env), addons_dir=ADDONS_DIR, bundle=BUNDLE))
    text = render("cloud-init/image.yaml.j2", **context, bootstrap=_packed_text(script))
    if has_markers(text):
        raise RenderError("the image build's user-data must not carry late-bound values")
    return UserData("image", text)


def all_roles(env: Environment) -> list[UserData]:
    """User-data of every role the environment needs, in a stable order."""
    roles = [controller(env, first=True)]
    if env.control_plane.count > 1:
        roles.append(controller(env, first=False))
    roles.extend(worker(env, pool) for pool in env.worker_pools)
    return roles
