"""The fake API server's node bootstrap does what kubeadm's cluster does, and no more.

tests/fakes/kubeapi/bootstrap.py cites each behaviour: bootstrap-token authentication
(plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go), anonymous reads of
``kube-public/cluster-info`` only (kubeadm's clusterinfo.go Role), its JWS per signing
token (pkg/controller/bootstrap/bootstrapsigner.go), kubelet client requests of
kubeadm's node token group auto-approved (pkg/controller/certificates/approver/
sarapprove.go) and signed by the cluster CA, serving requests never auto-approved.
"""

from __future__ import annotations

import base64
import http.client
import json
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.kubeapi import bootstrap as kb
from tests.fakes.kubeapi.tls import TLSMaterial, issue_client_cert, make_tls

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
INFO = "/api/v1/namespaces/kube-public/configmaps/cluster-info"


def token_secret(token_id: str, secret: str, *, expires: float, auth: bool = True,
                 group: str = kb.NODE_GROUP) -> dict[str, Any]:
    data = {"token-id": token_id, "token-secret": secret,
            "expiration": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            "usage-bootstrap-signing": "true", "auth-extra-groups": group}
    if auth:
        data["usage-bootstrap-authentication"] = "true"
    return {"apiVersion": "v1", "kind": "Secret", "type": kb.TOKEN_TYPE,
            "metadata": {"name": f"bootstrap-token-{token_id}", "namespace": "kube-system"},
            "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()}}


class Cluster:
    def __init__(self, kube: FakeKubeAPI, material: TLSMaterial) -> None:
        self.kube, self.material = kube, material
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        self.context.load_verify_locations(cadata=material.ca_pem.decode())

    def call(self, method: str, path: str, body: Any = None, token: str | None = None,
             context: ssl.SSLContext | None = None) -> tuple[int, Any]:
        conn = http.client.HTTPSConnection("127.0.0.1", self.kube.port,
                                           context=context or self.context, timeout=30)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        conn.request(method, path, json.dumps(body) if body is not None else None, headers)
        answer = conn.getresponse()
        raw = answer.read()
        conn.close()
        return answer.status, json.loads(raw) if raw else None

    def csr(self, name: str, signer: str, usages: list[str], cn: str,
            token: str | None = None, context: ssl.SSLContext | None = None) -> int:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn)])).sign(key, hashes.SHA256())
            .public_bytes(serialization.Encoding.PEM))
        status, _ = self.call("POST", CSR_PATH, {
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name}, "spec": {
                "request": base64.b64encode(pem).decode(), "signerName": signer,
                "usages": usages}}, token=token, context=context)
        return status


@pytest.fixture
def cluster() -> Iterator[Cluster]:
    material = make_tls()
    with FakeKubeAPI(tls=True, cert_pem=material.cert_pem, key_pem=material.key_pem,
                     ca_pem=material.ca_pem, client_ca_pem=material.ca_pem,
                     signer=(material.ca_pem, material.ca_key_pem), controllers=False) as kube:
        now = time.time()
        kube.create(token_secret("abcdef", "0123456789abcdef", expires=now + 3600), "kubeadm")
        kube.create(token_secret("old000", "0123456789abcdef", expires=now - 60), "kubeadm")
        kube.create(token_secret("noauth", "0123456789abcdef", expires=now + 3600,
                                 auth=False), "kubeadm")
        kb.create_cluster_info(kube, kube.base_url, material.ca_pem)
        yield Cluster(kube, material)


def test_anyone_reads_cluster_info_signed_for_each_valid_signing_token(
        cluster: Cluster) -> None:
    cluster.kube.wait_for(lambda: (cluster.kube.get("v1", "ConfigMap", "cluster-info",
                                                    "kube-public") or {}).get("data", {})
                          .get(kb.JWS_PREFIX + "abcdef"))
    status, info = cluster.call("GET", INFO)
    assert status == 200
    content = info["data"]["kubeconfig"]
    assert info["data"][kb.JWS_PREFIX + "abcdef"] == kb.detached_jws(
        content, "abcdef", "0123456789abcdef")
    assert kb.JWS_PREFIX + "old000" not in info["data"]  # expired: no signature
    # Nothing else is anonymous.
    assert cluster.call("GET", "/api/v1/namespaces/kube-system/configmaps/x")[0] == 401
    assert cluster.call("PUT", INFO, info)[0] == 401


def test_only_valid_authentication_tokens_authenticate(cluster: Cluster) -> None:
    path = "/api/v1/namespaces/kube-system/configmaps"
    assert cluster.call("GET", path, token="abcdef.0123456789abcdef")[0] == 200
    assert cluster.call("GET", path, token="abcdef.0123456789abcdee")[0] == 401
    assert cluster.call("GET", path, token="old000.0123456789abcdef")[0] == 401
    assert cluster.call("GET", path, token="noauth.0123456789abcdef")[0] == 401
    user = [r.user for r in cluster.kube.request_log if r.status == 200][-1]
    assert user == "system:bootstrap:abcdef"


def test_a_kubelet_client_request_of_the_node_token_is_approved_and_signed(
        cluster: Cluster) -> None:
    token = "abcdef.0123456789abcdef"
    assert cluster.csr("client", kb.CLIENT_SIGNER, ["digital signature", "client auth"],
                       "system:node:w1", token=token) == 201
    # The admin's request for a kubelet's client certificate: not a bootstrapper's.
    admin = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    admin.load_verify_locations(cadata=cluster.material.ca_pem.decode())
    cert, key = issue_client_cert(cluster.material, "kubernetes-admin")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "c").write_bytes(cert)
        (Path(tmp) / "k").write_bytes(key)
        admin.load_cert_chain(str(Path(tmp) / "c"), str(Path(tmp) / "k"))
    assert cluster.csr("by-admin", kb.CLIENT_SIGNER, ["digital signature", "client auth"],
                       "system:node:w2", context=admin) == 201
    # A serving request: provision's approver's to approve, never the controller's.
    assert cluster.csr("serving", kb.SERVING_SIGNER, ["digital signature", "server auth"],
                       "system:node:w1", token=token) == 201

    def issued() -> Any:
        return (cluster.kube.get("certificates.k8s.io/v1", "CertificateSigningRequest",
                                 "client") or {}).get("status", {}).get("certificate")

    cluster.kube.wait_for(issued)
    status = cluster.kube.get("certificates.k8s.io/v1", "CertificateSigningRequest",
                              "client")["status"]  # type: ignore[index]
    assert [(c["type"], c["reason"]) for c in status["conditions"]] == [
        ("Approved", "AutoApproved")]
    signed = x509.load_pem_x509_certificate(base64.b64decode(status["certificate"]))
    ca = x509.load_pem_x509_certificate(cluster.material.ca_pem)
    signed.verify_directly_issued_by(ca)
    assert signed.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == \
        "system:node:w1"
    time.sleep(0.3)  # several controller passes
    for name in ("by-admin", "serving"):
        left = cluster.kube.get("certificates.k8s.io/v1", "CertificateSigningRequest", name)
        assert left is not None and not (left.get("status") or {}).get("conditions"), name
