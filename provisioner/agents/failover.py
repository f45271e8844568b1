#!/usr/bin/env python3
"""The floating-IP failover agent that runs on every control-plane node.

keepalived elects one MASTER among the control-plane nodes (unicast VRRP); a node whose local
API server stops answering its health check goes to FAULT and drops out. This agent does the
two things keepalived cannot do on DigitalOcean:

* ``configure``: DigitalOcean firewalls pass only TCP, UDP and ICMP, so VRRP (IP protocol
  112) cannot cross the VPC. The agent finds its peers (droplets tagged as this cluster's
  control plane) through the API, builds a VXLAN tunnel to them (UDP), and writes
  keepalived's configuration with unicast peers on the tunnel. Re-run by a timer, it picks up
  replaced control-plane droplets.
* ``notify``: keepalived calls it on every state change; on MASTER it assigns the floating
  IP to this droplet through the DigitalOcean API (``POST /v2/reserved_ips/{ip}/actions``;
  DigitalOcean renamed floating IPs to reserved IPs and deprecated the ``/v2/floating_ips``
  endpoints), retrying with backoff until the API confirms. DigitalOcean routes the
  address to whichever droplet holds it.
  Each state is recorded in a state file, so a MASTER notification that a later change has
  superseded (two nodes were MASTER for a moment) stops instead of taking the address back.
* the holder's way to its own endpoint: DigitalOcean delivers a reserved IP on the
  droplet's anchor IP and documents no hairpin, yet the holder is the endpoint's first
  client (kubeadm init, kubelet, kube-proxy). A DNAT in nat OUTPUT (chain
  ``PROVISION-API-ENDPOINT``) sends its own connections to ``floating_ip:6443`` to its
  private address while the API shows the address here and keepalived is not in FAULT.

* ``prestart``: keepalived.service's ``ExecStartPre`` (a drop-in): after a reboot the tunnel
  is gone and keepalived, started without it, exits at once; this builds it first, from
  the API's peers or, while the API does not answer, from the peers last seen.
* the timer's pass (``configure``): besides the above, it restarts a keepalived that is not
  running, and on the MASTER makes sure the address is on this droplet (a failover
  whose API calls all failed, or a partitioned node that kept it, is repaired within one
  period); it copies a rotated token from Secret ``kube-system/provision-failover`` and
  publishes the node's VRRP state as annotations on its Node (both through kubectl with
  the node's admin kubeconfig, best effort: the Kubernetes API never stops failover).

It is shipped verbatim in the control-plane user-data, so it depends only on the standard
library: the DigitalOcean API calls it makes are plain HTTPS requests.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shlex
import socket
import subprocess
import sys
import syslog
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

CONFIG = Path("/etc/provision/failover.json")
METADATA = "http://169.254.169.254/metadata/v1"
TUNNEL = "vrrp0"
TUNNEL_VNI = 4242
TUNNEL_NET = "169.254.100"  # link-local: never collides with a VPC, pod or service range
API = "https://api.digitalocean.com/v2/"
# Seconds per DigitalOcean API request: without a bound, a request to an API that stopped
# answering would block, and the retries (the new MASTER taking the address) never happen.
API_TIMEOUT = 10.0
PRIORITY_STEP = 20  # between control-plane numbers: 20/256 s of VRRP skew, well above jitter
ENDPOINT_CHAIN = "PROVISION-API-ENDPOINT"  # nat table; jumped to from OUTPUT
# Where `provision rotate` puts a new token, and the annotations `status` and `check` read.
TOKEN_SECRET = ("kube-system", "provision-failover", "token")
ANNOTATION_STATE = "provision.dev/vrrp-state"
ANNOTATION_KEEPALIVED = "provision.dev/keepalived"
ANNOTATION_CHECKED = "provision.dev/failover-checked-at"
# Which token the agent runs with: a short fingerprint (never the value), so that `rotate`
# can tell an agent that took the new token from one that refused it.
ANNOTATION_TOKEN = "provision.dev/failover-token"


def fingerprint(token: str) -> str:
    """The first 12 hex digits of the token's SHA-256: names a token without revealing it."""
    return hashlib.sha256(token.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Settings:
    """What the agent needs, from /etc/provision/failover.json (written by cloud-init)."""

    cluster: str
    floating_ip: str
    token: str
    controller_tag: str
    check_url: str = "https://127.0.0.1:6443/readyz"
    # A peer's API server, asked before the timer takes the address from that peer
    # ({ip}: its private address, which kubeadm's serving certificate names).
    peer_check_url: str = "https://{ip}:6443/readyz"
    vxlan_port: int = 8473
    router_id: int = 51
    droplet_id: str | None = None  # tests set these; on DigitalOcean the metadata says
    private_ip: str | None = None
    api_endpoint: str | None = None  # the API's /v2/ root; DigitalOcean's when unset
    api_timeout: float = API_TIMEOUT
    keepalived_conf: str = "/etc/keepalived/keepalived.conf"
    notify_command: str = "/usr/bin/python3 /usr/local/lib/provision/failover.py notify"
    check_command: str = "/usr/local/lib/provision/failover.py check"
    underlay_device: str | None = None
    state_file: str = "/run/provision-failover/state"  # keepalived's latest notification
    # Run after a changed configuration is written; only acts if keepalived already runs.
    reload_command: str = "systemctl try-reload-or-restart keepalived.service"
    # Also append every log line here: keepalived sends the notify and check commands'
    # output to /dev/null, and a host without syslog (a test world) would see nothing.
    log_file: str | None = None
    iptables: str = "iptables"  # the holder's DNAT to itself (see the module docstring)
    api_port: int = 6443
    assign_attempts: int = 8  # notify's tries (about 40 s); the timer's pass repairs after
    # The timer's liveness check (exit 0: running) and restart; "" turns the check off.
    keepalived_active_command: str = "systemctl is-active keepalived.service"
    keepalived_restart_command: str = "systemctl restart keepalived.service"
    # The peers last found, so that `prestart` builds the tunnel while the API is away;
    # beside keepalived.conf unless set (kept across reboots, unlike /run).
    peers_file: str | None = None
    # The Kubernetes API (token rotation, annotations): skipped while the file is missing.
    kubeconfig: str = "/etc/kubernetes/admin.conf"
    kubectl: str = "kubectl"
    # This node's own API server (its advertise address, which its certificate names), not
    # the endpoint: the floating IP may sit on a dead droplet exactly when a pass matters.
    kube_server: str | None = None
    node_name: str | None = None  # the kubelet registers the host name

    @classmethod
    def load(cls, path: Path) -> Settings:
        """Read and check the settings file."""
        data = json.loads(path.read_text())
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        settings = cls(**known)
        ipaddress.ip_address(settings.floating_ip)  # refuse anything that is not an address
        return settings


_log_file: str | None = None  # Settings.log_file of this run, once read


def log(message: str) -> None:
    """stderr (systemd's journal for ``configure``), syslog and the settings' log file.

    keepalived runs the notify and check commands with stdout and stderr on /dev/null, so
    without syslog a failed assignment would leave no trace on the node.
    """
    print(f"provision-failover: {message}", file=sys.stderr, flush=True)
    syslog.openlog("provision-failover", syslog.LOG_PID, syslog.LOG_DAEMON)
    syslog.syslog(syslog.LOG_INFO, message)
    if _log_file:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        # 0600: the log names the node's decisions; nobody else on the host needs them.
        descriptor = os.open(_log_file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with open(descriptor, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} [{os.getpid()}] {message}\n")


def metadata(path: str) -> str:
    """One value from the droplet metadata service (root only: the node's guard)."""
    with urllib.request.urlopen(f"{METADATA}/{path}", timeout=5) as response:
        return str(response.read().decode().strip())


class ApiError(Exception):
    """The DigitalOcean API answered with an error (status and its message)."""


def api(settings: Settings, method: str, path: str, body: dict[str, Any] | None = None,
        url: str | None = None) -> Any:
    """One DigitalOcean API request (`path` under /v2/, or a full `url`); its JSON answer."""
    target = url or (settings.api_endpoint or API).rstrip("/") + "/" + path
    request = urllib.request.Request(
        target, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {settings.token}",
                 "Content-Type": "application/json", "Accept": "application/json"})
    try:
        with _OPENER.open(request, timeout=settings.api_timeout) as response:
            text = response.read().decode()
    except urllib.error.HTTPError as e:
        try:
            message = json.loads(e.read().decode()).get("message", "")
        except (ValueError, AttributeError, OSError):
            message = ""
        raise ApiError(f"{method} {path or target}: HTTP {e.code} {message}".rstrip()) from None
    return json.loads(text) if text.strip() else {}


def _same_origin(url: str, base: str) -> bool:
    link, ours = urllib.parse.urlsplit(url), urllib.parse.urlsplit(base)
    return (link.scheme, link.netloc) == (ours.scheme, ours.netloc) and link.path.startswith(
        ours.path)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """urllib re-sends the Authorization header to wherever a redirect points: the API never
    redirects, so a redirect is refused rather than followed with the token."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_OPENER = urllib.request.build_opener(_NoRedirects())


def holder(settings: Settings) -> int | None:
    """The droplet the reserved IP is assigned to (``GET /v2/reserved_ips/{ip}``), or None."""
    found = api(settings, "GET", f"reserved_ips/{settings.floating_ip}")
    droplet = (found.get("reserved_ip") or {}).get("droplet") or {}
    return None if droplet.get("id") is None else int(droplet["id"])


def assign_to(settings: Settings, droplet_id: int) -> None:
    """Ask DigitalOcean to route the reserved IP to `droplet_id`."""
    api(settings, "POST", f"reserved_ips/{settings.floating_ip}/actions",
        {"type": "assign", "droplet_id": droplet_id})


def my_droplet_id(settings: Settings) -> int:
    """This droplet's id."""
    return int(settings.droplet_id or metadata("id"))


def assign(settings: Settings, attempts: int | None = None,
           still_master: Callable[[], bool] | None = None) -> bool:
    """Make the floating IP point at this droplet; True once the API shows it there.

    `still_master` is asked before every assignment: once keepalived has moved this node
    out of MASTER (two nodes were MASTER for a moment and this one lost), it stops, rather
    than taking the address back from the real MASTER on every retry.
    """
    me = my_droplet_id(settings)
    delay = 0.5
    for attempt in range(1, (attempts or settings.assign_attempts) + 1):
        try:
            current = holder(settings)
            if current == me:
                log(f"{settings.floating_ip} is on this droplet ({me})")
                return True
            if still_master is not None and not still_master():
                log(f"no longer MASTER: leaving {settings.floating_ip} on droplet {current}")
                return False
            log(f"assigning {settings.floating_ip} to droplet {me} (was {current}), "
                f"attempt {attempt}")
            assign_to(settings, me)
        except Exception as e:  # the API is remote: any failure is retried, then reported
            log(f"attempt {attempt} failed: {type(e).__name__}: {e}")
        time.sleep(delay)
        delay = min(delay * 2, 8)
    log(f"giving up: {settings.floating_ip} is not on this droplet")
    return False


def claim(settings: Settings, attempts: int = 8) -> bool:
    """First boot of the first control-plane node: take the floating IP if nobody holds it.

    `kubeadm init` and every join need the endpoint to answer before keepalived runs. The
    assignment is made here rather than by Terraform, whose assignment resource would move
    the address back to this node on every apply after a failover. Once the address is
    here, this node's own connections to it go to itself (`set_endpoint_rule`): kubeadm
    init, the kubelet and kube-proxy use the endpoint long before keepalived runs.
    """
    me = my_droplet_id(settings)
    for attempt in range(1, attempts + 1):
        try:
            current = holder(settings)
            if current is not None:
                if current != me:
                    log(f"{settings.floating_ip} is held by droplet {current}; not claiming it")
                # kubeadm init talks to the endpoint next: the holder must reach itself.
                set_endpoint_rule(settings, present=current == me)
                return True
            break
        except Exception as e:  # retried like assign: the API may be briefly unreachable
            log(f"attempt {attempt} to read {settings.floating_ip} failed: {e}")
            time.sleep(min(0.5 * 2 ** attempt, 8))
    else:
        return False
    if not assign(settings, attempts):
        return False
    set_endpoint_rule(settings, present=True)
    return True


@contextlib.contextmanager
def _locked(settings: Settings, name: str) -> Iterator[None]:
    """An exclusive lock beside the state file, held for the block (`name`.lock)."""
    path = Path(settings.state_file).with_name(f"{name}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _nat(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    # -w: kube-proxy and the CNI change the same tables; wait for their lock, do not fail.
    return subprocess.run([settings.iptables, "-w", "5", "-t", "nat", *args],
                          capture_output=True, text=True, check=check)


def endpoint_rule(settings: Settings, private_ip: str) -> list[str]:
    """The DNAT rule, as ``iptables -S`` prints it: floating_ip:port -> private_ip:port."""
    port = str(settings.api_port)
    return ["-A", ENDPOINT_CHAIN, "-d", f"{settings.floating_ip}/32", "-p", "tcp", "-m", "tcp",
            "--dport", port, "-j", "DNAT", "--to-destination", f"{private_ip}:{port}"]


def set_endpoint_rule(settings: Settings, present: bool,
                      still_valid: Callable[[], bool] | None = None) -> bool:
    """Install or remove the holder's DNAT to itself; True when something changed.

    Idempotent: the chain and the jump to it from OUTPUT are created once and kept; the
    chain holds the one rule or nothing. Changes are serialized by a lock beside the state
    file, and `still_valid` is asked under it: a decision a later notification has made
    stale (a slow BACKUP reconcile after a FAULT) is dropped, not applied.
    """
    private_ip = settings.private_ip or metadata("interfaces/private/0/ipv4/address")
    with _locked(settings, "endpoint"):
        if still_valid is not None and not still_valid():
            return False
        if _nat(settings, "-S", ENDPOINT_CHAIN, check=False).returncode != 0:
            _nat(settings, "-N", ENDPOINT_CHAIN)
        if _nat(settings, "-C", "OUTPUT", "-j", ENDPOINT_CHAIN, check=False).returncode != 0:
            _nat(settings, "-I", "OUTPUT", "1", "-j", ENDPOINT_CHAIN)
        current = [line.split() for line in _nat(settings, "-S", ENDPOINT_CHAIN).stdout
                   .splitlines() if line.startswith("-A ")]
        wanted = [endpoint_rule(settings, private_ip)] if present else []
        if current == wanted:
            return False
        _nat(settings, "-F", ENDPOINT_CHAIN)
        if present:
            _nat(settings, *endpoint_rule(settings, private_ip))
    log(f"{settings.floating_ip}:{settings.api_port} from this node: "
        + (f"to {private_ip} (this droplet holds it)" if present else "the normal path"))
    return True


def recorded_state(settings: Settings) -> str | None:
    """keepalived's latest state on this node, as notify recorded it (None: never ran)."""
    try:
        return str(json.loads(Path(settings.state_file).read_text()).get("state"))
    except (OSError, ValueError, AttributeError):
        return None


def _state_record(settings: Settings) -> str:
    """The state file as it is now: any later notification changes it (its order does)."""
    try:
        return Path(settings.state_file).read_text()
    except OSError:
        return ""


def endpoint_wanted(state: str | None, current_holder: int | None, me: int) -> bool:
    """Whether this node sends its own connections to the endpoint to itself.

    While DigitalOcean routes the address here, except in FAULT (own API server down).
    Not being MASTER is not enough to remove it: keepalived starts in BACKUP on the node
    that claimed the address for kubeadm init.
    """
    return state != "FAULT" and current_holder == me


def reconcile_endpoint(settings: Settings, still_valid: Callable[[], bool] | None = None,
                       take: bool = False) -> bool:
    """Make the rule match who holds the address (the timer, BACKUP and STOP).

    With `take` (the timer's pass), a node whose recorded state is MASTER first makes sure
    the address is here: one read, and one assignment if it is elsewhere. A failover whose
    assignments all failed (the API was down for notify's ~40 s) or a node that kept the
    address through a partition would otherwise leave it on the wrong droplet for good.
    Two MASTERs at once (VRRP between them broken, both reaching the API) would pass the
    address back and forth on every pass: see `_two_masters` for when it is left alone.
    """
    record = _state_record(settings)
    state = recorded_state(settings)
    current = None if state == "FAULT" else holder(settings)
    me = my_droplet_id(settings)

    def unchanged() -> bool:
        # The timer's decision stands only while no notification has come in since.
        return _state_record(settings) == record and (still_valid is None or still_valid())

    if take and state == "MASTER" and current == me:
        _note_held(settings, record)
    elif take and state == "MASTER" and not _two_masters(settings, current, record) \
            and unchanged():
        log(f"MASTER, but {settings.floating_ip} is on droplet {current}: assigning it here")
        assign_to(settings, me)
        _note_held(settings, record)
        current = me  # DigitalOcean routes it here once the action completes
    return set_endpoint_rule(settings, endpoint_wanted(state, current, me), unchanged)


def _held_path(settings: Settings) -> Path:
    return Path(settings.state_file).with_name("held")


def _note_held(settings: Settings, record: str) -> None:
    """Remember that the address was here during this MASTER notification (`record`)."""
    try:
        _held_path(settings).write_text(record)
    except OSError as e:
        log(f"cannot write {_held_path(settings)}: {e}")


def _two_masters(settings: Settings, current: int | None, record: str) -> bool:
    """Whether to leave the address on `current` although this node is MASTER.

    Only when all of these hold: the address was on this droplet earlier in the same
    MASTER term (so a peer took it from us: that peer is MASTER too), the holder is one of
    our control-plane peers, and its API server answers /readyz on its private address
    (it serves the endpoint). A holder that is not a peer, is gone or does not answer (a
    dead or partitioned node that kept the address) is taken from; so is a live peer that
    held the address before this term began (its keepalived died: this node is the
    MASTER that failover chose).
    """
    if current is None:
        return False
    try:
        held = _held_path(settings).read_text() == record
    except OSError:
        held = False
    if not held:
        return False
    address = next((ip for _, droplet, ip in controller_droplets(settings)
                    if droplet == current), None)
    if address is None or not _answers(settings.peer_check_url.format(ip=address)):
        return False
    log(f"two masters: {settings.floating_ip} is on droplet {current}, a control-plane peer "
        f"whose API server answers at {address}; leaving it there (check the {TUNNEL} "
        "tunnel between the control-plane nodes)")
    return True


def _answers(url: str) -> bool:
    """Whether an API server's /readyz at `url` answers 200 (its certificate unchecked:
    readiness is asked, not identity, as in `check`)."""
    import ssl

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(url, timeout=3, context=context) as response:
            return bool(response.status == 200)
    except Exception:
        return False


def controller_number(name: str) -> int:
    """``prod-cp-2`` -> 2: the node's place in the election and on the tunnel."""
    match = re.search(r"-cp-(\d+)$", name)
    if not match:
        raise ValueError(f"{name!r} is not a control-plane droplet name")
    return int(match.group(1))


def peers(settings: Settings) -> dict[int, str]:
    """Control-plane number -> private IPv4, for every droplet with the controller tag."""
    return {number: address for number, _, address in controller_droplets(settings)}


def controller_droplets(settings: Settings) -> list[tuple[int, int, str]]:
    """(control-plane number, droplet id, private IPv4) of every droplet with the tag."""
    found = []
    query = urllib.parse.urlencode({"tag_name": settings.controller_tag, "per_page": 200})
    page = api(settings, "GET", f"droplets?{query}")
    while True:
        for droplet in page.get("droplets") or []:
            private = next((n.get("ip_address") for n in
                            (droplet.get("networks") or {}).get("v4") or []
                            if n.get("type") == "private"), None)
            if private:
                found.append((controller_number(droplet["name"]), int(droplet["id"]),
                              str(ipaddress.ip_address(private))))
        following = ((page.get("links") or {}).get("pages") or {}).get("next")
        # The token goes only to the API it was configured for, whatever a link says: same
        # scheme and host (a prefix test would let "https://api.example.evil" pass).
        if not following or not _same_origin(following, settings.api_endpoint or API):
            return found
        page = api(settings, "GET", "", url=following)


def priority(me: int) -> int:
    """VRRP priority of control-plane node `me`: the lower the number, the higher.

    The step matters, not only the order: when the MASTER goes away, each BACKUP waits
    (256 - priority)/256 s of skew before taking over, and only a gap well above
    scheduling jitter lets the highest-priority BACKUP win alone. At 1 point (4 ms) two
    nodes become MASTER together, both assign the address, and the one that then steps
    down may hold it.
    """
    return max(250 - PRIORITY_STEP * (me - 1), 1)


def keepalived_config(settings: Settings, me: int, numbers: list[int]) -> str:
    """keepalived.conf: unicast VRRP on the tunnel, health-checked, no virtual address.

    DigitalOcean moves the floating IP through its API, not through ARP, so there is no
    virtual_ipaddress block: the notify command does the move. nopreempt keeps a recovered
    node from taking the address back and causing a second interruption.
    """
    auth = hashlib.sha256(settings.cluster.encode()).hexdigest()[:8]
    peer_lines = "\n".join(f"    {TUNNEL_NET}.{n}" for n in numbers if n != me)
    return f"""# Written by provision-failover configure; rewritten when control-plane nodes change.
global_defs {{
  router_id {settings.cluster}-cp-{me}
  enable_script_security
  script_user root
}}

vrrp_script api_server {{
  script "{settings.check_command}"
  interval 1
  timeout 2
  fall 2
  rise 2
}}

vrrp_instance api {{
  state BACKUP
  nopreempt
  interface {TUNNEL}
  virtual_router_id {settings.router_id}
  priority {priority(me)}
  advert_int 1
  unicast_src_ip {TUNNEL_NET}.{me}
  unicast_peer {{
{peer_lines}
  }}
  authentication {{
    auth_type PASS
    auth_pass {auth}
  }}
  track_script {{
    api_server
  }}
  notify "{settings.notify_command}"
}}
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, text=True)


def build_tunnel(settings: Settings, me: int, private_ip: str, found: dict[int, str]) -> None:
    """A VXLAN device over the VPC with one forwarding entry per peer (idempotent)."""
    exists = subprocess.run(["ip", "link", "show", TUNNEL], capture_output=True).returncode == 0
    if not exists:
        args = ["link", "add", TUNNEL, "type", "vxlan", "id", str(TUNNEL_VNI), "dstport",
                str(settings.vxlan_port), "local", private_ip, "nolearning"]
        if settings.underlay_device:
            args += ["dev", settings.underlay_device]
        _ip(*args)
        _ip("addr", "add", f"{TUNNEL_NET}.{me}/24", "dev", TUNNEL)
        _ip("link", "set", TUNNEL, "up")
    current = subprocess.run(["bridge", "fdb", "show", "dev", TUNNEL], capture_output=True,
                             text=True).stdout
    present = set(re.findall(r"\bdst (\S+)", current))
    wanted = {address for number, address in found.items() if number != me}
    for address in sorted(wanted - present):
        subprocess.run(["bridge", "fdb", "append", "00:00:00:00:00:00", "dev", TUNNEL,
                        "dst", address], check=True, capture_output=True)
    # A replaced control-plane node's old address: VRRP adverts flooded there would reach
    # nobody, or whichever droplet reuses the address.
    for address in sorted(present - wanted):
        subprocess.run(["bridge", "fdb", "del", "00:00:00:00:00:00", "dev", TUNNEL,
                        "dst", address], check=True, capture_output=True)


def _peers_path(settings: Settings) -> Path:
    return Path(settings.peers_file or Path(settings.keepalived_conf).with_name(
        "provision-peers.json"))


def known_peers(settings: Settings, fallback: bool = False) -> dict[int, str]:
    """The API's peers, remembered on disk; with `fallback`, the remembered ones while the
    API fails (a reboot must not wait for the API to bring keepalived back)."""
    path = _peers_path(settings)
    try:
        remembered = {int(k): str(ipaddress.ip_address(v))
                      for k, v in json.loads(path.read_text()).items()}
    except (OSError, ValueError, AttributeError, TypeError):
        remembered = {}
    try:
        found = peers(settings)
    except Exception as e:
        if not fallback or not remembered:
            raise
        log(f"peers not read ({type(e).__name__}: {e}); using those last seen, {path}")
        return remembered
    if found != remembered:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_name(f".{path.name}.{os.getpid()}")
        scratch.write_text(json.dumps({str(k): v for k, v in sorted(found.items())}) + "\n")
        os.replace(scratch, path)
    return found


def configure(settings: Settings, reload: bool = True, fallback: bool = False) -> bool:
    """Build the tunnel and write keepalived's configuration; True when it changed.

    `prestart` passes reload=False: keepalived is starting and waits for this (a reload
    asked of systemd from its own ExecStartPre would wait for that start). Serialized:
    the timer and keepalived's start may both build the tunnel after a reboot.
    """
    with _locked(settings, "configure"):
        found = known_peers(settings, fallback)
        me_name = f"{settings.cluster}-cp-"
        private_ip = settings.private_ip or metadata("interfaces/private/0/ipv4/address")
        mine = [n for n, ip in found.items() if ip == private_ip]
        if not mine:
            raise SystemExit(f"this droplet ({private_ip}) is not among {me_name}* {found}")
        me = mine[0]
        build_tunnel(settings, me, private_ip, found)
        text = keepalived_config(settings, me, sorted(found))
        target = Path(settings.keepalived_conf)
        if target.is_file() and target.read_text() == text:
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600, never readable by others even for a moment: it holds the VRRP
        # password (the settings file is written the same way, `save_token`).
        _write_private(target, text)
    if reload and settings.reload_command:
        subprocess.run(settings.reload_command.split(), check=False, capture_output=True)
    return True


def ensure_keepalived(settings: Settings) -> str | None:
    """``active``, ``restarted`` or ``failed``: keepalived running, or made to run again.

    systemd restarts it too (the drop-in's Restart=), but not once its start limit is hit
    or after a stop nobody undid. None when the check is off (no command).
    """
    if not settings.keepalived_active_command:
        return None
    shown = subprocess.run(shlex.split(settings.keepalived_active_command),
                           capture_output=True, text=True, timeout=60)
    said = shown.stdout.strip()
    # `systemctl is-active` says "activating" while systemd itself is (re)starting it.
    if shown.returncode == 0 or said in ("activating", "reloading"):
        return "active"
    log(f"keepalived is not running ({said or f'exit {shown.returncode}'}): restarting it")
    # Whatever it last notified no longer holds: a MASTER it was is not to be acted on.
    record_state(settings, "STOP")
    # Output to a file, not a pipe: a daemon forked by the command would keep a pipe open.
    with tempfile.TemporaryFile() as output:
        done = subprocess.run(shlex.split(settings.keepalived_restart_command),
                              stdin=subprocess.DEVNULL, stdout=output, stderr=output,
                              timeout=120, check=False)
        output.seek(0)
        if done.returncode != 0:
            text = output.read().decode(errors="replace").strip()
            log(f"keepalived did not restart (exit {done.returncode}): {text[-300:]}")
            return "failed"
    return "restarted"


# ------------------------------------------------------------- the Kubernetes API


def _kubectl(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """kubectl with the node's admin kubeconfig (as the CSR approver runs it)."""
    server = settings.kube_server or "https://{}:{}".format(
        settings.private_ip or metadata("interfaces/private/0/ipv4/address"), settings.api_port)
    return subprocess.run([settings.kubectl, "--kubeconfig", settings.kubeconfig, "--server",
                           server, "--request-timeout", "10s", *args],
                          capture_output=True, text=True, timeout=30)


def _kubectl_failed(what: str, result: subprocess.CompletedProcess[str]) -> RuntimeError:
    lines = result.stderr.strip().splitlines()
    return RuntimeError(f"{what}: {lines[-1] if lines else f'exit {result.returncode}'}")


def rotated_token(settings: Settings) -> str | None:
    """The token in Secret kube-system/provision-failover when it differs from ours."""
    namespace, name, key = TOKEN_SECRET
    found = _kubectl(settings, "get", "secret", "-n", namespace, name, "-o", "json")
    if found.returncode != 0:
        if "NotFound" in found.stderr:
            return None  # never rotated
        raise _kubectl_failed(f"reading Secret {namespace}/{name}", found)
    encoded = (json.loads(found.stdout).get("data") or {}).get(key)
    if not encoded:
        return None
    token = base64.b64decode(encoded, validate=True).decode("ascii", "replace").strip()
    if not re.fullmatch(r"[!-~]{8,}", token):  # printable, no spaces: a header value
        raise ValueError(f"Secret {namespace}/{name} key {key!r} holds no usable token")
    return None if token == settings.token else token


def _write_private(path: Path, text: str) -> None:
    """Replace `path` with `text` atomically (old or new, never half), created 0600."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    scratch.unlink(missing_ok=True)
    descriptor = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(descriptor, "w", encoding="utf-8") as handle:
        os.fchmod(handle.fileno(), 0o600)  # whatever the umask
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(scratch, path)


def save_token(path: Path, token: str) -> None:
    """Put `token` into the settings file: atomically (old or new, never half), 0600."""
    data = json.loads(path.read_text())
    data["token"] = token
    _write_private(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def token_works(candidate: Settings) -> bool:
    """Whether the DigitalOcean API accepts the candidate token for a read failover needs.

    Anyone who can write the Secret (or a mistyped `provision rotate`) could otherwise
    replace a working token with a dead one. A refusal is logged (the API's answer, never
    the token) and the token in use kept; an API that does not answer raises: the next
    pass tries again.
    """
    try:
        holder(candidate)
    except ApiError as e:
        log(f"the token in Secret {'/'.join(TOKEN_SECRET[:2])} (fingerprint "
            f"{fingerprint(candidate.token)}) is refused ({e}): keeping the one in use")
        return False
    return True


def publish(settings: Settings, keepalived: str | None) -> None:
    """The node's VRRP state, keepalived's health and the time, on its own Node."""
    state = recorded_state(settings)
    if keepalived == "failed" or state not in ("MASTER", "BACKUP", "FAULT"):
        state = "STOPPED"
    pairs = [f"{ANNOTATION_STATE}={state}", f"{ANNOTATION_TOKEN}={fingerprint(settings.token)}",
             f"{ANNOTATION_CHECKED}={time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}"]
    if keepalived:
        pairs.append(f"{ANNOTATION_KEEPALIVED}={keepalived}")
    node = settings.node_name or socket.gethostname()
    done = _kubectl(settings, "annotate", "node", node, "--overwrite", *pairs)
    if done.returncode != 0:
        raise _kubectl_failed(f"annotating node {node}", done)


def timer_pass(settings: Settings, path: Path) -> int:
    """The timer's run: the failover work first, then the Kubernetes API (best effort)."""
    ok, keepalived = _failover_work(settings)
    if settings.kubeconfig and Path(settings.kubeconfig).is_file():
        try:
            token = rotated_token(settings)
            if token and token_works(replace(settings, token=token)):
                save_token(path, token)
                settings = replace(settings, token=token)
                log(f"new failover token from Secret {'/'.join(TOKEN_SECRET[:2])}, saved")
                if not ok:  # the old token may be revoked already: again, with the new one
                    ok, keepalived = _failover_work(settings)
        except Exception as e:  # the API may be away: the token we have still serves
            log(f"token not checked: {type(e).__name__}: {e}")
        try:
            publish(settings, keepalived)
        except Exception as e:
            log(f"state not published: {type(e).__name__}: {e}")
    return 0 if ok and keepalived != "failed" else 1


def _failover_work(settings: Settings) -> tuple[bool, str | None]:
    """Peers and tunnel, keepalived alive, the address and the endpoint rule: each part on
    its own, so that none stops the others. (Whether all went well, keepalived's health.)"""
    ok = True
    try:
        changed = configure(settings)
        log("keepalived configuration " + ("written" if changed else "unchanged"))
    except Exception as e:  # the API may be away for a minute: the next pass retries
        log(f"keepalived configuration not checked: {type(e).__name__}: {e}")
        ok = False
    keepalived = None
    try:
        keepalived = ensure_keepalived(settings)
    except Exception as e:
        log(f"keepalived not checked: {type(e).__name__}: {e}")
        ok = False
    # A node whose keepalived crashed or was stopped gets no notification when another
    # node takes the address: its endpoint rule follows the API's answer here.
    try:
        reconcile_endpoint(settings, take=True)
    except Exception as e:
        log(f"address and endpoint rule not reconciled: {type(e).__name__}: {e}")
        ok = False
    return ok, keepalived


def check(settings: Settings) -> int:
    """keepalived's health check: 0 while the local API server answers ready."""
    import ssl

    context = ssl.create_default_context()
    # The local API server's certificate names the node and the endpoint, not 127.0.0.1's
    # role here; readiness is what is checked, not identity.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(settings.check_url, timeout=2, context=context) as response:
            return 0 if response.status == 200 else 1
    except Exception:
        return 1


def _notification_order() -> list[Any]:
    """When keepalived started this process: [boot id, start time in ticks, pid].

    keepalived forks one notify process per state change, in order, but they then run
    concurrently; the order they were started in, not the order they get to run, says
    which state is the latest.
    """
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        # Field 22 (starttime); the command name in field 2 may contain spaces.
        started = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return ["", time.time_ns(), os.getpid()]
    return [boot, started, os.getpid()]


def record_state(settings: Settings, state: str) -> Callable[[], bool] | None:
    """Note keepalived's latest state; None if a later notification already superseded it.

    Otherwise returns a function telling whether this notification is still the latest
    (for `assign`'s `still_master`). A state file that cannot be written does not stop
    an assignment: then the function always answers True.
    """
    path = Path(settings.state_file)
    order = _notification_order()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path.with_name(path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                previous = json.loads(path.read_text()).get("order")
            except (OSError, ValueError, AttributeError):
                previous = None
            if isinstance(previous, list) and len(previous) == 3 and (
                    previous[0] == order[0] and previous[1:] > order[1:]):
                return None
            scratch = path.with_name(f"{path.name}.{os.getpid()}")
            scratch.write_text(json.dumps({"state": state, "order": order}))
            os.replace(scratch, path)
    except OSError as e:
        log(f"cannot record the state in {path}: {e}")
        return lambda: True

    def latest() -> bool:
        try:
            return bool(json.loads(path.read_text()).get("order") == order)
        except (OSError, ValueError, AttributeError):
            return True

    return latest


def main(argv: list[str]) -> int:
    """Entry point: ``configure`` (the timer's pass), ``prestart`` (before keepalived),
    ``notify TYPE NAME STATE PRIORITY``, ``check``, ``claim``, ``endpoint`` (the rule only)."""
    parser = argparse.ArgumentParser(prog="provision-failover", description=__doc__)
    parser.add_argument("--config", type=Path, default=CONFIG)
    parser.add_argument("command", choices=["configure", "prestart", "notify", "check", "claim",
                                            "endpoint"])
    parser.add_argument("args", nargs="*")
    options = parser.parse_args(argv)
    settings = Settings.load(options.config)
    global _log_file
    _log_file = settings.log_file
    try:
        if options.command == "configure":
            return timer_pass(settings, options.config)
        return _run(settings, options.command, options.args)
    except Exception as e:
        # Under keepalived a traceback goes to /dev/null: say what failed where it is read.
        log(f"{options.command} failed: {type(e).__name__}: {e}")
        return 1


def _run(settings: Settings, command: str, args: list[str]) -> int:
    if command == "check":
        return check(settings)
    if command == "claim":
        return 0 if claim(settings) else 1
    if command == "prestart":
        changed = configure(settings, reload=False, fallback=True)
        log("before keepalived starts: tunnel up, configuration "
            + ("written" if changed else "unchanged"))
        return 0
    if command == "endpoint":
        reconcile_endpoint(settings)
        return 0
    state = args[2] if len(args) >= 3 else (args or ["?"])[0]
    log(f"keepalived state {state}")
    latest = record_state(settings, state)
    if latest is None:
        log(f"a later state change superseded {state}")
        return 0
    if state == "MASTER":
        if not assign(settings, still_master=latest):
            return 1
        if latest():  # the address is here in this MASTER term (see `_two_masters`)
            _note_held(settings, _state_record(settings))
        set_endpoint_rule(settings, present=True, still_valid=latest)
        return 0
    if state == "FAULT":
        set_endpoint_rule(settings, present=False, still_valid=latest)
        return 0
    reconcile_endpoint(settings, still_valid=latest)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
