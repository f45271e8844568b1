"""Many workers joining at once, over real HTTPS, against the fake API server.

Each simulated node is a thread that sends what a worker's ``kubeadm join`` and kubelet
send (provision renders the join: templates/kubeadm/join.yaml.j2; the bootstrap script
runs it: templates/scripts/bootstrap.sh.j2 ``join_until_deadline``), as kubernetes/
kubernetes does it:

1. discovery (cmd/kubeadm/app/discovery/token/token.go, retrieveValidatedConfigInfo):
   GET ``kube-public/configmaps/cluster-info`` anonymously without verifying TLS, check
   the ``jws-kubeconfig-<id>`` signature with the token and the CA against the pinned
   ``caCertHashes`` (sha256 of the CA's SubjectPublicKeyInfo), then GET it again over TLS
   verified with that CA;
2. with the bootstrap token: GET ``kube-system/configmaps/kubeadm-config``
   (cmd/kubeadm/app/util/config/cluster.go, FetchInitConfigurationFromCluster) and
   ``kubelet-config`` (the kubelet's component config), GET the Node of its name (404: no
   Ready Node of the name: cmd/kubeadm/app/cmd/phases/join/kubelet.go);
3. the kubelet's TLS bootstrap: POST a CertificateSigningRequest for
   ``kubernetes.io/kube-apiserver-client-kubelet`` and wait for its certificate as
   client-go's util/certificate/csr/csr.go WaitForCertificate does (a LIST of that name,
   then a WATCH if the certificate is not there yet); the csrapproving and csrsigning
   controllers answer (tests/fakes/kubeapi/bootstrap.py);
4. as ``system:node:<name>`` with that certificate: POST its Node, PATCH its status Ready
   with its address; then its serving certificate (``serverTLSBootstrap: true``): POST a
   ``kubernetes.io/kubelet-serving`` request and wait for it, which provision's approver
   (provisioner/agents/csr_approver.py, run through kubectl as the control-plane timer
   runs it) approves and kube-controller-manager signs.

Meanwhile provision's own wait runs unchanged (provisioner/bootstrap/readiness.py
``wait_for_nodes``, as `up` calls it). `run` returns the figures: requests per node (each
node's own count, checked against the server's log), the approver's passes, when each
node became Ready and when provision's wait ended, and how many nodes were joining at the
same moment.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import random
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fakes.kubeapi import FakeKubeAPI
from tests.fakes.kubeapi import bootstrap as kb
from tests.fakes.kubeapi.tls import issue_client_cert, make_tls

CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
APPROVER = Path(__file__).resolve().parents[2] / "provisioner" / "agents" / "csr_approver.py"


class JoinFailed(RuntimeError):
    """A simulated node could not join (the message says at which step)."""


@dataclass
class NodeRun:
    """One node's join: its requests and when it started, was Ready, had its serving
    certificate."""

    name: str
    requests: int = 0
    started: float = 0.0
    ready: float = 0.0
    asked: float = 0.0  # its serving request was created
    served: float = 0.0
    error: str = ""


@dataclass
class Figures:
    """What `run` measured."""

    nodes: int
    requests_per_node: float  # mean over nodes (their own count)
    max_requests: int
    server_requests: int  # the server's log of the nodes' users (anonymous, token, nodes)
    client_requests: int  # the sum of the nodes' own counts
    approver_passes: int  # passes run until every serving certificate was issued
    approver_lists: int  # its GETs (kubectl's LISTs come in pages of 500)
    approver_puts: int  # its approvals
    # the most passes any serving request waited for: started after it was made, up to
    # the one that approved it (1: the first pass that could see it approved it)
    approver_passes_needed: int
    slowest_ready: float  # s from the start to the last node Ready
    wait_ended: float  # s from the start to provision's wait returning
    sum_of_joins: float  # the nodes' join times added up (a serial join would take this)
    peak_joining: int  # nodes between their first request and Ready at one moment
    runs: list[NodeRun] = field(default_factory=list, repr=False)


def ca_cert_hash(ca_pem: bytes) -> str:
    """kubeadm's pin: sha256 of the CA certificate's SubjectPublicKeyInfo."""
    ca = x509.load_pem_x509_certificate(ca_pem)
    spki = ca.public_key().public_bytes(serialization.Encoding.DER,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def _trusting(ca_pem: bytes) -> ssl.SSLContext:
    """A client context that trusts only the cluster CA (not the system's store) and checks
    the server's name (the fake's certificate names 127.0.0.1)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(cadata=ca_pem.decode())
    return context


class Agent:
    """One node's kubeadm join and kubelet start, over real HTTPS."""

    def __init__(self, name: str, address: str, host: str, port: int, token: str,
                 pin: str, run: NodeRun) -> None:
        self.name, self.address, self.host, self.port = name, address, host, port
        self.token, self.pin, self.run = token, pin, run
        self.conn: http.client.HTTPSConnection | None = None

    def _connect(self, context: ssl.SSLContext) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = http.client.HTTPSConnection(self.host, self.port, context=context,
                                                timeout=600)  # a loaded machine: no tight timeouts

    def _call(self, method: str, path: str, body: Any = None, token: str | None = None,
              content_type: str = "application/json") -> tuple[int, Any]:
        assert self.conn is not None
        headers = {"Accept": "application/json", "User-Agent": f"kubeadm/{self.name}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = content_type
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.run.requests += 1
        self.conn.request(method, path, body=data, headers=headers)
        answer = self.conn.getresponse()
        raw = answer.read()
        return answer.status, json.loads(raw) if raw else None

    def _ok(self, step: str, status: int, body: Any, *wanted: int) -> Any:
        if status not in (wanted or (200, 201)):
            raise JoinFailed(f"{self.name}: {step}: HTTP {status}: {str(body)[:200]}")
        return body

    def join(self) -> None:
        info_path = "/api/v1/namespaces/kube-public/configmaps/cluster-info"
        insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # no system CAs: nothing to verify
        insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
        self._connect(insecure)
        first = self._ok("cluster-info", *self._call("GET", info_path))
        token_id, token_secret = self.token.split(".")
        content = first["data"]["kubeconfig"]
        if first["data"].get(kb.JWS_PREFIX + token_id) != kb.detached_jws(
                content, token_id, token_secret):
            raise JoinFailed(f"{self.name}: cluster-info signature does not verify")
        ca_pem = base64.b64decode(json.loads(content)["clusters"][0]["cluster"][
            "certificate-authority-data"])
        if ca_cert_hash(ca_pem) != self.pin:
            raise JoinFailed(f"{self.name}: the cluster CA is not the pinned one")
        self._connect(_trusting(ca_pem))
        second = self._ok("cluster-info again", *self._call("GET", info_path))
        if second["data"]["kubeconfig"] != content:
            raise JoinFailed(f"{self.name}: cluster-info changed between the reads")
        for name in ("kubeadm-config", "kubelet-config"):
            self._ok(name, *self._call(
                "GET", f"/api/v1/namespaces/kube-system/configmaps/{name}", token=self.token))
        self._ok("existing Node", *self._call("GET", f"/api/v1/nodes/{self.name}",
                                             token=self.token), 404)
        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._certificate(key, kb.CLIENT_SIGNER, ["digital signature", "client auth"],
                                 f"node-csr-{self.name}", [], self.token)
        client = _trusting(ca_pem)
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp) / "c.pem", Path(tmp) / "k.pem"
            cert_file.write_bytes(cert)
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                   serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            client.load_cert_chain(str(cert_file), str(key_file))
        self._connect(client)
        self._ok("register Node", *self._call("POST", "/api/v1/nodes", {
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": self.name, "labels": {
                "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux"}}}))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self._ok("status Ready", *self._call(
            "PATCH", f"/api/v1/nodes/{self.name}/status", {"status": {
                "addresses": [{"type": "InternalIP", "address": self.address},
                              {"type": "Hostname", "address": self.name}],
                "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                "message": "kubelet is posting ready status",
                                "lastHeartbeatTime": now, "lastTransitionTime": now}]}},
            content_type="application/strategic-merge-patch+json"))
        self.run.ready = time.monotonic()
        serving = ec.generate_private_key(ec.SECP256R1())
        self._certificate(serving, kb.SERVING_SIGNER,
                          ["digital signature", "server auth"], f"csr-{self.name}-serving",
                          [x509.DNSName(self.name),
                           x509.IPAddress(__import__("ipaddress").ip_address(self.address))],
                          None)
        self.run.served = time.monotonic()
        assert self.conn is not None
        self.conn.close()

    def _certificate(self, key: ec.EllipticCurvePrivateKey, signer: str, usages: list[str],
                     name: str, sans: list[x509.GeneralName], token: str | None) -> bytes:
        """POST a request, then LIST it and, unless issued, WATCH it until it is."""
        subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                             x509.NameAttribute(NameOID.COMMON_NAME,
                                                f"system:node:{self.name}")])
        builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), False)
        pem = builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)
        self._ok(f"create {name}", *self._call("POST", CSR_PATH, {
            "apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem).decode(), "signerName": signer,
                     "usages": usages}}, token=token))
        if signer == kb.SERVING_SIGNER:
            self.run.asked = time.monotonic()
        selector = f"fieldSelector=metadata.name%3D{name}"
        listed = self._ok(f"list {name}", *self._call("GET", f"{CSR_PATH}?{selector}",
                                                      token=token))
        items = listed.get("items") or []
        issued = (items[0].get("status") or {}).get("certificate") if items else None
        if issued:
            return base64.b64decode(issued)
        assert self.conn is not None
        version = listed["metadata"]["resourceVersion"]
        headers = {"Accept": "application/json", "User-Agent": f"kubelet/{self.name}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.run.requests += 1
        self.conn.request("GET", f"{CSR_PATH}?watch=true&{selector}&resourceVersion={version}"
                          "&timeoutSeconds=300", headers=headers)
        answer = self.conn.getresponse()
        if answer.status != 200:
            raise JoinFailed(f"{self.name}: watch {name}: HTTP {answer.status}")
        try:
            while True:
                line = answer.readline()
                if not line:
                    raise JoinFailed(f"{self.name}: watch {name} ended without a certificate")
                event = json.loads(line)
                issued = ((event.get("object") or {}).get("status") or {}).get("certificate")
                if issued:
                    return base64.b64decode(issued)
        finally:
            answer.close()
            self.conn.close()  # the watch's connection is done; the next request opens one


class Approver:
    """provision's approver as the control-plane timer runs it: a pass, a pause, again."""

    def __init__(self, kubeconfig: Path, folder: Path, period: float) -> None:
        self.kubeconfig, self.folder, self.period = kubeconfig, folder, period
        self.passes: list[tuple[float, float, int]] = []  # (start, end, approved)
        self.stop = threading.Event()
        self.error = ""

    def run(self) -> None:
        while not self.stop.is_set():
            start = time.monotonic()
            done = subprocess.run(
                [sys.executable, str(APPROVER), "--kubeconfig", str(self.kubeconfig),
                 "--kubectl", KUBECTL, "--reported", str(self.folder / "reported")],
                capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                self.error = done.stderr
            self.passes.append((start, time.monotonic(), done.stderr.count("approved csr-")))
            self.stop.wait(self.period)


def run(count: int, spread: float = 2.0, approver_period: float = 1.0,
        seed: int = 7) -> Figures:
    """`count` nodes join within `spread` s of each other (their boot jitter); figures."""
    from provisioner.bootstrap import readiness
    from provisioner.kube import client_for

    material = make_tls()
    token = "abcdef.0123456789abcdef"
    with tempfile.TemporaryDirectory(prefix="joins-") as tmp_name, \
            FakeKubeAPI(tls=True, cert_pem=material.cert_pem, key_pem=material.key_pem,
                        ca_pem=material.ca_pem, client_ca_pem=material.ca_pem,
                        signer=(material.ca_pem, material.ca_key_pem),
                        controllers=False) as kube:
        tmp = Path(tmp_name)
        expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4 * 3600))
        kube.create({"apiVersion": "v1", "kind": "Secret", "type": kb.TOKEN_TYPE,
                     "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
                     "data": {k: base64.b64encode(v.encode()).decode() for k, v in {
                         "token-id": "abcdef", "token-secret": "0123456789abcdef",
                         "expiration": expires, "usage-bootstrap-signing": "true",
                         "usage-bootstrap-authentication": "true",
                         "auth-extra-groups": kb.NODE_GROUP}.items()}}, "kubeadm")
        for name in ("kubeadm-config", "kubelet-config"):
            kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": {"name": name, "namespace": "kube-system"},
                         "data": {"ClusterConfiguration" if name == "kubeadm-config"
                                  else "kubelet": "{}"}}, "kubeadm")
        kb.create_cluster_info(kube, kube.base_url, material.ca_pem)
        kube.wait_for(lambda: any(k.startswith(kb.JWS_PREFIX) for k in (kube.get(
            "v1", "ConfigMap", kb.CLUSTER_INFO, "kube-public") or {}).get("data", {})))
        admin = kube.write_kubeconfig(tmp / "admin.conf", client_cert=issue_client_cert(
            material, "kubernetes-admin", ("kubeadm:cluster-admins",)))
        kube.clear_log()

        names = [f"w-{i:04d}" for i in range(count)]
        runs = [NodeRun(name) for name in names]
        pick = random.Random(seed)
        delays = [pick.uniform(0, spread) for _ in names]
        start = time.monotonic()

        def node(index: int) -> None:
            time.sleep(delays[index])
            runs[index].started = time.monotonic()
            agent = Agent(names[index], f"10.{10 + index // 250}.{index % 250}.{7}",
                          "127.0.0.1", kube.port, token,
                          ca_cert_hash(material.ca_pem), runs[index])
            try:
                agent.join()
            except Exception as e:  # reported in the figures; the test fails on it
                runs[index].error = f"{type(e).__name__}: {e}"

        approver = Approver(admin, tmp, approver_period)
        approving = threading.Thread(target=approver.run, daemon=True)
        approving.start()
        threads = [threading.Thread(target=node, args=(i,), daemon=True) for i in range(count)]
        for thread in threads:
            thread.start()
        readiness.wait_for_nodes(client_for(admin), names, time.monotonic() + 900,
                                 lambda _: None)
        wait_ended = time.monotonic() - start
        for thread in threads:
            thread.join(timeout=900)
        approver.stop.set()
        approving.join(timeout=900)
        failed = [r.error for r in runs if r.error]
        if failed:
            raise JoinFailed(f"{len(failed)} nodes failed; first: {failed[0]}")
        if approver.error:
            raise JoinFailed(f"an approver pass failed: {approver.error[-500:]}")
        nodes_users = {"system:anonymous"} | {f"system:node:{n}" for n in names} | \
            {"system:bootstrap:abcdef"}
        log = kube.request_log
        served = max(r.served for r in runs)
        approver_log = [r for r in log if r.user_agent.startswith("kubectl")
                        and r.resource.split("/")[0] in ("certificatesigningrequests", "nodes")]
        wall = time.time() - time.monotonic()  # the log's times are wall-clock
        approved_at = {r.name: r.started - wall for r in approver_log if r.method == "PUT"}
        needed = max(len([p for p in approver.passes
                          if r.asked <= p[0] <= approved_at[f"csr-{r.name}-serving"]])
                     for r in runs)
        events = sorted([(r.started, 1) for r in runs] + [(r.ready, -1) for r in runs])
        peak = joining = 0
        for _, step in events:
            joining += step
            peak = max(peak, joining)
        return Figures(
            nodes=count,
            requests_per_node=sum(r.requests for r in runs) / count,
            max_requests=max(r.requests for r in runs),
            server_requests=sum(1 for r in log if r.user in nodes_users),
            client_requests=sum(r.requests for r in runs),
            approver_passes=len([p for p in approver.passes if p[0] <= served]),
            approver_lists=sum(1 for r in approver_log if r.method == "GET"),
            approver_puts=sum(1 for r in approver_log if r.method == "PUT"),
            approver_passes_needed=needed,
            slowest_ready=max(r.ready for r in runs) - start,
            wait_ended=wait_ended,
            sum_of_joins=sum(r.ready - r.started for r in runs),
            peak_joining=peak,
            runs=runs,
        )
