"""The online part of ``provision check``: findings read from the running cluster and the cloud.

Run only when asked (``--online``, or ``--kubeconfig``): the rest of check reads the file
alone. What it judges:

* keepalived: each control-plane node's failover agent records keepalived's health
  (``provision.dev/keepalived``) and the time of its last pass
  (``provision.dev/failover-checked-at``) on its Node. ``failed`` means keepalived is down;
  a pass older than a few timer periods means the agent itself is not running. Each agent
  also publishes the fingerprint of the DigitalOcean token it runs with
  (``provision.dev/failover-token``): one that differs from the token in Secret
  kube-system/provision-failover refused it (the API rejects it) or has not run since.
* the floating IP: it must be on the droplet of the one node whose keepalived is MASTER
  (``provision.dev/vrrp-state``), as the DigitalOcean API says; two MASTERs split the brain.
* etcd backups (with a ``backups:`` section): the agents' record
  (kube-system/provision-etcd-backup) must show a snapshot newer than twice the interval
  plus five minutes and no failure after it (analysis/backups.py).
* credentials: the API server's serving certificate and the admin kubeconfig's client
  certificate (kubeadm issues both for one year: kubernetes/kubernetes
  cmd/kubeadm/app/constants/constants.go at commit 3301161c36ac,
  CertificateValidityPeriod = time.Hour * 24 * 365; provision
  signs its admin kubeconfig for the same, bootstrap/kubeconfig.CLIENT_DAYS), and whether
  the DigitalOcean API still accepts the token exported here and the one stored in the
  cluster (kube-system/digitalocean). The bootstrap token in the work folder is not judged:
  it lives hours by design and provision renews it before nodes join.

Judging (`judge`) is separate from reading (`gather`), and the clock is provision's
(``provisioner.clock``), so the findings of a given cluster state are the same any day.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from provisioner import clock
from provisioner.analysis import backups
from provisioner.analysis.spof import SEVERITIES, Finding
from provisioner.config.model import Environment
from provisioner.errors import ProvisionError
from provisioner.node_facts import NodeFacts


@functools.cache
def timer_period() -> float:
    """Seconds between the failover agent's passes, as its timer unit says (the one place
    that sets it: templates/systemd/provision-failover.timer.j2, ``OnUnitActiveSec``)."""
    from provisioner.resources import data_dir

    try:
        text = (data_dir("templates") / "systemd" / "provision-failover.timer.j2").read_text()
    except OSError as e:
        raise ProvisionError("cannot read templates/systemd/provision-failover.timer.j2 "
                             f"({e.strerror or e}); reinstall provision") from e
    found = re.search(r"^OnUnitActiveSec=(\d+)(s|min)?\s*$", text, re.MULTILINE)
    if not found:
        raise ProvisionError("templates/systemd/provision-failover.timer.j2 sets no "
                             "OnUnitActiveSec in seconds or minutes; reinstall provision")
    return float(found.group(1)) * (60 if found.group(2) == "min" else 1)


# Five missed passes of the agent's timer are not a slow API any more.
STALE_PASSES = 5
# kubeadm's `certs check-expiration` shows residual time; a month leaves time to act.
EXPIRY_WARNING = dt.timedelta(days=30)


@dataclass
class LiveFacts:
    """What `gather` read; None where a source was not read (with a note saying why)."""

    nodes: list[NodeFacts] = field(default_factory=list)
    floating_ip: str | None = None
    holder: str | None = None  # the droplet the API says holds the floating IP
    holder_read: bool = False
    serving_not_after: dt.datetime | None = None
    client_not_after: dt.datetime | None = None
    local_token_ok: bool | None = None
    cluster_token_ok: bool | None = None
    # The fingerprint of the token in Secret kube-system/provision-failover (None: no
    # Secret, never rotated) and the one each node's agent says it runs with.
    failover_fingerprint: str | None = None
    token_fingerprints: dict[str, str | None] = field(default_factory=dict)
    # Secret -> (the key that is not text, the rotate kind that rewrites it).
    unreadable: dict[str, tuple[str, str]] = field(default_factory=dict)
    # The etcd backup agents' record (None: absent); read only when backups are set.
    backup_record: dict[str, str] | None = None
    backup_read: bool = False
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Connection:
    """What the kubeconfig says: the API server, the client certificate's end, a client."""

    server: str
    client_not_after: dt.datetime | None
    api: Any


def _when(delta: dt.timedelta) -> str:
    days = delta.days
    if days >= 1:
        return f"{days} day(s)"
    return f"{max(0, int(delta.total_seconds() // 3600))} hour(s)"


def _expiry(subject: str, not_after: dt.datetime | None, now: dt.datetime,
            fix: str) -> list[Finding]:
    if not_after is None:
        return []
    left = not_after - now
    if left <= dt.timedelta(0):
        return [Finding("high", subject, f"expired {_when(-left)} ago ({not_after:%Y-%m-%d})",
                        fix)]
    if left <= EXPIRY_WARNING:
        return [Finding("medium", subject, f"expires in {_when(left)} ({not_after:%Y-%m-%d})",
                        fix)]
    return []


def _failover(env: Environment, config: str, facts: LiveFacts,
              now: dt.datetime) -> list[Finding]:
    if env.control_plane.endpoint != "floating_ip":
        return []
    found: list[Finding] = []
    controllers = [n for n in facts.nodes if n.control_plane]
    for node in controllers:
        if node.keepalived == "failed":
            found.append(Finding(
                "high", f"keepalived on {node.name}",
                "is not running and its failover agent could not restart it: this node "
                "cannot take the floating IP",
                f"on {node.name}: journalctl -u keepalived; systemctl restart keepalived"))
        elif node.checked_at is None or now - node.checked_at > dt.timedelta(
                seconds=STALE_PASSES * timer_period()):
            seen = ("never reported" if node.checked_at is None
                    else f"last reported {node.checked_at:%Y-%m-%d %H:%M:%S} UTC")
            found.append(Finding(
                "high", f"failover agent on {node.name}",
                f"is not running ({seen}): nobody restarts keepalived there or keeps the "
                "floating IP on the MASTER",
                f"on {node.name}: systemctl status provision-failover.timer"))
        if facts.failover_fingerprint and \
                facts.token_fingerprints.get(node.name) != facts.failover_fingerprint:
            found.append(Finding(
                "medium", f"failover token on {node.name}",
                "the agent runs with another token than Secret kube-system/provision-failover "
                "holds: it refused the stored one (the DigitalOcean API rejects it) or has "
                "not run since; once its old token is revoked, failover stops there",
                f"on {node.name}: journalctl -u provision-failover (it says why); export a "
                f"valid PROVISION_FAILOVER_TOKEN and run `provision rotate {config} --only "
                "failover-token`"))
    masters = sorted(n.name for n in controllers if n.vrrp_state == "MASTER")
    if len(masters) > 1:
        found.append(Finding(
            "high", "floating IP", f"{len(masters)} control-plane nodes are MASTER "
            f"({', '.join(masters)}): VRRP between them is broken, each may take the address",
            "check the vrrp0 tunnel and UDP 8473 between the control-plane droplets"))
    elif masters and facts.holder_read and facts.holder != masters[0]:
        where = f"on {facts.holder}" if facts.holder else "on no droplet of this environment"
        found.append(Finding(
            "high", "floating IP",
            f"{facts.floating_ip or 'the address'} is {where}, but {masters[0]} is MASTER: "
            "the API endpoint reaches a node keepalived does not serve it from",
            f"on {masters[0]}: systemctl start provision-failover.service (its pass puts "
            "the address on the MASTER)"))
    elif controllers and not masters:
        found.append(Finding(
            "high", "floating IP", "no control-plane node reports keepalived MASTER",
            "on each control-plane node: systemctl status keepalived provision-failover.timer"))
    return found


def judge(env: Environment, config: str, facts: LiveFacts,
          now: dt.datetime) -> list[Finding]:
    """The findings of one reading of the cluster and the cloud at instant ``now``."""
    found = _failover(env, config, facts, now)
    if facts.backup_read:
        found += backups.online(env, config, facts.backup_record, now)
    found += _expiry("API server certificate", facts.serving_not_after, now,
                     "on each control-plane node: kubeadm certs renew apiserver, then restart "
                     "its kube-apiserver (move /etc/kubernetes/manifests/kube-apiserver.yaml "
                     "out and back)")
    found += _expiry("admin kubeconfig certificate", facts.client_not_after, now,
                     "delete the work folder's kubeconfig, then `provision kubeconfig "
                     f"{config}` signs a new one with the cluster CA")
    for secret, (key, kind) in sorted(facts.unreadable.items()):
        found.append(Finding(
            "high", secret, f"key {key} is not UTF-8 text: nothing that reads it can use it",
            f"run `provision rotate {config} --only {kind}` to store a valid token"))
    if facts.local_token_ok is False:
        found.append(Finding("high", "DIGITALOCEAN_TOKEN", "the DigitalOcean API rejects it "
                             "(401)", "export a valid read/write token"))
    if facts.cluster_token_ok is False:
        found.append(Finding(
            "high", "kube-system/digitalocean",
            "the DigitalOcean API rejects the token the cloud controller manager and CSI "
            "driver use: load balancers, volumes and node addresses stop being managed",
            f"export a valid DIGITALOCEAN_TOKEN and run `provision rotate {config} --only "
            "cloud-token`"))
    return sorted(found, key=lambda f: SEVERITIES.index(f.severity))


def _certificate_end(pem: bytes) -> dt.datetime:
    from cryptography import x509

    return x509.load_pem_x509_certificate(pem).not_valid_after_utc


def _kubeconfig_parts(path: Path) -> tuple[str, bytes | None]:
    """The current context's server URL and client certificate (PEM), if it has one."""
    import yaml

    doc = yaml.safe_load(path.read_bytes().decode("utf-8"))
    contexts = {c["name"]: c.get("context") or {} for c in doc.get("contexts") or []}
    context = contexts.get(doc.get("current-context")) or {}
    clusters = {c["name"]: c.get("cluster") or {} for c in doc.get("clusters") or []}
    users = {u["name"]: u.get("user") or {} for u in doc.get("users") or []}
    server = str(clusters.get(context.get("cluster"), {}).get("server") or "")
    user = users.get(context.get("user")) or {}
    if user.get("client-certificate-data"):
        return server, base64.b64decode(user["client-certificate-data"])
    if user.get("client-certificate"):
        return server, (path.parent / str(user["client-certificate"])).read_bytes()
    return server, None


def _serving_certificate(server: str) -> bytes | None:
    """The certificate the API server presents (read, not verified: only its dates count)."""
    import ssl

    url = urlsplit(server)
    if url.scheme != "https" or not url.hostname:
        return None
    pem = ssl.get_server_certificate((url.hostname, url.port or 443), timeout=10)
    return pem.encode()


def _secret_text(secret: dict[str, Any], key: str, name: str, kind: str,
                 facts: LiveFacts) -> str:
    """The text under ``key`` of a Secret as the API returns it ("" when absent). Bytes that
    are not base64 of UTF-8 text are recorded in ``facts.unreadable`` (a finding), not
    raised: they are the cluster's state, not the kubeconfig's."""
    raw = (secret.get("data") or {}).get(key) or ""
    try:
        return base64.b64decode(str(raw), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError both are
        facts.unreadable[f"kube-system/{name}"] = (key, kind)
        return ""


def _failover_tokens(kube: Any, facts: LiveFacts) -> None:
    """The stored failover token's fingerprint and each node's (its agent's annotation)."""
    from provisioner.agents.failover import ANNOTATION_TOKEN, fingerprint
    from provisioner.kube import KubeError

    try:
        secret = kube.request("GET", "/api/v1/namespaces/kube-system/secrets/provision-failover",
                              verb="get secrets in kube-system")
    except KubeError as e:
        if e.status != 404:
            raise
        return  # never rotated: each agent runs with the token it was created with
    stored = _secret_text(secret, "token", "provision-failover", "failover-token",
                          facts).strip()
    if not stored:
        return
    facts.failover_fingerprint = fingerprint(stored)
    items = kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []
    for item in items:
        meta = item.get("metadata") or {}
        facts.token_fingerprints[str(meta.get("name"))] = (
            meta.get("annotations") or {}).get(ANNOTATION_TOKEN)


def connect(kubeconfig: Path) -> Connection:
    """Read ``kubeconfig`` and make its client. Any error here is the kubeconfig's (the
    caller reports it as such); nothing is asked of the cluster yet."""
    from provisioner.kube import client_for

    server, client_pem = _kubeconfig_parts(kubeconfig)
    not_after = _certificate_end(client_pem) if client_pem is not None else None
    return Connection(server, not_after, client_for(kubeconfig))


def gather(env: Environment, connection: Connection, token: str) -> LiveFacts:
    """Read the cluster (through ``connection``) and the cloud (with ``token``, if any)."""
    from provisioner.cloud.account import token_accepted
    from provisioner.cloud.inventory import inventory
    from provisioner.kube import Kube, KubeError
    from provisioner.node_facts import list_nodes

    facts = LiveFacts()
    server = connection.server
    facts.client_not_after = connection.client_not_after
    if facts.client_not_after is None:
        facts.notes.append("the kubeconfig's user has no client certificate: not judged")
    try:
        served = _serving_certificate(server)
    except OSError as e:
        served = None
        facts.notes.append(f"API server certificate not read ({server}: {e})")
    if served is not None:
        facts.serving_not_after = _certificate_end(served)
    elif server and not server.startswith("https:"):
        facts.notes.append(f"{server} is not HTTPS: no serving certificate to judge")
    kube = Kube(connection.api, timeout=10, attempts=2)
    facts.nodes = list_nodes(kube)
    if env.control_plane.endpoint == "floating_ip":
        _failover_tokens(kube, facts)
    try:
        secret = kube.request("GET", "/api/v1/namespaces/kube-system/secrets/digitalocean",
                              verb="get secrets in kube-system")
        stored = _secret_text(secret, "access-token", "digitalocean", "cloud-token", facts)
    except KubeError as e:
        if e.status != 404:
            raise
        stored = ""
        facts.notes.append("kube-system/digitalocean not found: the cluster's token not judged")
    if env.backups is not None:
        from provisioner.cluster.backup_record import read_record

        facts.backup_record = read_record(connection.api)
        facts.backup_read = True
    if token:
        facts.local_token_ok = token_accepted(token)
        if env.control_plane.endpoint == "floating_ip":
            cloud = inventory(env, token)
            facts.floating_ip, facts.holder = cloud["floating_ip"], cloud["floating_ip_holder"]
            facts.holder_read = True
    else:
        facts.notes.append("no DIGITALOCEAN_TOKEN: the floating IP's holder and the tokens "
                           "not read")
    if stored:
        facts.cluster_token_ok = (facts.local_token_ok if stored == token and token
                                  else token_accepted(stored))
    return facts


def live_report(env: Environment, config: str, kubeconfig: Path, connection: Connection,
                token: str) -> dict[str, Any]:
    """Findings and notes of the online check, JSON-serialisable (``connection``: what
    `connect` made of ``kubeconfig``)."""
    facts = gather(env, connection, token)
    found = judge(env, config, facts, clock.now())
    return {"kubeconfig": str(kubeconfig), "findings": [asdict(f) for f in found],
            "notes": facts.notes}
