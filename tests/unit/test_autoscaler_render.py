"""The node autoscaler's manifests and settings, rendered from an environment.

Upstream facts (kubernetes/autoscaler at tag cluster-autoscaler-1.36.1):
cluster-autoscaler/cloudprovider/externalgrpc/README.md gives the cloud-config keys
(``address``, ``key``, ``cert``, ``cacert``) and says node groups come from the service;
examples/cluster-autoscaler-manifests/cluster-autoscaler.yaml gives the command
(``--cloud-provider=externalgrpc --cloud-config=...``) and the RBAC; config/flags/flags.go
has ``--namespace`` (default kube-system), where main.go puts the leader-election Lease.
The settings' keys are the contract between provision's wiring and its service.
"""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.config.model import PoolAutoscale
from provisioner.errors import UsageError
from provisioner.render import autoscaler, autoscaler_code, autoscaler_objects, render_environment
from provisioner.render.markers import join
from tests.support.rendering import example, rendered

SETTINGS_KEYS = {"environment", "listen", "tls", "do_api_url", "do_token_file",
                 "secret_values_file", "kube_api", "pools"}
POOL_KEYS = {"name", "min", "max", "size", "region", "image", "vpc_uuid", "ssh_keys", "tags",
             "labels", "taints", "user_data", "values"}


def _docs(text: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(text) if d]


def _by(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def test_no_autoscaled_pool_renders_no_autoscaler() -> None:
    assert not any(p.startswith("autoscaler/") for p in rendered("staging"))
    assert "cluster-autoscaler" not in "".join(rendered("staging").values())


def test_production_renders_both_deployments_on_the_control_plane() -> None:
    docs = _docs(rendered("production")["autoscaler/manifests.yaml"])
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Namespace", "provision-system") in kinds
    assert ("Service", "provision-autoscaler") in kinds
    for name in ("provision-autoscaler", "cluster-autoscaler"):
        deployment = _by(docs, "Deployment", name)
        assert deployment["metadata"]["namespace"] == "provision-system"
        pod = deployment["spec"]["template"]["spec"]
        assert pod["nodeSelector"] == {"node-role.kubernetes.io/control-plane": ""}
        assert {"key": "node-role.kubernetes.io/control-plane", "operator": "Exists",
                "effect": "NoSchedule"} in pod["tolerations"]
    service = _by(docs, "Service", "provision-autoscaler")
    assert service["spec"]["ports"][0]["port"] == 8086
    ca = _by(docs, "Deployment", "cluster-autoscaler")["spec"]["template"]["spec"][
        "containers"][0]
    assert ca["image"] == "registry.k8s.io/autoscaling/cluster-autoscaler:v1.36.1"
    assert "--cloud-provider=externalgrpc" in ca["command"]
    assert "--cloud-config=/config/cloud-config" in ca["command"]
    assert "--namespace=provision-system" in ca["command"]
    assert not any(arg.startswith("--nodes") for arg in ca["command"])
    cloud_config = yaml.safe_load(_by(docs, "ConfigMap", "cluster-autoscaler-cloud-config")[
        "data"]["cloud-config"])
    assert cloud_config == {"address": "provision-autoscaler.provision-system.svc:8086",
                            "key": "/etc/ssl/client-cert/tls.key",
                            "cert": "/etc/ssl/client-cert/tls.crt",
                            "cacert": "/etc/ssl/client-cert/ca.crt",
                            "grpc_timeout": "30s"}
    service_pod = _by(docs, "Deployment", "provision-autoscaler")["spec"]["template"]["spec"]
    assert service_pod["containers"][0]["command"] == [
        "python", "-m", "provisioner.autoscaler.serve", "--settings",
        "/etc/provision-autoscaler/settings.json"]
    install = service_pod["initContainers"][0]["command"]
    assert "--require-hashes" in install


def go_duration(text: str) -> float:
    """Seconds of a Go duration string (time.ParseDuration, the units used here)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    parts = re.fullmatch(r"(?:\d+(?:\.\d+)?(?:h|ms|m|s))+", text)
    assert parts, f"not a Go duration: {text!r}"
    return sum(float(n) * units[u] for n, u in re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s)", text))


def test_the_call_deadline_leaves_room_to_wait_out_a_429() -> None:
    """kubernetes/autoscaler at cluster-autoscaler-1.36.1,
    cluster-autoscaler/cloudprovider/externalgrpc/README.md: ``grpc_timeout``, "timeout of
    invoking a grpc call", default 5s; externalgrpc_cloud_provider.go reads it as a
    metav1.Duration (a Go duration string) and gives every call that deadline. The service
    waits a 429 out only within it (doclient.py), so the default would fail a throttled
    scale-up: the doubling backoff alone (1+2+4+8 s, cloud/throttle.py) is 15 s, and the
    create itself must fit after it."""
    cloud_config = yaml.safe_load(autoscaler_objects.cloud_config())
    seconds = go_duration(cloud_config["grpc_timeout"])
    backoff = sum(2.0 ** n for n in range(4))
    assert seconds >= backoff + 10
    assert seconds <= 60  # the autoscaler's loop waits on it: keep it under a scan or two


def test_the_rendered_file_holds_no_secret() -> None:
    docs = _docs(rendered("production")["autoscaler/manifests.yaml"])
    assert not [d for d in docs if d["kind"] == "Secret"]
    text = rendered("production")["autoscaler/manifests.yaml"]
    assert "BEGIN" not in text and "PRIVATE KEY" not in text


def test_service_rbac_is_bootstrap_secrets_in_kube_system_and_nothing_else() -> None:
    """The service finds its droplets by tag through the DigitalOcean API and creates
    bootstrap-token Secrets (provisioner/autoscaler/join_token.py); it reads no Node."""
    docs = _docs(rendered("production")["autoscaler/manifests.yaml"])
    role = _by(docs, "Role", "provision-autoscaler-bootstrap-tokens")
    assert role["metadata"]["namespace"] == "kube-system"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}]
    bound = [d for d in docs if d["kind"] in ("RoleBinding", "ClusterRoleBinding")
             and {"kind": "ServiceAccount", "name": "provision-autoscaler",
                  "namespace": "provision-system"} in d["subjects"]]
    assert [(b["kind"], b["roleRef"]["name"]) for b in bound] == [
        ("RoleBinding", "provision-autoscaler-bootstrap-tokens")]


def test_settings_follow_the_contract_and_terraform() -> None:
    env = example("production")
    late = {"api_endpoint": "203.0.113.10", "vpc_id": "vpc-uuid", "ca_cert_hash": "sha256:ab"}
    doc = autoscaler.settings(env, late, "vpc-uuid")
    assert set(doc) == SETTINGS_KEYS
    assert doc["environment"] == "prod" and doc["listen"] == "0.0.0.0:8086"
    assert doc["kube_api"] is None  # the pod's service account
    assert set(doc["tls"]) == {"cert", "key", "client_ca"}
    (pool,) = doc["pools"]
    assert set(pool) == POOL_KEYS
    assert (pool["name"], pool["min"], pool["max"]) == ("general", 3, 9)
    # workers.tf: concat([cluster tag, workers tag, pool tag], var.tags)
    assert pool["tags"] == ["provision:prod", "provision:prod:worker",
                            "provision:prod:pool:general", "team-platform", "production"]
    assert "provision:prod:autoscaled" not in pool["tags"]
    assert pool["labels"] == {"tier": "general"}
    tfvars = json.loads(rendered("production")["terraform/terraform.tfvars.json"])
    assert pool["user_data"] == tfvars["user_data"]["worker-general"]
    assert pool["values"] == late  # the public late values; the token is minted
    # Joined with a minted token, it is the user-data Terraform gives the pool's droplets.
    values = {**late, "bootstrap_token": "abcdef.0123456789abcdef"}
    assert join(pool["user_data"], values) == join(tfvars["user_data"]["worker-general"],
                                                   values)


def test_settings_in_the_rendered_configmap_carry_markers() -> None:
    docs = _docs(rendered("production")["autoscaler/manifests.yaml"])
    settings = json.loads(_by(docs, "ConfigMap", "provision-autoscaler-settings")["data"][
        "settings.json"])
    assert settings["pools"][0]["vpc_uuid"] == "@@provision:vpc_id@@"
    assert settings["pools"][0]["values"]["api_endpoint"] == "@@provision:api_endpoint@@"


def test_an_unpinned_minor_is_refused() -> None:
    env = example("production")
    old = dataclasses.replace(env, kubernetes=dataclasses.replace(env.kubernetes,
                                                                  version="1.31.4"))
    with pytest.raises(UsageError, match="no cluster-autoscaler release is pinned"):
        render_environment(old)


def test_a_taint_reaches_the_settings() -> None:
    env = example("production")
    from provisioner.config.model import Taint

    pool = dataclasses.replace(env.worker_pools[0], taints=(Taint("gpu", "yes", "NoSchedule"),),
                               autoscale=PoolAutoscale(1, 2), count=1)
    doc = autoscaler.settings(dataclasses.replace(env, worker_pools=(pool,)), {
        "api_endpoint": "x", "vpc_id": "y", "ca_cert_hash": "z"}, "y")
    assert doc["pools"][0]["taints"] == [{"key": "gpu", "value": "yes", "effect": "NoSchedule"}]


def test_requirements_are_hash_pinned_at_the_tested_versions() -> None:
    from tests.support.rendering import ROOT

    tested = dict(line.split("==", 1) for line in (ROOT / "constraints.txt").read_text()
                  .splitlines() if "==" in line and not line.startswith("#"))
    for wheel in autoscaler_code.WHEELS:
        key = next(k for k in tested if k.lower().replace("_", "-") == wheel.name)
        assert tested[key] == wheel.version
    assert all("--hash=sha256:" in line for line in autoscaler_code.requirements().splitlines())


def test_code_archive_is_deterministic() -> None:
    assert autoscaler_code.archive() == autoscaler_code.archive()


def test_the_service_travels_with_its_imports_and_needs_only_the_pinned_wheels() -> None:
    """Every module the pod runs is in the archive, and every third-party import is one of
    the hash-pinned wheels the init container installs (nothing else is in the image)."""
    import ast
    import sys

    found = autoscaler_code.modules()
    assert "provisioner.autoscaler.serve" in found
    foreign = set()
    for path in found.values():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level
                     else [])
            for name in names:
                top = name.split(".")[0]
                if top and top != "provisioner" and top not in sys.stdlib_module_names:
                    foreign.add(top)
    assert foreign <= autoscaler_code.PROVIDED, foreign - autoscaler_code.PROVIDED


def test_the_service_loads_the_settings_up_writes(tmp_path: Path) -> None:
    """The service's own loader (provisioner/autoscaler/settings.py) reads what `up` puts in
    the ConfigMap: the contract's keys, from the wiring's side and the service's."""
    from provisioner.autoscaler import settings as loader

    late = {"api_endpoint": "203.0.113.10", "vpc_id": "5a4a8f0e-7b0c-4c2e-9d1e-0c8f6a2b3c4d",
            "ca_cert_hash": "sha256:" + "a" * 64}
    path = tmp_path / "settings.json"
    path.write_text(json.dumps(autoscaler.settings(example("production"), late,
                                                   late["vpc_id"])))
    loaded = loader.load(path)
    (pool,) = loaded.pools
    assert (loaded.environment, pool.name, pool.group_max) == ("prod", "general", 6)
    assert loaded.autoscaled_tag == "provision:prod:autoscaled"
