"""`provision check --online`: findings read from the running cluster and the cloud.

The cluster is the fake Kubernetes API serving TLS with a certificate signed by the CA
provision made (as kubeadm's API server does) and verifying provision's own admin
kubeconfig; the failover agents' annotations are written over HTTP as the agent would.
kubeadm issues the API server's certificate for one year (kubernetes/kubernetes
cmd/kubeadm/app/constants/constants.go at commit 3301161c36ac, CertificateValidityPeriod =
time.Hour * 24 * 365); provision signs its admin
kubeconfig for 365 days (bootstrap/kubeconfig.CLIENT_DAYS). The clock is pinned relative to
the certificates' real end dates, so the findings are the same any day.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography import x509

from provisioner.agents.failover import fingerprint
from provisioner.bootstrap import kubeconfig as kc
from provisioner.pipeline.prepare import prepare
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support.clock import pin
from tests.support.cluster_tls import server_cert
from tests.support.sim import Simulation, simulation

pytestmark = pytest.mark.integration


def _annotate(kubeconfig: Path, name: str, notes: dict[str, str]) -> None:
    """A merge patch over HTTPS with a client certificate of the cluster CA, as the agent's
    own credentials would send it."""
    from provisioner.kube import Kube, client_for

    Kube(client_for(kubeconfig)).request(
        "PATCH", f"/api/v1/nodes/{name}", None, {"metadata": {"annotations": notes}},
        "application/merge-patch+json")


def _stamp(instant: dt.datetime) -> str:
    return instant.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check(sim: Simulation, *args: str) -> tuple[int, dict[str, Any], str]:
    result = sim.run("check", str(sim.config), "--online", "--output", "json", *args)
    return result.code, json.loads(result.stdout or "{}"), result.stderr


def _problems(report: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {f["subject"]: (f["severity"], f["problem"]) for f in report["online"]["findings"]}


def test_check_online_finds_keepalived_floating_ip_and_credentials(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with simulation(tmp_path) as sim:
        assert sim.run("up", str(sim.config), "--yes", "--until", "infra").code == 0
        secrets = prepare(sim.config, None).secrets
        cert, key = server_cert(secrets, "127.0.0.1")
        with FakeKubeAPI(tls=True, cert_pem=cert, key_pem=key, ca_pem=secrets.ca_crt_pem,
                         client_ca_pem=secrets.ca_crt_pem) as kube:
            document = kc.build("prod", "127.0.0.1", secrets)
            document["clusters"][0]["cluster"]["server"] = kube.base_url
            path = sim.workdir / "kubeconfig"
            kc.write(path, document)
            client_pem = __import__("base64").b64decode(
                document["users"][0]["user"]["client-certificate-data"])
            serving_end = x509.load_pem_x509_certificate(cert).not_valid_after_utc
            client_end = x509.load_pem_x509_certificate(client_pem).not_valid_after_utc

            now = serving_end - dt.timedelta(hours=12)
            pin(monkeypatch, now)
            for i in (1, 2, 3):
                kube.add_node(f"prod-cp-{i}", control_plane=True)
            _annotate(path, "prod-cp-1", {"provision.dev/vrrp-state": "MASTER",
                                          "provision.dev/keepalived": "active",
                                          "provision.dev/failover-checked-at":
                                              _stamp(now - dt.timedelta(seconds=40))})
            _annotate(path, "prod-cp-2", {"provision.dev/vrrp-state": "BACKUP",
                                          "provision.dev/keepalived": "failed",
                                          "provision.dev/failover-checked-at":
                                              _stamp(now - dt.timedelta(seconds=20))})
            _annotate(path, "prod-cp-3", {"provision.dev/vrrp-state": "BACKUP",
                                          "provision.dev/keepalived": "active",
                                          "provision.dev/failover-checked-at":
                                              _stamp(now - dt.timedelta(minutes=10))})
            kube.create({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "digitalocean", "namespace": "kube-system"},
                         "stringData": {"access-token": "revoked-token"}})
            sim.claim_floating_ip("prod-cp-2")  # the address stayed on a former MASTER

            code, report, err = _check(sim)
            assert code == 0, err
            found = _problems(report)
            assert found["keepalived on prod-cp-2"][0] == "high"
            assert found["failover agent on prod-cp-3"][0] == "high"
            assert "not running (last reported" in found["failover agent on prod-cp-3"][1]
            assert "prod-cp-1" not in " ".join(found)  # its agent and keepalived are fine
            assert found["floating IP"][0] == "high"
            assert "is on prod-cp-2, but prod-cp-1 is MASTER" in found["floating IP"][1]
            assert found["API server certificate"] == (
                "medium", f"expires in 12 hour(s) ({serving_end:%Y-%m-%d})")
            assert "admin kubeconfig certificate" not in found  # a year left
            assert found["kube-system/digitalocean"][0] == "high"
            assert "DIGITALOCEAN_TOKEN" not in found  # the exported token is accepted
            assert "revoked-token" not in json.dumps(report) + err
            # Online findings join the file's own, most severe first.
            severities = [f["severity"] for f in report["findings"]]
            assert severities == sorted(severities, key=["high", "medium", "low"].index)
            strict = sim.run("check", str(sim.config), "--online", "--strict")
            assert strict.code == 3, strict.stderr
            assert "[high] floating IP:" in strict.stdout

            # Months later: the serving certificate has expired, the admin kubeconfig's is
            # close; the bootstrap token (hours) expired long ago and is no finding: provision
            # renews it before nodes join. Both MASTER now: split brain. The failover
            # token was rotated: cp-2's agent still runs with another one (it refused the
            # new one). cp-3's last pass was 3 minutes ago: six periods of its 30 s timer
            # (templates/systemd/provision-failover.timer.j2), more than five.
            later = client_end - dt.timedelta(days=10)
            pin(monkeypatch, later)
            rotated = "dop_v1_" + "d" * 64
            kube.create({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": "provision-failover", "namespace": "kube-system"},
                         "stringData": {"token": rotated}})
            for i in (1, 2, 3):
                _annotate(path, f"prod-cp-{i}", {
                    "provision.dev/keepalived": "active",
                    "provision.dev/failover-checked-at": _stamp(
                        later - dt.timedelta(minutes=3 if i == 3 else 0)),
                    "provision.dev/failover-token": fingerprint(
                        "the-old-token" if i == 2 else rotated)})
            _annotate(path, "prod-cp-2", {"provision.dev/vrrp-state": "MASTER"})
            code, report, err = _check(sim)
            assert code == 0, err
            found = _problems(report)
            assert found["API server certificate"][0] == "high"
            assert found["API server certificate"][1].startswith("expired ")
            assert found["admin kubeconfig certificate"] == (
                "medium", f"expires in 10 day(s) ({client_end:%Y-%m-%d})")
            assert "2 control-plane nodes are MASTER (prod-cp-1, prod-cp-2)" in found[
                "floating IP"][1]
            assert [s for s in found if "keepalived" in s or "agent" in s] == [
                "failover agent on prod-cp-3"]
            assert [s for s in found if "failover token" in s] == ["failover token on prod-cp-2"]
            assert "runs with another token" in found["failover token on prod-cp-2"][1]
            assert rotated not in json.dumps(report) + err
            assert "bootstrap" not in json.dumps(report).lower()


def test_check_stays_offline_unless_asked(tmp_path: Path) -> None:
    with simulation(tmp_path) as sim:
        sim.api.clear_log()
        result = sim.run("check", str(sim.config), "--output", "json")
        assert result.code == 0, result.stderr
        assert "online" not in json.loads(result.stdout)
        assert sim.api.request_log == []
        # Asked, without a cluster: says what to do.
        result = sim.run("check", str(sim.config), "--online")
        assert result.code == 2
        assert "--online: no kubeconfig at" in result.stderr
        assert yaml.safe_load(sim.config.read_text())["name"] == "prod"


def test_a_secret_that_is_not_text_is_a_finding_not_a_kubeconfig_error(
        tmp_path: Path) -> None:
    """The API server holds a Secret's data as bytes and returns them base64-encoded
    (core/v1 Secret ``data``: map of string to []byte), so they need not be UTF-8 text.
    That is the cluster's state: check reports it as a finding with its fix, exit 0; only
    the kubeconfig's own faults are "cannot use kubeconfig" (exit 2)."""
    import base64

    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        for i in (1, 2, 3):
            kube.add_node(f"prod-cp-{i}", control_plane=True)
        not_text = base64.b64encode(b"\xff\xfe\x00token").decode()
        for name, key in (("provision-failover", "token"), ("digitalocean", "access-token")):
            kube.create({"apiVersion": "v1", "kind": "Secret",
                         "metadata": {"name": name, "namespace": "kube-system"},
                         "data": {key: not_text}})
        path = kube.write_kubeconfig(tmp_path / "kubeconfig")
        code, report, err = _check(sim, "--kubeconfig", str(path))
        assert code == 0, err
        found = _problems(report)
        assert found["kube-system/provision-failover"] == (
            "high", "key token is not UTF-8 text: nothing that reads it can use it")
        assert found["kube-system/digitalocean"][1].startswith("key access-token is not")
        fixes = {f["subject"]: f["fix"] for f in report["online"]["findings"]}
        assert "--only failover-token" in fixes["kube-system/provision-failover"]
        assert "--only cloud-token" in fixes["kube-system/digitalocean"]

        # A kubeconfig that is not one is still the kubeconfig's fault: exit 2.
        (tmp_path / "broken").write_text("clusters: [1, 2]\n")
        result = sim.run("check", str(sim.config), "--kubeconfig", str(tmp_path / "broken"))
        assert result.code == 2 and "cannot use kubeconfig" in result.stderr
        assert "Traceback" not in result.stderr


def test_check_online_compares_the_run_rate_with_the_budget(tmp_path: Path) -> None:
    """Plan (the simulation's production file, no backups) at list prices: 6 x s-4vcpu-8gb
    $48.00 + load balancer node $12.00 + 3 x 50 GiB at $0.10 = $315.00, and up to $603.00
    with the general pool at its autoscale max (9: six more at $48.00), which is above either
    budget below: a medium finding (a risk), never high. What runs: the six droplets and two
    autoscaled s-8vcpu-16gb at $96.00 (the fake's /v2/sizes) = $480.00."""
    at_max = ("medium", "the plan costs $315.00-$603.00 a month: at max autoscale above "
              "budget.monthly_usd {}")
    with simulation(tmp_path) as sim, FakeKubeAPI() as kube:
        for i in (1, 2, 3):
            kube.add_node(f"prod-cp-{i}", control_plane=True)
            sim.api.add_droplet(f"prod-cp-{i}", size="s-4vcpu-8gb", region="fra1",
                                tags=["provision:prod", "provision:prod:controller"])
            sim.api.add_droplet(f"prod-general-{i}-b75f3", size="s-4vcpu-8gb", region="fra1",
                                tags=["provision:prod", "provision:prod:worker"])
        for name in ("prod-general-as-1", "prod-general-as-2"):
            sim.api.add_droplet(name, size="s-8vcpu-16gb", region="fra1",
                                tags=["provision:prod", "provision:prod:autoscaled"])
        path = kube.write_kubeconfig(tmp_path / "kubeconfig")

        sim.write_config({"budget": {"monthly_usd": 400}})  # 315 <= 400 < 480
        code, report, err = _check(sim, "--kubeconfig", str(path))
        assert code == 0, err
        assert report["online"]["run_rate"]["total"]["min"] == pytest.approx(480.00)
        budget = [f for f in report["findings"] if f["subject"] == "budget"]
        assert sorted((f["severity"], f["problem"]) for f in budget) == [
            ("high", "what runs now costs $480.00 a month, above budget.monthly_usd $400.00"),
            (at_max[0], at_max[1].format("$400.00"))]
        assert sim.run("check", str(sim.config), "--kubeconfig", str(path),
                       "--strict").code == 3

        sim.write_config({"budget": {"monthly_usd": 480}})  # the run rate, not above it
        code, report, err = _check(sim, "--kubeconfig", str(path))
        assert code == 0, err
        assert [(f["severity"], f["problem"]) for f in report["findings"]
                if f["subject"] == "budget"] == [(at_max[0], at_max[1].format("$480.00"))]
