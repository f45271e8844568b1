"""Node bootstrap on the fake API server: what a kubeadm cluster does for a joining kubelet.

Written from kubernetes/kubernetes (the files named below, read on its default branch;
these behaviours are unchanged since certificates.k8s.io/v1, 1.19, through 1.36, the
releases provision installs):

* Token authentication (plugin/pkg/auth/authenticator/token/bootstrap/bootstrap.go,
  which kubeadm turns on with ``--enable-bootstrap-token-auth``): a bearer token
  ``<id>.<secret>`` is accepted while the Secret ``kube-system/bootstrap-token-<id>`` of
  type ``bootstrap.kubernetes.io/token`` exists, its ``token-secret`` matches, it has not
  expired and has ``usage-bootstrap-authentication: "true"``; the user is
  ``system:bootstrap:<id>`` in ``system:bootstrappers`` plus the token's
  ``auth-extra-groups``. The fake records groups by user name (certificates.groups_of),
  so it accepts only tokens whose extra group is kubeadm's default node group, as every
  token provision makes is (provisioner/bootstrap/join_credentials.py).
* ``kube-public/cluster-info`` (kubeadm cmd/kubeadm/app/phases/bootstraptoken/clusterinfo/
  clusterinfo.go): a kubeconfig naming the endpoint and the CA, readable by
  ``system:anonymous`` (the Role kubeadm binds there), signed for each token with
  ``usage-bootstrap-signing`` by the bootstrap signer (pkg/controller/bootstrap/
  bootstrapsigner.go) under ``jws-kubeconfig-<id>``: a detached JWS, HS256 keyed by the
  token secret (staging/src/k8s.io/cluster-bootstrap/token/jws/jws.go).
* The csrapproving controller (pkg/controller/certificates/approver/sarapprove.go at
  017bb93887fb): a request for signer ``kubernetes.io/kube-apiserver-client-kubelet`` that
  is a kubelet client request (CN ``system:node:<name>``, O ``system:nodes``, usages client
  auth with digital signature and/or key encipherment: pkg/apis/certificates/helpers.go
  IsKubeletClientCSR) is approved, reason ``AutoApproved``, when a SubjectAccessReview
  allows its requester ``create`` on ``certificatesigningrequests/nodeclient``, which kubeadm
  grants to ``system:bootstrappers:kubeadm:default-node-token`` (cmd/kubeadm/app/phases/
  bootstraptoken/node/tlsbootstrap.go, AutoApproveNodeBootstrapTokens). It never
  approves ``kubernetes.io/kubelet-serving``: provision's approver does.
* The csrsigning controller (pkg/controller/certificates/signer) signs every approved
  request of the two kubelet signers with the cluster CA (``--cluster-signing-*``, the CA
  kubeadm gives kube-controller-manager) and writes ``status.certificate``.

Both controllers run as one loop (``CertificateControllers``) on their own thread, each
pass taking every request it can act on: one request's wait never holds another's.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import threading
from typing import TYPE_CHECKING, Any

from . import catalog

if TYPE_CHECKING:
    from .server import FakeKubeAPI

NAMESPACE = "kube-system"
TOKEN_TYPE = "bootstrap.kubernetes.io/token"
NODE_GROUP = "system:bootstrappers:kubeadm:default-node-token"
CLIENT_SIGNER = "kubernetes.io/kube-apiserver-client-kubelet"
SERVING_SIGNER = "kubernetes.io/kubelet-serving"
CLUSTER_INFO = "cluster-info"
JWS_PREFIX = "jws-kubeconfig-"
CSR = catalog.get("certificates.k8s.io/v1", "CertificateSigningRequest")
CONFIGMAP = catalog.get("v1", "ConfigMap")
CLIENT_USAGES = ({"client auth", "digital signature"}, {"client auth", "key encipherment"},
                 {"client auth", "digital signature", "key encipherment"})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def detached_jws(content: str, token_id: str, token_secret: str) -> str:
    """jws.go ComputeDetachedSignature: header..signature, HS256 keyed by the secret."""
    header = _b64url(json.dumps({"alg": "HS256", "kid": token_id},
                                separators=(",", ":")).encode())
    payload = _b64url(content.encode())
    mac = hmac.new(token_secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}..{_b64url(mac.digest())}"


def _token_data(secret: dict[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}


def _valid(data: dict[str, str], now: dt.datetime) -> bool:
    expires = data.get("expiration")
    return not expires or dt.datetime.fromisoformat(expires.replace("Z", "+00:00")) >= now


def authenticate_token(fake: FakeKubeAPI, token: str, now: dt.datetime) -> str | None:
    """``system:bootstrap:<id>`` for a valid node bootstrap token, else None."""
    token_id, dot, secret_part = token.strip().partition(".")
    if not dot or len(token_id) != 6 or len(secret_part) != 16:
        return None
    secret = fake.get("v1", "Secret", f"bootstrap-token-{token_id}", NAMESPACE)
    if secret is None or secret.get("type") != TOKEN_TYPE:
        return None
    data = _token_data(secret)
    if not hmac.compare_digest(data.get("token-secret", ""), secret_part) \
            or data.get("usage-bootstrap-authentication") != "true" or not _valid(data, now) \
            or data.get("auth-extra-groups", "") != NODE_GROUP:
        return None
    return f"system:bootstrap:{token_id}"


def anonymous_allowed(method: str, path: str) -> bool:
    """kubeadm's Role in kube-public: anyone may GET cluster-info, nothing else there."""
    return method == "GET" and path == f"/api/v1/namespaces/kube-public/configmaps/{CLUSTER_INFO}"


def create_cluster_info(fake: FakeKubeAPI, endpoint: str, ca_pem: bytes) -> None:
    """kubeadm init's bootstrap-token phase: cluster-info with the endpoint and the CA."""
    kubeconfig: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "preferences": {},
        "clusters": [{"name": "", "cluster": {
            "server": endpoint, "certificate-authority-data": base64.b64encode(ca_pem).decode()}}],
        "contexts": None, "current-context": "", "users": None}
    fake.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": CLUSTER_INFO, "namespace": "kube-public"},
                 "data": {"kubeconfig": json.dumps(kubeconfig)}}, "kubeadm")


def is_kubelet_client_request(csr: dict[str, Any]) -> bool:
    """sarapprove.go isNodeClientCert (helpers.go IsKubeletClientCSR)."""
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    spec = csr.get("spec") or {}
    if spec.get("signerName") != CLIENT_SIGNER or set(spec.get("usages") or []) not in \
            CLIENT_USAGES:
        return False
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.get("request") or ""))
    except ValueError:
        return False
    orgs = [a.value for a in request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    names = [a.value for a in request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        sans = None
    return orgs == ["system:nodes"] and len(names) == 1 and \
        str(names[0]).startswith("system:node:") and sans is None


class CertificateControllers:
    """csrapproving (kubelet client requests from node bootstrap tokens), csrsigning
    (the two kubelet signers) and the bootstrap signer (cluster-info), one loop."""

    def __init__(self, fake: FakeKubeAPI, ca_pem: bytes, ca_key_pem: bytes,
                 interval: float = 0.02) -> None:
        self.fake = fake
        self.ca_pem = ca_pem
        self.ca_key_pem = ca_key_pem
        self.interval = interval
        self.passes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name="fake-kube-controller-manager:certificates")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once()

    def run_once(self) -> None:
        now = dt.datetime.now(dt.UTC)
        self._sign_cluster_info(now)
        for csr in self.fake.objects("certificates.k8s.io/v1", "CertificateSigningRequest"):
            status = csr.get("status") or {}
            if status.get("certificate"):
                continue
            types = {c.get("type") for c in status.get("conditions") or []}
            if "Denied" in types or "Failed" in types:
                continue
            if "Approved" not in types:
                if is_kubelet_client_request(csr) and \
                        NODE_GROUP in ((csr.get("spec") or {}).get("groups") or []):
                    self._write(csr, "approval", {"type": "Approved", "status": "True",
                                                  "reason": "AutoApproved", "message":
                                                  "Auto approving kubelet client certificate "
                                                  "after SubjectAccessReview."})
                continue
            if (csr.get("spec") or {}).get("signerName") in (CLIENT_SIGNER, SERVING_SIGNER):
                self._write(csr, "status", None)
        self.passes += 1

    def _write(self, csr: dict[str, Any], subresource: str,
               condition: dict[str, Any] | None) -> None:
        body = json.loads(json.dumps(csr))
        if condition is not None:
            body.setdefault("status", {}).setdefault("conditions", []).append(condition)
        else:
            body.setdefault("status", {})["certificate"] = base64.b64encode(
                self._sign(csr)).decode()
        with self.fake.store.lock:
            current = self.fake.get("certificates.k8s.io/v1", "CertificateSigningRequest",
                                    csr["metadata"]["name"])
            if current is None or current["metadata"]["resourceVersion"] != \
                    csr["metadata"]["resourceVersion"]:
                return  # changed since read: the next pass sees the new one
            self.fake.registry.commit(CSR, current, body, "kube-controller-manager",
                                      subresource=subresource)

    def _sign(self, csr: dict[str, Any]) -> bytes:
        """pkg/controller/certificates/signer: the request's subject and names, the usages
        asked for, signed by the cluster CA."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        spec = csr["spec"]
        request = x509.load_pem_x509_csr(base64.b64decode(spec["request"]))
        ca = x509.load_pem_x509_certificate(self.ca_pem)
        key = serialization.load_pem_private_key(self.ca_key_pem, password=None)
        now = dt.datetime.now(dt.UTC)
        usage = ExtendedKeyUsageOID.SERVER_AUTH if "server auth" in spec.get("usages", []) \
            else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (x509.CertificateBuilder().subject_name(request.subject)
                   .issuer_name(ca.subject).public_key(request.public_key())
                   .serial_number(x509.random_serial_number())
                   .not_valid_before(now - dt.timedelta(minutes=5))
                   .not_valid_after(now + dt.timedelta(days=365))
                   .add_extension(x509.BasicConstraints(ca=False, path_length=None), True)
                   .add_extension(x509.ExtendedKeyUsage([usage]), False))
        try:
            sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            builder = builder.add_extension(sans.value, False)
        except x509.ExtensionNotFound:
            pass
        cert = builder.sign(key, hashes.SHA256())  # type: ignore[arg-type]
        return cert.public_bytes(serialization.Encoding.PEM)

    def _sign_cluster_info(self, now: dt.datetime) -> None:
        """bootstrapsigner.go: a signature per valid signing token, none for others."""
        info = self.fake.get("v1", "ConfigMap", CLUSTER_INFO, "kube-public")
        if info is None:
            return
        content = (info.get("data") or {}).get("kubeconfig", "")
        wanted = {}
        for secret in self.fake.objects("v1", "Secret", NAMESPACE):
            if secret.get("type") != TOKEN_TYPE:
                continue
            data = _token_data(secret)
            if data.get("usage-bootstrap-signing") == "true" and _valid(data, now):
                wanted[JWS_PREFIX + data["token-id"]] = detached_jws(
                    content, data["token-id"], data["token-secret"])
        current = {k: v for k, v in (info.get("data") or {}).items() if k.startswith(JWS_PREFIX)}
        if current == wanted:
            return
        body = json.loads(json.dumps(info))
        body["data"] = {"kubeconfig": content, **wanted}
        with self.fake.store.lock:
            stored = self.fake.get("v1", "ConfigMap", CLUSTER_INFO, "kube-public")
            if stored is not None and stored["metadata"]["resourceVersion"] == \
                    info["metadata"]["resourceVersion"]:
                self.fake.registry.commit(CONFIGMAP, stored, body, "bootstrap-signer")
