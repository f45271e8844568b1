"""`provision deploy` / `rollback` against the fake Kubernetes API, with kubectl as witness."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from provisioner.cli.main import cli
from tests.fakes.kubeapi.server import FakeKubeAPI
from tests.support import clock
from tests.support.rendering import ROOT

pytestmark = pytest.mark.integration
KUBECTL = str(Path(sys.executable).parent / "kubectl")
SECRETS = {"PROD_DATABASE_URL": "postgres://db/prod", "PROD_STRIPE_API_KEY": "sk_live_x",
           "STAGING_DATABASE_URL": "postgres://db/staging"}


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[FakeKubeAPI]:
    with FakeKubeAPI() as server:
        for i in (1, 2, 3):
            server.add_node(f"prod-general-{i}")
        yield server


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    return tmp_path / "prod.yaml"


def write(path: Path, edit: Any = None, example: str = "production") -> Path:
    doc = yaml.safe_load((ROOT / "examples" / f"{example}.yaml").read_text())
    if edit is not None:
        edit(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def run(kube: FakeKubeAPI, tmp_path: Path, *args: str) -> tuple[int, str]:
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    env = {**os.environ, **SECRETS}
    result = CliRunner(env=env).invoke(cli, [*args, "--kubeconfig", str(kubeconfig)])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stderr


def kubectl(kube: FakeKubeAPI, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KUBECTL, "--server", kube.base_url, *args], capture_output=True,
                          text=True, timeout=60)


def kget(kube: FakeKubeAPI, *args: str) -> Any:
    result = kubectl(kube, "get", "-o", "json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def always_open(doc: dict[str, Any]) -> None:
    doc["deploy_policy"] = {}  # no windows: deploys allowed any time


def test_deploy_applies_waits_and_kubectl_agrees(kube: FakeKubeAPI, tmp_path: Path,
                                                 env_file: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    # Outside the production example's windows: the override is needed and recorded.
    clock.pin(monkeypatch, clock.OUTSIDE_WINDOWS)
    write(env_file)
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--override-window", "--reason",
                    "release 1.4.2")
    assert code == 0, err
    assert "deployed 2 app(s) to prod" in err
    deployment = kget(kube, "-n", "prod", "deployment", "api-blue", "--show-managed-fields")
    assert deployment["metadata"]["annotations"]["provision.dev/window-override-reason"] == (
        "release 1.4.2")
    assert any(m["manager"] == "provision" for m in deployment["metadata"]["managedFields"])
    status = kubectl(kube, "-n", "prod", "rollout", "status", "deployment/api-blue",
                     "--timeout=30s")
    assert status.returncode == 0 and "successfully rolled out" in status.stdout
    sts = kubectl(kube, "-n", "prod", "rollout", "status", "statefulset/elasticsearch",
                  "--timeout=30s")
    assert sts.returncode == 0, sts.stderr
    service = kget(kube, "-n", "prod", "service", "api")
    assert service["spec"]["selector"]["provision.dev/colour"] == "blue"
    secret = kget(kube, "-n", "prod", "secret", "global-secrets")
    assert set(secret["data"]) == {"DATABASE_URL", "STRIPE_API_KEY"}
    members = kget(kube, "-n", "prod", "deploy,sts,svc,cm,hpa,pdb,secret", "-l",
                   "applyset.kubernetes.io/part-of")
    assert len(members["items"]) >= 10


def test_inside_the_window_no_override_is_needed_or_recorded(
        kube: FakeKubeAPI, tmp_path: Path, env_file: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The production example's window (Mon-Thu 09:00-16:00 Europe/Berlin) is open: a plain
    deploy goes ahead, and an --override-window given anyway leaves no override record."""
    clock.pin(monkeypatch, clock.INSIDE_PRODUCTION_WINDOW)
    write(env_file)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 0, err
    assert "overridden" not in err
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--override-window", "--reason",
                    "not needed")
    assert code == 0, err
    annotations = kget(kube, "-n", "prod", "deployment", "api-blue")["metadata"]["annotations"]
    assert "provision.dev/window-override-reason" not in annotations


def test_window_refuses_with_exit_3_and_next_time(kube: FakeKubeAPI, tmp_path: Path,
                                                  env_file: Path) -> None:
    tomorrow = (clock.pinned() + dt.timedelta(days=1)).strftime("%a").lower()

    def closed(doc: dict[str, Any]) -> None:
        doc["deploy_policy"] = {"timezone": "UTC", "windows": [
            {"days": [tomorrow], "from": "00:00", "to": "23:59"}]}

    write(env_file, closed)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 3, err
    assert "not allowed now" in err and "next allowed" in err
    assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is None


def test_blue_green_switches_keeps_old_colour_and_rolls_back(kube: FakeKubeAPI, tmp_path: Path,
                                                            env_file: Path) -> None:
    write(env_file, always_open)
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0

    def bump(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["apps"][0]["image"] = "ghcr.io/acme/api:1.5.0"

    write(env_file, bump)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 0, err
    assert "api: traffic switched from blue to green" in err
    assert kget(kube, "-n", "prod", "service", "api")["spec"]["selector"][
        "provision.dev/colour"] == "green"
    assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is not None, "kept"

    code, err = run(kube, tmp_path, "rollback", str(env_file), "--app", "api")
    assert code == 0, err
    assert "traffic switched back from green to blue" in err
    assert kget(kube, "-n", "prod", "service", "api")["spec"]["selector"][
        "provision.dev/colour"] == "blue"


def test_removed_app_is_pruned_and_nothing_else(kube: FakeKubeAPI, tmp_path: Path,
                                                env_file: Path) -> None:
    write(env_file, always_open)
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0
    kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                 "metadata": {"name": "not-ours", "namespace": "prod",
                              "labels": {"app.kubernetes.io/managed-by": "provision"}}})

    def drop(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["apps"] = doc["apps"][:1]

    write(env_file, drop)
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 0, err
    assert "pruned StatefulSet.apps elasticsearch" in err
    assert kube.get("apps/v1", "StatefulSet", "elasticsearch", "prod") is None
    assert kube.get("v1", "Service", "elasticsearch-headless", "prod") is None
    assert kube.get("v1", "ConfigMap", "not-ours", "prod") is not None
    assert kube.get("apps/v1", "Deployment", "api-blue", "prod") is not None


def test_image_pull_failure_names_app_and_reason(kube: FakeKubeAPI, tmp_path: Path,
                                                 env_file: Path) -> None:
    def broken(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["apps"][0]["image"] = "ghcr.io/acme/api-pullfail:1.0.0"
        doc["apps"] = doc["apps"][:1]

    write(env_file, broken)
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--timeout", "60")
    assert code == 1, err
    assert "app api" in err and "ImagePullBackOff" in err
    assert "Traceback" not in err


def test_forbidden_names_the_permission(kube: FakeKubeAPI, tmp_path: Path,
                                        env_file: Path) -> None:
    write(env_file, always_open)
    kube.deny("patch", "deployments")
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 1, err
    assert "may not patch deployments.apps" in err


def test_a_forbidden_watch_fails_at_once_naming_the_permission(
        kube: FakeKubeAPI, tmp_path: Path, env_file: Path) -> None:
    write(env_file, always_open)
    kube.deny("watch", "deployments")
    started = time.monotonic()
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--timeout", "120")
    assert code == 1, err
    assert "may not watch deployments.apps" in err
    assert time.monotonic() - started < 60, "not after waiting out the rollout deadline"


def test_plan_apps_only_shows_create_change_unchanged(kube: FakeKubeAPI, tmp_path: Path,
                                                      env_file: Path) -> None:
    write(env_file, always_open)
    code, _ = run(kube, tmp_path, "plan", str(env_file), "--apps-only", "--exit-code")
    assert code == 4
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    result = CliRunner(env={**os.environ, **SECRETS}).invoke(
        cli, ["plan", str(env_file), "--apps-only", "--kubeconfig", str(kubeconfig),
              "--output", "json"])
    actions = {(c["kind"], c["name"]): c["action"] for c in json.loads(result.stdout)["workloads"]}
    assert actions[("Deployment", "api-blue")] == "create"
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0
    code, _ = run(kube, tmp_path, "plan", str(env_file), "--apps-only", "--exit-code")
    assert code == 0, "nothing pending right after a deploy"

    def more_logs(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["config"]["LOG_LEVEL"] = "debug"

    write(env_file, more_logs)
    result = CliRunner(env={**os.environ, **SECRETS}).invoke(
        cli, ["plan", str(env_file), "--apps-only", "--kubeconfig", str(kubeconfig),
              "--output", "json"])
    changes = {(c["kind"], c["name"]): c for c in json.loads(result.stdout)["workloads"]}
    assert changes[("ConfigMap", "global-config")]["action"] == "change"
    # The shared config rolls exactly the apps that use it: api does, elasticsearch does not.
    assert changes[("Deployment", "api-blue")]["action"] == "change"
    assert any("config-checksum" in f for f in changes[("Deployment", "api-blue")]["fields"])
    assert changes[("StatefulSet", "elasticsearch")]["action"] == "unchanged"
    assert "sk_live" not in result.stdout, "secret values never appear in a plan"


def test_conflicting_field_manager_is_reported_and_force_takes_over(
        kube: FakeKubeAPI, tmp_path: Path, env_file: Path) -> None:
    write(env_file, lambda d: (always_open(d), d.update(apps=d["apps"][1:])))
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0
    manifest = tmp_path / "edit.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "elasticsearch", "namespace": "prod"},
        "spec": {"replicas": 5}}))
    taken = kubectl(kube, "apply", "--server-side", "--field-manager=hand-edit",
                    "--force-conflicts", "-f", str(manifest))
    assert taken.returncode == 0, taken.stderr
    code, err = run(kube, tmp_path, "deploy", str(env_file))
    assert code == 1
    assert "StatefulSet prod/elasticsearch: .spec.replicas" in err
    assert "--force-conflicts" in err
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--force-conflicts")
    assert code == 0, err
    assert kube.get("apps/v1", "StatefulSet", "elasticsearch", "prod")["spec"]["replicas"] == 3


def test_rolling_rollback_returns_to_the_previous_revision(kube: FakeKubeAPI, tmp_path: Path,
                                                           env_file: Path) -> None:
    for i in (1, 2):
        kube.add_node(f"staging-general-{i}")
    write(env_file, always_open, example="staging")
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0

    def bump(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["apps"][0]["image"] = "ghcr.io/acme/api:1.5.0"

    write(env_file, bump, example="staging")
    env = {**os.environ, "STAGING_DATABASE_URL": "postgres://staging"}
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    deployed = CliRunner(env=env).invoke(cli, ["deploy", str(env_file), "--kubeconfig",
                                               str(kubeconfig)])
    assert deployed.exit_code == 0, deployed.stderr

    def image() -> str:
        live = kube.get("apps/v1", "Deployment", "api", "staging")
        assert live is not None
        return str(live["spec"]["template"]["spec"]["containers"][0]["image"])

    assert image() == "ghcr.io/acme/api:1.5.0"
    back = CliRunner(env=env).invoke(cli, ["rollback", str(env_file), "--kubeconfig",
                                           str(kubeconfig)])
    assert back.exit_code == 0, back.stderr
    assert "api: back to revision 1" in back.stderr
    assert image() == "ghcr.io/acme/api:1.4.2"


def test_a_failed_rollback_still_rolls_back_the_others_and_says_so(
        kube: FakeKubeAPI, tmp_path: Path, env_file: Path) -> None:
    for i in (1, 2):
        kube.add_node(f"staging-general-{i}")

    def two_apps(image: str) -> Any:
        def edit(doc: dict[str, Any]) -> None:
            always_open(doc)
            doc["apps"][0]["image"] = f"ghcr.io/acme/api:{image}"
            doc["apps"].append(dict(doc["apps"][0], name="web", expose="cluster",
                                    image=f"ghcr.io/acme/web:{image}",
                                    ports=[{"name": "http", "port": 8080,
                                            "service_port": 80}]))
        return edit

    env = {**os.environ, "STAGING_DATABASE_URL": "postgres://staging"}
    kubeconfig = kube.write_kubeconfig(tmp_path / "kubeconfig")
    for image in ("1.0.0", "2.0.0"):
        write(env_file, two_apps(image), example="staging")
        deployed = CliRunner(env=env).invoke(cli, ["deploy", str(env_file), "--kubeconfig",
                                                   str(kubeconfig)])
        assert deployed.exit_code == 0, deployed.stderr
    kube.deny("patch", "deployments", name="web")
    back = CliRunner(env=env).invoke(cli, ["rollback", str(env_file), "--kubeconfig",
                                           str(kubeconfig)])
    assert back.exit_code == 1, back.stderr
    assert "rollback failed for web:" in back.stderr
    assert "may not patch deployments.apps" in back.stderr
    assert "Rolled back: api" in back.stderr
    api = kube.get("apps/v1", "Deployment", "api", "staging")
    assert api is not None
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "ghcr.io/acme/api:1.0.0"


class Flaky(FakeKubeAPI):
    """Answers the first PATCHes with 429 (Retry-After: 1), then 503, then normally."""

    throttle = 2
    unavailable = 2

    def respond(self, method: str, target: str, headers: Any, body: bytes,
                peer_user: str | None) -> Any:
        from tests.fakes.kubeapi.rest import Response

        response, record = super().respond(method, target, headers, body, peer_user)
        if method == "PATCH" and self.throttle > 0:
            self.throttle -= 1
            return Response(429, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "TooManyRequests", "code": 429},
                            headers={"Retry-After": "1"}), record
        if method == "PATCH" and self.unavailable > 0:
            self.unavailable -= 1
            return Response(503, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "ServiceUnavailable", "code": 503}), record
        return response, record


def test_deploy_retries_429_honouring_retry_after_and_5xx(tmp_path: Path,
                                                          env_file: Path) -> None:
    import time

    with Flaky() as flaky:
        for i in (1, 2, 3):
            flaky.add_node(f"prod-general-{i}")
        write(env_file, always_open)
        started = time.monotonic()
        code, err = run(flaky, tmp_path, "deploy", str(env_file))
        assert code == 0, err
        assert time.monotonic() - started >= 1.0, "Retry-After was honoured"
        assert flaky.throttle == 0 and flaky.unavailable == 0


def test_crash_loop_names_reason_and_last_log_lines(kube: FakeKubeAPI, tmp_path: Path,
                                                    env_file: Path) -> None:
    def crashing(doc: dict[str, Any]) -> None:
        always_open(doc)
        doc["apps"][0]["image"] = "ghcr.io/acme/api-crashloop:1.0.0"
        doc["apps"] = doc["apps"][:1]

    write(env_file, crashing)
    kube.set_log("prod", "api-blue", "starting api\nconnecting to db\npanic: no DATABASE_URL\n")
    code, err = run(kube, tmp_path, "deploy", str(env_file), "--timeout", "60")
    assert code == 1, err
    assert "app api (Deployment api-blue) failed to roll out" in err
    assert "CrashLoopBackOff" in err
    assert "last log lines:" in err and "panic: no DATABASE_URL" in err


def many_apps(count: int) -> Any:
    """The staging example with ``count`` rolling apps, each a Deployment, a Service and a
    disruption budget, deployable at any time."""
    def edit(doc: dict[str, Any]) -> None:
        always_open(doc)
        template = doc["apps"][0]
        doc["apps"] = [dict(template, name=f"app{i:02d}", replicas=2, strategy="rolling",
                            expose="cluster",
                            ports=[{"name": "http", "port": 8080, "service_port": 80}])
                       for i in range(count)]
    return edit


def test_an_apps_service_waits_for_its_own_workload_not_for_every_app(
        tmp_path: Path, env_file: Path) -> None:  # fmt: skip
    with FakeKubeAPI(latency_ms=20) as kube:
        write(env_file, many_apps(24), example="staging")
        code, err = run(kube, tmp_path, "deploy", str(env_file))
        assert code == 0, err
        answered = {r.name: r.started + r.duration
                    for r in kube.requests("PATCH", resource="deployments")}
        services = {r.name: r.started for r in kube.requests("PATCH", resource="services")}
        assert len(answered) == len(services) == 24
        for app, started in services.items():
            assert started >= answered[app], f"{app}'s Service went before its Deployment"
        # No barrier between the tiers: Services started while Deployments were in flight.
        assert min(services.values()) < max(answered.values())


def test_prune_lists_ask_for_metadata_only(kube: FakeKubeAPI, tmp_path: Path,
                                           env_file: Path) -> None:
    write(env_file, always_open)
    assert run(kube, tmp_path, "deploy", str(env_file))[0] == 0
    lists = [r for r in kube.requests("GET", verb="list")
             if r.query.get("labelSelector", "").startswith("applyset.kubernetes.io/part-of")]
    assert lists, "prune listed nothing"
    assert all("as=PartialObjectMetadataList" in r.accept for r in lists)
