#!/usr/bin/env python3
"""Approves kubelet serving certificates, each only for its own node (control-plane nodes).

With ``serverTLSBootstrap: true`` each kubelet requests its serving certificate (signer
``kubernetes.io/kubelet-serving``); kube-controller-manager signs approved requests but
approves none itself. A request is approved only when the API server recorded its requester
as ``system:node:<name>`` in ``system:nodes``, its subject is exactly CN
``system:node:<name>``, O ``system:nodes``, its usages are digital signature and server auth
(key encipherment allowed: the kubelet adds it for RSA keys), and it names at least one DNS
name or IP address, nothing else, each the node's name or an address its Node object records.
Anything else stays pending (logged once; never denied). Shipped in the control-plane
user-data (standard library only), run by a systemd timer through kubectl with admin.conf;
the approval PUTs the request as read (resourceVersion included) to its ``approval``
subresource, so a request changed since it was reviewed is never approved. See README,
"Kubelet serving certificates".
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SIGNER = "kubernetes.io/kubelet-serving"
NODE_PREFIX = "system:node:"
NODES_GROUP = "system:nodes"
ALLOWED_USAGES = (
    frozenset({"digital signature", "server auth"}),
    frozenset({"digital signature", "key encipherment", "server auth"}),
)
IP_ADDRESS_TYPES = ("InternalIP", "ExternalIP")

_OID_CN = "2.5.4.3"
_OID_O = "2.5.4.10"
_OID_EXTENSION_REQUEST = "1.2.840.113549.1.9.14"
_OID_SAN = "2.5.29.17"


class BadRequest(ValueError):
    """The request is not a certificate request this agent can read."""


# ------------------------------------------------------------------ reading a CSR (DER)


def _tlv(data: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise BadRequest("truncated")
    tag, length = data[pos], data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise BadRequest("bad length")
        length = int.from_bytes(data[pos:pos + count], "big")
        pos += count
    if pos + length > len(data):
        raise BadRequest("truncated")
    return tag, pos, pos + length


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    found = []
    while start < end:
        tag, s, e = _tlv(data, start)
        if e > end:
            raise BadRequest("element overruns its parent")
        found.append((tag, s, e))
        start = e
    return found


def _oid(raw: bytes) -> str:
    if not raw:
        raise BadRequest("empty object identifier")
    parts = [min(raw[0] // 40, 2), raw[0] - 40 * min(raw[0] // 40, 2)]
    value = 0
    for byte in raw[1:]:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    return ".".join(str(p) for p in parts)


@dataclass
class Request:
    """What a PKCS#10 request asks for (RFC 2986; names per RFC 5280 4.2.1.6)."""

    subject: list[tuple[str, str]] = field(default_factory=list)  # (OID, value), in order
    dns_names: list[str] = field(default_factory=list)
    ip_addresses: list[str] = field(default_factory=list)
    other_names: list[int] = field(default_factory=list)  # GeneralName tags not DNS or IP
    extensions: list[str] = field(default_factory=list)  # OIDs of the requested extensions


def parse_request(pem: str) -> Request:
    """Subject, subject alternative names and extensions of a PEM certificate request."""
    lines = pem.strip().splitlines()
    if not lines or lines[0] != "-----BEGIN CERTIFICATE REQUEST-----" or \
            lines[-1] != "-----END CERTIFICATE REQUEST-----":
        raise BadRequest("not a PEM certificate request")
    try:
        der = base64.b64decode("".join(lines[1:-1]), validate=True)
    except ValueError:
        raise BadRequest("bad base64") from None
    tag, start, end = _tlv(der, 0)
    if tag != 0x30:
        raise BadRequest("not a SEQUENCE")
    outer = _children(der, start, end)
    if len(outer) != 3 or outer[0][0] != 0x30:
        raise BadRequest("not a CertificationRequest")
    info = _children(der, outer[0][1], outer[0][2])
    if len(info) != 4 or info[1][0] != 0x30 or info[3][0] != 0xA0:
        raise BadRequest("not a CertificationRequestInfo")
    found = Request()
    for rdn_tag, rs, re_ in _children(der, info[1][1], info[1][2]):
        if rdn_tag != 0x31:
            raise BadRequest("bad subject")
        for _, ats, ate in _children(der, rs, re_):
            oid_el, value_el = _children(der, ats, ate)
            found.subject.append((_oid(der[oid_el[1]:oid_el[2]]),
                                  der[value_el[1]:value_el[2]].decode("utf-8", "replace")))
    for _, as_, ae in _children(der, info[3][1], info[3][2]):
        attribute = _children(der, as_, ae)
        if _oid(der[attribute[0][1]:attribute[0][2]]) != _OID_EXTENSION_REQUEST:
            found.extensions.append("attribute " + _oid(der[attribute[0][1]:attribute[0][2]]))
            continue
        for _, vs, ve in _children(der, attribute[1][1], attribute[1][2]):  # SET of values
            for _, xs, xe in _children(der, vs, ve):  # Extensions: SEQUENCE OF Extension
                extension = _children(der, xs, xe)
                oid = _oid(der[extension[0][1]:extension[0][2]])
                found.extensions.append(oid)
                if oid != _OID_SAN:
                    continue
                value = extension[-1]
                _, ns, ne = _tlv(der, value[1])  # OCTET STRING holds GeneralNames
                for name_tag, gs, ge in _children(der, ns, ne):
                    raw = der[gs:ge]
                    if name_tag == 0x82:
                        found.dns_names.append(raw.decode("ascii", "replace"))
                    elif name_tag == 0x87:
                        try:
                            found.ip_addresses.append(str(ipaddress.ip_address(raw)))
                        except ValueError:
                            found.other_names.append(name_tag)
                    else:
                        found.other_names.append(name_tag)
    return found


# -------------------------------------------------------------------------- the decision


def pending(csr: dict[str, Any]) -> bool:
    """Neither approved nor denied yet (nor failed)."""
    conditions = (csr.get("status") or {}).get("conditions") or []
    return not any(c.get("type") in ("Approved", "Denied", "Failed") for c in conditions)


def node_of(csr: dict[str, Any]) -> str | None:
    """The node a kubelet's request comes from, by the identity the API server recorded."""
    username = str((csr.get("spec") or {}).get("username") or "")
    name = username.removeprefix(NODE_PREFIX)
    return name if username.startswith(NODE_PREFIX) and name else None


def review(csr: dict[str, Any], node: dict[str, Any] | None,
           others: Sequence[dict[str, Any]] = (),
           refused: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()
           ) -> str | None:
    """None to approve this kubelet serving request, else why it stays pending.

    `node` is the Node object named by the requester (None if there is none), `others` every
    other Node, `refused` the networks no kubelet may name (services, pods, the API
    endpoint). A node may write its own Node status (the NodeRestriction admission plugin
    allows it), so its recorded addresses alone prove nothing: a stolen kubelet credential
    could record the API endpoint or another node's address and get a certificate for it,
    signed by the CA every pod trusts. So the only DNS name is the node's own, and an
    address must also be held by no other Node and lie outside the refused networks.
    """
    spec = csr.get("spec") or {}
    if spec.get("signerName") != SIGNER:
        return f"signer {spec.get('signerName')!r} is not {SIGNER}"
    name = node_of(csr)
    if name is None:
        return f"requested by {spec.get('username')!r}, not by a node"
    if NODES_GROUP not in (spec.get("groups") or []):
        return f"requester {spec.get('username')} is not in {NODES_GROUP}"
    usages = spec.get("usages") or []
    if len(set(usages)) != len(usages) or frozenset(usages) not in ALLOWED_USAGES:
        return f"usages {sorted(usages)} are not a kubelet serving certificate's"
    try:
        request = parse_request(base64.b64decode(spec.get("request") or "").decode())
    except (BadRequest, ValueError, IndexError) as e:
        return f"unreadable request: {e}"
    if sorted(request.subject) != sorted([(_OID_CN, NODE_PREFIX + name), (_OID_O, NODES_GROUP)]):
        return f"subject {request.subject} is not CN={NODE_PREFIX}{name}, O={NODES_GROUP}"
    extra = [oid for oid in request.extensions if oid != _OID_SAN]
    if extra:
        return f"extensions other than subjectAltName requested: {extra}"
    if request.other_names:
        return "names other than DNS names and IP addresses requested"
    if not request.dns_names and not request.ip_addresses:
        return "no DNS name or IP address requested"
    if node is None:
        return f"node {name} does not exist"
    ips = _recorded_ips(node)
    held_elsewhere = set().union(*(_recorded_ips(other) for other in others
                                   if (other.get("metadata") or {}).get("name") != name))
    foreign = [n for n in request.dns_names if n != name] + \
        [ip for ip in request.ip_addresses if ip not in ips]
    if foreign:
        return f"names not recorded for node {name}: {foreign}"
    taken = [ip for ip in request.ip_addresses if ip in held_elsewhere]
    if taken:
        return f"addresses held by another node: {taken}"
    forbidden = [ip for ip in request.ip_addresses
                 if any(ipaddress.ip_address(ip) in network for network in refused)]
    if forbidden:
        return f"addresses no kubelet may name (services, pods, the API endpoint): {forbidden}"
    return None


def _recorded_ips(node: dict[str, Any]) -> set[str]:
    addresses = (node.get("status") or {}).get("addresses") or []
    return {str(ipaddress.ip_address(a["address"])) for a in addresses
            if a.get("type") in IP_ADDRESS_TYPES and _is_ip(a.get("address"))}


def _is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return False
    return True


# --------------------------------------------------------------------------- the API


def log(message: str) -> None:
    print(f"provision-csr-approver: {message}", file=sys.stderr, flush=True)


class Kubectl:
    """The few API calls, through kubectl with the node's admin kubeconfig."""

    def __init__(self, command: Sequence[str]) -> None:
        self.command = list(command)

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self.command, *args], input=stdin, capture_output=True,
                              text=True, timeout=60)

    def json(self, *args: str) -> Any:
        result = self.run(*args, "-o", "json")
        if result.returncode != 0:
            raise RuntimeError(f"kubectl {' '.join(args)}: {result.stderr.strip()}")
        return json.loads(result.stdout)

    def approve(self, csr: dict[str, Any], message: str) -> bool:
        """PUT the request as read, plus an Approved condition, to its approval subresource."""
        body = json.loads(json.dumps(csr))
        body.setdefault("status", {}).setdefault("conditions", []).append({
            "type": "Approved", "status": "True", "reason": "ProvisionNodeServingCertificate",
            "message": message,
            "lastUpdateTime": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
        name = csr["metadata"]["name"]
        result = self.run(
            "replace", "--raw",
            f"/apis/certificates.k8s.io/v1/certificatesigningrequests/{name}/approval",
            "-f", "-", stdin=json.dumps(body))
        if result.returncode != 0:
            log(f"could not approve {name}: {result.stderr.strip()}")
            return False
        return True


APPROVERS = 8  # approvals sent at once: each is one PUT, independent of the others


def approve_pending(kubectl: Kubectl, reported: Path | None = None,
                    refused: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = (),
                    workers: int = APPROVERS) -> dict[str, str]:
    """One pass: review every pending kubelet serving request; name -> outcome.

    Two LISTs a pass (requests, Nodes) and one PUT per approved request, whatever the
    number of nodes: each requester's Node comes from the one LIST, not a GET per request,
    and the PUTs go out `workers` at a time, so 500 nodes joining at once are approved in
    one pass that does not wait on each request in turn.
    """
    listed = kubectl.json("get", "certificatesigningrequests")
    nodes: list[dict[str, Any]] | None = None
    by_name: dict[str, dict[str, Any]] = {}
    seen = set(reported.read_text().split()) if reported and reported.is_file() else set()
    outcomes = {}
    approvals: list[tuple[dict[str, Any], str]] = []
    for csr in listed.get("items") or []:
        spec = csr.get("spec") or {}
        if spec.get("signerName") != SIGNER or not pending(csr):
            continue
        name = csr["metadata"]["name"]
        node_name = node_of(csr)
        if nodes is None:
            nodes = list(kubectl.json("get", "nodes").get("items") or [])
            by_name = {str((n.get("metadata") or {}).get("name")): n for n in nodes}
        node = by_name.get(node_name) if node_name else None
        reason = review(csr, node, nodes, refused)
        if reason is None:
            approvals.append((csr, str(node_name)))
            continue
        outcomes[name] = f"pending: {reason}"
        if name not in seen:  # once, not on every pass of the timer
            log(f"left {name} pending: {reason}")
            seen.add(name)
    outcomes.update(_approve_all(kubectl, approvals, workers))
    if reported is not None:
        current = {csr["metadata"]["name"] for csr in listed.get("items") or []}
        reported.parent.mkdir(parents=True, exist_ok=True)
        reported.write_text("\n".join(sorted(seen & current)) + "\n")
    return outcomes


def _approve_all(kubectl: Kubectl, approvals: Sequence[tuple[dict[str, Any], str]],
                 workers: int) -> dict[str, str]:
    """Send the approvals, `workers` at a time; name -> outcome."""
    from concurrent.futures import ThreadPoolExecutor

    def approve(item: tuple[dict[str, Any], str]) -> tuple[str, str]:
        csr, node_name = item
        name = csr["metadata"]["name"]
        ok = kubectl.approve(csr, f"serving certificate of node {node_name}, names checked "
                                  "against its Node object by provision")
        if ok:
            log(f"approved {name} for node {node_name}")
        return name, "approved" if ok else "not approved (see above)"

    if not approvals:
        return {}
    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(approvals)))) as pool:
        return dict(pool.map(approve, approvals))


def main(argv: list[str]) -> int:
    """``csr_approver.py [--kubeconfig PATH] [--kubectl PATH]``: one pass."""
    parser = argparse.ArgumentParser(prog="provision-csr-approver", description=__doc__)
    parser.add_argument("--kubeconfig", default="/etc/kubernetes/admin.conf")
    parser.add_argument("--kubectl", default="kubectl")
    parser.add_argument("--reported", type=Path,
                        default=Path("/run/provision-csr-approver/reported"))
    parser.add_argument("--refuse", action="append", default=[], type=ipaddress.ip_network,
                        metavar="CIDR", help="a network no kubelet may name (repeatable)")
    options = parser.parse_args(argv)
    kubectl = Kubectl([options.kubectl, "--kubeconfig", options.kubeconfig,
                       "--request-timeout", "30s"])
    try:
        approve_pending(kubectl, options.reported, options.refuse)
    except Exception as e:  # the API may be away (a control-plane node restarting)
        log(f"pass failed: {type(e).__name__}: {e}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
