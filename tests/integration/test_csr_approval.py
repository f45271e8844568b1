"""The kubelet serving certificate approver against the fake API server, through kubectl.

Kubelets create their requests over the API as themselves (the API server records who
asked: kubernetes/kubernetes pkg/registry/certificates/certificates/strategy.go,
``PrepareForCreate``); the approver (provisioner/agents/csr_approver.py, run as on a
control-plane node: kubectl with the admin kubeconfig) approves a node's own request
through the ``approval`` subresource (``PUT .../certificatesigningrequests/{name}/approval``,
the API reference's "replace approval of the specified CertificateSigningRequest", which
is what ``kubectl certificate approve`` sends) and leaves a hostile one pending.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from provisioner.agents import csr_approver
from tests.fakes.kubeapi import FakeKubeAPI

pytestmark = pytest.mark.integration

KUBECTL = str(Path(sys.executable).parent / "kubectl")
AGENT = Path(csr_approver.__file__)
TOKENS = {"admin-token": "kubernetes-admin", "w1-token": "system:node:w1",
          "w2-token": "system:node:w2"}
CSR_PATH = "/apis/certificates.k8s.io/v1/certificatesigningrequests"


def request_pem(node: str, dns: list[str], ips: list[str]) -> str:
    """A request as the kubelet of `node` makes it (ECDSA P-256, CN/O, DNS and IP SANs)."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"system:node:{node}"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes")])
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns] + [
        x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    csr = (x509.CertificateSigningRequestBuilder().subject_name(subject)
           .add_extension(x509.SubjectAlternativeName(names), critical=False)
           .sign(key, hashes.SHA256()))
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def csr_manifest(name: str, pem: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
            "metadata": {"name": name},
            "spec": {"request": base64.b64encode(pem.encode()).decode(),
                     "signerName": "kubernetes.io/kubelet-serving",
                     "usages": ["digital signature", "server auth"], **spec}}


class Cluster:
    def __init__(self, kube: FakeKubeAPI, folder: Path) -> None:
        self.kube = kube
        self.folder = folder
        self.configs = {user: kube.write_kubeconfig(folder / f"{token}.kubeconfig", token=token)
                        for token, user in TOKENS.items()}

    def kubectl(self, user: str, *args: str, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, "--kubeconfig", str(self.configs[user]), *args],
                                input=stdin, capture_output=True, text=True, timeout=60)
        if check:
            assert result.returncode == 0, result.stderr
        return result

    def create(self, user: str, manifest: dict[str, Any]) -> None:
        """The kubelet (or whoever `user` is) creates its request."""
        self.kubectl(user, "create", "-f", "-", stdin=yaml.safe_dump(manifest))

    def csr(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.kubectl("kubernetes-admin", "get", "csr", name,
                                                        "-o", "json").stdout)
        return found

    def approver(self) -> subprocess.CompletedProcess[str]:
        """One pass of the agent, as the node's timer runs it."""
        return subprocess.run([sys.executable, str(AGENT), "--kubeconfig",
                               str(self.configs["kubernetes-admin"]), "--kubectl", KUBECTL,
                               "--reported", str(self.folder / "reported")],
                              capture_output=True, text=True, timeout=120)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with FakeKubeAPI(tls=True, tokens=TOKENS) as kube:  # tokens go only over TLS
        kube.add_node("w1", address="10.10.0.5")
        kube.add_node("w2", address="10.10.0.6")
        yield Cluster(kube, tmp_path)


def conditions(csr: dict[str, Any]) -> list[str]:
    return [c["type"] for c in (csr.get("status") or {}).get("conditions") or []]


def test_the_approver_approves_the_nodes_request_and_leaves_a_hostile_one(
        cluster: Cluster) -> None:
    cluster.create("system:node:w1", csr_manifest(
        "w1-serving", request_pem("w1", ["w1"], ["10.10.0.5"])))
    # w1 asks for w2's address as well: it would then pass as w2 to metrics-server.
    cluster.create("system:node:w1", csr_manifest(
        "w1-hostile", request_pem("w1", ["w1"], ["10.10.0.5", "10.10.0.6"])))
    # w1 claims to be w2 in the body: the API server records w1 anyway.
    cluster.create("system:node:w1", csr_manifest(
        "w1-as-w2", request_pem("w2", ["w2"], ["10.10.0.6"]), username="system:node:w2",
        groups=["system:nodes"]))
    assert cluster.csr("w1-as-w2")["spec"]["username"] == "system:node:w1"

    result = cluster.approver()
    assert result.returncode == 0, result.stderr
    assert conditions(cluster.csr("w1-serving")) == ["Approved"], result.stderr
    assert conditions(cluster.csr("w1-hostile")) == []
    assert conditions(cluster.csr("w1-as-w2")) == []
    assert "left w1-hostile pending: names not recorded for node w1: ['10.10.0.6']" in \
        result.stderr
    approvals = cluster.kube.requests("PUT", f"{CSR_PATH}/*/approval")
    assert [r.path.rsplit("/", 2)[1] for r in approvals] == ["w1-serving"]
    assert approvals[0].user == "kubernetes-admin"

    # A second pass changes nothing and says nothing new.
    again = cluster.approver()
    assert again.returncode == 0 and "left" not in again.stderr
    assert len(cluster.kube.requests("PUT", f"{CSR_PATH}/*/approval")) == 1


def test_an_approval_of_a_request_that_changed_since_it_was_read_fails(
        cluster: Cluster) -> None:
    cluster.create("system:node:w2", csr_manifest(
        "w2-serving", request_pem("w2", ["w2"], ["10.10.0.6"])))
    read = cluster.csr("w2-serving")
    kubectl = csr_approver.Kubectl([KUBECTL, "--kubeconfig",
                                    str(cluster.configs["kubernetes-admin"])])
    assert kubectl.approve(read, "first")
    assert not kubectl.approve(read, "second, from a stale copy")  # 409: resourceVersion
    assert conditions(cluster.csr("w2-serving")) == ["Approved"]


def test_the_fake_keeps_csrs_as_the_api_server_does(cluster: Cluster) -> None:
    """The spec cannot be changed after creation, a request cannot be created approved,
    conditions change only through /approval, and a request cannot be approved and denied
    at once (strategy.go and pkg/apis/certificates/validation). (`kubectl certificate
    approve` itself sends protobuf, which the fake does not read: the approval here is the
    same PUT in JSON.)"""
    manifest = csr_manifest("w2-kubectl", request_pem("w2", ["w2"], ["10.10.0.6"]))
    manifest["status"] = {"conditions": [{"type": "Approved", "status": "True"}]}
    cluster.create("system:node:w2", manifest)
    created = cluster.csr("w2-kubectl")
    assert conditions(created) == [] and created["spec"]["groups"] == [
        "system:nodes", "system:authenticated"]

    def put(path: str, body: dict[str, Any]) -> subprocess.CompletedProcess[str]:
        return cluster.kubectl("kubernetes-admin", "replace", "--raw",
                               f"{CSR_PATH}/w2-kubectl{path}", "-f", "-",
                               stdin=json.dumps(body), check=False)

    approve = json.loads(json.dumps(created))
    approve["spec"]["usages"] = ["digital signature", "client auth"]  # ignored: spec is fixed
    approve["status"]["conditions"] = [{"type": "Approved", "status": "True",
                                        "reason": "Test", "message": "approved"}]
    assert put("/approval", approve).returncode == 0
    approved = cluster.csr("w2-kubectl")
    assert conditions(approved) == ["Approved"]
    assert approved["spec"] == created["spec"]
    # The object itself: neither spec nor conditions change.
    changed = json.loads(json.dumps(approved))
    changed["spec"]["usages"] = ["digital signature", "client auth"]
    changed["status"]["conditions"] = []
    assert put("", changed).returncode == 0
    assert cluster.csr("w2-kubectl")["spec"] == created["spec"]
    assert conditions(cluster.csr("w2-kubectl")) == ["Approved"]
    both = cluster.csr("w2-kubectl")
    both["status"]["conditions"].append({"type": "Denied", "status": "True"})
    denied = put("/approval", both)
    assert denied.returncode != 0 and "mutually exclusive" in denied.stderr
    bad = csr_manifest("garbage", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"
                                  "-----END CERTIFICATE REQUEST-----\n")
    refused = cluster.kubectl("system:node:w2", "create", "-f", "-",
                              stdin=yaml.safe_dump(bad), check=False)
    assert refused.returncode != 0 and "spec.request" in refused.stderr


def _many(kube: FakeKubeAPI, folder: Path, count: int) -> Cluster:
    """`count` nodes n1..n<count>, each with its own pending serving request."""
    tokens = {"admin-token": "kubernetes-admin",
              **{f"n{i}-token": f"system:node:n{i}" for i in range(1, count + 1)}}
    kube.tokens = tokens
    for i in range(1, count + 1):
        kube.add_node(f"n{i}", address=f"10.10.1.{i}")
    cluster = Cluster.__new__(Cluster)
    cluster.kube, cluster.folder = kube, folder
    cluster.configs = {user: kube.write_kubeconfig(folder / f"{token}.kubeconfig", token=token)
                       for token, user in tokens.items()}
    for i in range(1, count + 1):
        cluster.create(f"system:node:n{i}", csr_manifest(
            f"n{i}-serving", request_pem(f"n{i}", [f"n{i}"], [f"10.10.1.{i}"])))
    kube.clear_log()
    return cluster


def test_a_pass_costs_two_lists_and_one_put_per_request_whatever_the_count(
        tmp_path: Path) -> None:
    """Joins stay O(1) per node on the shared approver: a pass over k pending requests
    sends one LIST of requests, one LIST of Nodes and k approvals; the requester's Node
    comes from that LIST (it used to be a GET per request: 2 + 2k)."""
    with FakeKubeAPI(tls=True, tokens={}) as kube:
        cluster = _many(kube, tmp_path, 12)
        result = cluster.approver()
        assert result.returncode == 0, result.stderr
        sent = [(r.method, r.resource, r.name) for r in kube.request_log]
        assert sorted(sent) == sorted(
            [("GET", "certificatesigningrequests", ""), ("GET", "nodes", "")]
            + [("PUT", "certificatesigningrequests/approval", f"n{i}-serving")
               for i in range(1, 13)]), sent
        assert all(conditions(cluster.csr(f"n{i}-serving")) == ["Approved"]
                   for i in range(1, 13))


def test_a_pass_sends_its_approvals_at_once_not_one_after_another(tmp_path: Path) -> None:
    """Each approval is one PUT that depends on no other, so a pass does not wait for one
    before sending the next: at 100 ms a request, the approvals of 16 requests overlap at
    the server (one after another, as before, they never do: the peak is 1)."""
    with FakeKubeAPI(tls=True, tokens={}) as kube:
        cluster = _many(kube, tmp_path, 16)
        kube.latency_ms = 100
        result = cluster.approver()
        assert result.returncode == 0, result.stderr
        puts = kube.requests("PUT", f"{CSR_PATH}/*/approval")
        assert len(puts) == 16
        events = sorted([(r.started, 1) for r in puts]
                        + [(r.started + r.duration, -1) for r in puts])
        peak = running = 0
        for _, step in events:
            running += step
            peak = max(peak, running)
        assert peak >= 2, f"approvals never overlapped (peak {peak})"
