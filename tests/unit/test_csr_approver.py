"""The kubelet serving certificate approver's decision, on real certificate requests.

The requests are made with `cryptography` the way the kubelet makes them (Kubernetes
pkg/kubelet/certificate/kubelet.go, v1.27 and later: subject CN ``system:node:<name>``,
O ``system:nodes``; DNS names and IP addresses from the Node's addresses; an ECDSA P-256
key by default, client-go util/certificate; signer ``kubernetes.io/kubelet-serving``).
Usages: the signer permits ``[key encipherment, digital signature, server auth]`` or
``[digital signature, server auth]`` (Kubernetes documentation, "Certificates and
Certificate Signing Requests", kubernetes.io/kubelet-serving; kubernetes/kubernetes#111660,
v1.27: the kubelet asks for key encipherment only with an RSA key).
"""

from __future__ import annotations

import base64
import ipaddress
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from provisioner.agents import csr_approver

NODE = "prod-web-1-a1b2c"
NODE_IPS = ["10.10.0.5", "203.0.113.7"]
SERVING = ["digital signature", "server auth"]


def node_object(name: str = NODE, ips: list[str] | None = None) -> dict[str, Any]:
    """A Node as the kubelet and the DigitalOcean cloud controller manager record it."""
    internal, external = ips or NODE_IPS
    return {"metadata": {"name": name}, "status": {"addresses": [
        {"type": "Hostname", "address": name},
        {"type": "InternalIP", "address": internal},
        {"type": "ExternalIP", "address": external}]}}


def make_request(cn: str = f"system:node:{NODE}", orgs: tuple[str, ...] = ("system:nodes",),
                 dns: tuple[str, ...] = (NODE,), ips: tuple[str, ...] = tuple(NODE_IPS),
                 rsa_key: bool = False, email: str | None = None, uri: str | None = None,
                 extra_extension: bool = False) -> str:
    key: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048) if rsa_key \
        else ec.generate_private_key(ec.SECP256R1())
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, cn)] + [
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [
        x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    if email:
        names.append(x509.RFC822Name(email))
    if uri:
        names.append(x509.UniformResourceIdentifier(uri))
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    if extra_extension:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None),
                                        critical=True)
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def csr_object(pem: str | None = None, *, signer: str = "kubernetes.io/kubelet-serving",
               username: str = f"system:node:{NODE}",
               groups: tuple[str, ...] = ("system:nodes", "system:authenticated"),
               usages: list[str] | None = None) -> dict[str, Any]:
    """The CertificateSigningRequest as the API server stores it (username set by it)."""
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": "csr-abcde", "resourceVersion": "7"},
            "spec": {"request": base64.b64encode((pem or make_request()).encode()).decode(),
                     "signerName": signer, "usages": usages or list(SERVING),
                     "username": username, "groups": list(groups)},
            "status": {}}


def test_a_kubelets_own_request_is_approved() -> None:
    assert csr_approver.review(csr_object(), node_object()) is None


def test_an_rsa_kubelet_may_add_key_encipherment() -> None:
    usages = ["key encipherment", "digital signature", "server auth"]
    assert csr_approver.review(csr_object(make_request(rsa_key=True), usages=usages),
                               node_object()) is None


def test_the_parser_reads_what_cryptography_wrote() -> None:
    pem = make_request(dns=(NODE, "other"), ips=("10.10.0.5", "2001:db8::1"))
    parsed = csr_approver.parse_request(pem)
    assert sorted(parsed.subject) == [("2.5.4.10", "system:nodes"),
                                      ("2.5.4.3", f"system:node:{NODE}")]
    assert parsed.dns_names == [NODE, "other"]
    assert parsed.ip_addresses == ["10.10.0.5", "2001:db8::1"]
    assert parsed.extensions == ["2.5.29.17"] and parsed.other_names == []


@pytest.mark.parametrize(("case", "csr", "expected"), [
    ("wrong signer", lambda: csr_object(signer="kubernetes.io/kube-apiserver-client-kubelet"),
     "signer"),
    ("another node asks", lambda: csr_object(username="system:node:prod-web-2-a1b2c"),
     "subject"),
    ("not a node", lambda: csr_object(username="system:serviceaccount:default:x"),
     "not by a node"),
    ("node user without the nodes group",
     lambda: csr_object(groups=("system:authenticated",)), "not in system:nodes"),
    ("client auth", lambda: csr_object(usages=["digital signature", "client auth"]),
     "usages"),
    ("client and server auth",
     lambda: csr_object(usages=["digital signature", "server auth", "client auth"]), "usages"),
    ("extra SAN", lambda: csr_object(make_request(dns=(NODE, "kubernetes.default"))),
     "kubernetes.default"),
    ("extra IP SAN", lambda: csr_object(make_request(ips=(*NODE_IPS, "10.96.0.1"))),
     "10.96.0.1"),
    ("SAN of another node", lambda: csr_object(make_request(ips=("10.10.0.6",))),
     "10.10.0.6"),
    ("another node's name", lambda: csr_object(make_request(dns=("prod-web-2-a1b2c",))),
     "prod-web-2-a1b2c"),
    ("CN of another node",
     lambda: csr_object(make_request(cn="system:node:prod-web-2-a1b2c")), "subject"),
    ("CN not a node", lambda: csr_object(make_request(cn="kubernetes-admin")), "subject"),
    ("organisation masters",
     lambda: csr_object(make_request(orgs=("system:nodes", "system:masters"))), "subject"),
    ("e-mail SAN", lambda: csr_object(make_request(email="root@example.com")), "other than"),
    ("URI SAN", lambda: csr_object(make_request(uri="spiffe://cluster/ns/x")), "other than"),
    ("CA extension", lambda: csr_object(make_request(extra_extension=True)), "extensions"),
    ("no names", lambda: csr_object(make_request(dns=(), ips=())), "no DNS name"),
    ("not a request", lambda: csr_object("-----BEGIN CERTIFICATE-----\nAA==\n"
                                         "-----END CERTIFICATE-----\n"), "unreadable"),
])  # fmt: skip
def test_anything_else_stays_pending(case: str, csr: Any, expected: str) -> None:
    reason = csr_approver.review(csr(), node_object())
    assert reason is not None and expected in reason, (case, reason)


def test_a_node_that_does_not_exist_is_refused() -> None:
    reason = csr_approver.review(csr_object(), None)
    assert reason is not None and "does not exist" in reason


def test_names_are_checked_against_the_node_object_not_the_request() -> None:
    """The node's addresses come from its Node object: moved addresses, old ones refused."""
    reason = csr_approver.review(csr_object(), node_object(ips=["10.10.0.9", "203.0.113.9"]))
    assert reason is not None and "10.10.0.5" in reason


def test_only_requests_nobody_decided_are_pending() -> None:
    csr = csr_object()
    assert csr_approver.pending(csr)
    csr["status"] = {"conditions": [{"type": "Denied", "status": "True"}]}
    assert not csr_approver.pending(csr)


def test_a_node_cannot_certify_what_it_wrote_into_its_own_status() -> None:
    """NodeRestriction lets a node update its own Node status (kubernetes plugin/pkg/admission/
    noderestriction/admission.go admitNode), so a stolen kubelet credential can record any
    address or DNS name there. What it records is not enough: the only DNS name is the
    node's own, an address another Node holds is refused, and so are the networks no kubelet
    may name (services, pods, the API endpoint), as the control-plane nodes' service passes
    them (--refuse)."""
    forged = node_object()
    forged["status"]["addresses"] += [
        {"type": "InternalDNS", "address": "kubernetes.default.svc"},
        {"type": "ExternalIP", "address": "198.51.100.10"},  # the floating IP
        {"type": "InternalIP", "address": "10.96.0.1"},  # the kubernetes Service
        {"type": "InternalIP", "address": "10.10.0.6"}]  # another node's address
    other = node_object("prod-web-2-d3e4f", ips=["10.10.0.6", "203.0.113.8"])
    refused = [ipaddress.ip_network("10.96.0.0/12"), ipaddress.ip_network("10.244.0.0/16"),
               ipaddress.ip_network("198.51.100.10/32")]
    cases = {
        "a DNS name of the API": (("kubernetes.default.svc",), (), "names not recorded"),
        "another node's address": ((), ("10.10.0.6",), "held by another node"),
        "the kubernetes Service": ((), ("10.96.0.1",), "no kubelet may name"),
        "the floating IP": ((), ("198.51.100.10",), "no kubelet may name"),
    }
    for case, (dns, ips, expected) in cases.items():
        csr = csr_object(make_request(dns=(NODE, *dns), ips=(*NODE_IPS, *ips)))
        reason = csr_approver.review(csr, forged, [forged, other], refused)
        assert reason is not None and expected in reason, (case, reason)
    # The node's own name and addresses still pass with every check on.
    assert csr_approver.review(csr_object(), forged, [forged, other], refused) is None


def test_the_control_plane_service_refuses_services_pods_and_the_endpoint() -> None:
    import yaml

    from tests.support.rendering import rendered

    files = {f["path"]: f for f in yaml.safe_load(
        rendered("production")["cloud-init/controller-init.yaml"])["write_files"]}
    service = files["/etc/systemd/system/provision-csr-approver.service"]["content"]
    assert "--refuse 10.96.0.0/12 --refuse 10.244.0.0/16" in service
    assert "--refuse @@provision:api_endpoint@@/32" in service
