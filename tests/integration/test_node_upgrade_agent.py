"""The upgrade agent as it runs on a node: kubectl against the fake API server, the node's
own credentials, and stand-ins for apt-get, apt-mark, apt-cache, kubeadm and systemctl on
PATH (the subprocess boundary: each records its arguments; apt-cache answers ``madison``
from the package repository the apt source names, as tests/support/k8s_packages.py serves
per minor).

The steps and their order are kubeadm's documented upgrade (kubernetes/website
content/en/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade.md, read at commit
0189ae0f: upgrade kubeadm with ``apt-mark unhold``/``install``/``hold``; ``kubeadm upgrade
apply`` on the first control plane, ``kubeadm upgrade node`` on the others and on workers;
then kubelet and kubectl the same way and a kubelet restart) and the per-minor repository
switch (change-package-repository.md at commit a907ad19: change the minor in the URL of
/etc/apt/sources.list.d/kubernetes.list). A kubelet's credentials may read Nodes and patch
them (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go ``NodeRules``: nodes get,
list, watch, update, patch), NodeRestriction only its own Node
(plugin/pkg/admission/noderestriction/admission.go at commit 01467da76f71), which the fake
API server enforces.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from provisioner.agents import node_upgrade
from tests.fakes.kubeapi import FakeKubeAPI, catalog
from tests.support.k8s_packages import RELEASES

pytestmark = pytest.mark.integration

KUBECTL = str(Path(sys.executable).parent / "kubectl")


def shipped_agent() -> str:
    """The agent as a node receives it: unpacked from the rendered user-data's bundle as the
    bootstrap script unpacks it (tests/support/rendering.on_node; without its docstrings and
    comments), not the repository's file."""
    from provisioner.config import load_environment
    from provisioner.render import cloudinit
    from tests.support.rendering import ROOT, on_node

    env = load_environment(ROOT / "examples" / "production.yaml")
    files = on_node(yaml.safe_load(cloudinit.worker(env, env.worker_pools[0]).text))
    assert files[cloudinit.NODE_UPGRADE].mode == 0o755
    return files[cloudinit.NODE_UPGRADE].content


TOKENS = {"w1-token": "system:node:w1", "w2-token": "system:node:w2"}
NODE = catalog.get("v1", "Node")
SOURCE = ("deb [signed-by=/etc/apt/keyrings/kubernetes.asc] "
          "https://repo.invalid/core:/stable:/v1.35/deb/ /\n")

FAKE = """#!{python}
import json, os, re, signal, sys
name = os.path.basename(sys.argv[0])
with open(os.environ["CALLS"], "a") as log:
    log.write(json.dumps([name, *sys.argv[1:]]) + "\\n")
if name == os.environ.get("KILL", ""):  # the agent's unit stopped (or the node lost) mid-run
    os.kill(os.getppid(), signal.SIGKILL)
if name == os.environ.get("GARBLE", ""):  # output that is not UTF-8
    sys.stdout.buffer.write(b"\\xff\\xfe upgrade done\\n")
if name == "apt-cache":
    text = open(os.environ["PROVISION_KUBERNETES_LIST"]).read()
    minor = re.search(r"/v(\\d+\\.\\d+)/deb/", text).group(1)
    for release in reversed(json.loads(os.environ["RELEASES"]).get(minor, [])):
        print(f"   kubeadm | {{release}}-1.1 | https://repo.invalid/v{{minor}}/deb  Packages")
if name == os.environ.get("FAIL", ""):
    print("[upgrade] FATAL: the control plane did not come up in time", file=sys.stderr)
    sys.exit(1)
"""


class Node:
    """One node's file system and PATH, its agent run as its kubelet."""

    def __init__(self, kube: FakeKubeAPI, root: Path, name: str) -> None:
        self.kube, self.name, self.root = kube, name, root
        bin_dir = root / "bin"
        bin_dir.mkdir(parents=True)
        for tool in ("apt-get", "apt-mark", "apt-cache", "kubeadm", "systemctl"):
            path = bin_dir / tool
            path.write_text(FAKE.format(python=sys.executable))
            path.chmod(0o755)
        self.agent = root / "node_upgrade.py"
        self.agent.write_text(shipped_agent())
        self.calls = root / "calls.log"
        self.sources = root / "kubernetes.list"
        self.sources.write_text(SOURCE)
        self.state = root / "state" / "upgrade.json"
        self.env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
                    "CALLS": str(self.calls), "RELEASES": json.dumps(RELEASES),
                    "PROVISION_KUBECONFIG": str(kube.write_kubeconfig(
                        root / "kubelet.conf", token=f"{name}-token")),
                    "PROVISION_KUBERNETES_LIST": str(self.sources),
                    "PROVISION_UPGRADE_STATE": str(self.state)}

    def run(self, node: str | None = None, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, str(self.agent), KUBECTL, node or self.name],
                              env={**self.env, **extra}, capture_output=True, text=True,
                              timeout=120)

    def commands(self) -> list[list[str]]:
        if not self.calls.is_file():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def notes(self, node: str | None = None) -> dict[str, str]:
        found = self.kube.get("v1", "Node", node or self.name)
        assert found is not None
        return dict(found["metadata"].get("annotations") or {})

    def ask(self, **request: Any) -> None:
        """provision's request, written as an administrator writes it."""
        old = self.kube.get("v1", "Node", self.name)
        assert old is not None
        new = json.loads(json.dumps(old))
        new["metadata"]["annotations"][node_upgrade.REQUEST] = json.dumps(request)
        self.kube.registry.commit(NODE, old, new, "provision")


@pytest.fixture
def kube() -> Any:
    with FakeKubeAPI(tls=True, tokens=TOKENS) as api:
        api.add_node("w1", kubelet_version="v1.35.8")
        api.add_node("w2", kubelet_version="v1.35.8")
        yield api


def expected(step: list[str], full: str = "1.36.3-1.1") -> list[list[str]]:
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    return [[*apt, "update"], ["apt-cache", "madison", "kubeadm"],
            ["apt-mark", "unhold", "kubeadm"], [*apt, "install", "-y", f"kubeadm={full}"],
            ["apt-mark", "hold", "kubeadm"], ["kubeadm", "upgrade", *step],
            ["apt-mark", "unhold", "kubelet", "kubectl"],
            [*apt, "install", "-y", f"kubelet={full}", f"kubectl={full}"],
            ["apt-mark", "hold", "kubelet", "kubectl"],
            ["systemctl", "daemon-reload"], ["systemctl", "restart", "kubelet"]]


def test_without_a_request_it_only_says_it_is_there(kube: FakeKubeAPI, tmp_path: Path) -> None:
    node = Node(kube, tmp_path, "w1")
    done = node.run()
    assert done.returncode == 0, done.stderr
    assert node.notes()[node_upgrade.AGENT] == node_upgrade.CONTRACT
    assert node_upgrade.RESULT not in node.notes()
    assert node.commands() == []


@pytest.mark.parametrize(("request_", "argv"), [
    ({"step": "node"}, ["node"]),
    ({"step": "apply"}, ["apply", "-y", "v1.36.3"]),
    # A control plane's components first, its kubelet later (every API server upgraded).
    ({"step": "apply", "kubelet": False}, ["apply", "-y", "v1.36.3"]),
    ({"step": "node", "kubelet": False}, ["node"]),
    ({"step": "kubelet"}, None)])
def test_a_request_runs_kubeadms_steps_in_order_once(kube: FakeKubeAPI, tmp_path: Path,
                                                     request_: dict[str, Any],
                                                     argv: list[str] | None) -> None:
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-1", version="1.36.3", **request_)
    done = node.run()
    assert done.returncode == 0, done.stderr
    steps = expected(argv or [])
    if request_.get("kubelet") is False:
        steps = steps[:6]
    if argv is None:
        steps = steps[:2] + steps[6:]
    assert node.commands() == steps
    assert "/core:/stable:/v1.36/deb/" in node.sources.read_text()
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert result["id"] == "u-1" and result["ok"] is True, result
    assert result["at"].endswith("Z")
    again = node.run()  # the timer's next pass: a finished id is not run again
    assert again.returncode == 0, again.stderr
    assert len(node.commands()) == len(steps)


def test_a_failed_step_is_the_result_and_is_not_retried(kube: FakeKubeAPI,
                                                        tmp_path: Path) -> None:
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-2", version="1.36.3", step="node")
    done = node.run(FAIL="kubeadm")
    assert done.returncode == 1
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert result["ok"] is False
    assert "kubeadm upgrade node failed (exit 1)" in result["message"]
    assert "did not come up in time" in result["message"]
    ran = node.commands()
    assert ran[-1] == ["kubeadm", "upgrade", "node"]  # kubelet untouched after the failure
    node.run()
    assert node.commands() == ran


def test_a_release_the_repository_lacks_fails_before_any_install(kube: FakeKubeAPI,
                                                                  tmp_path: Path) -> None:
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-3", version="1.36.9", step="node")
    assert node.run().returncode == 1
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert "1.36.9 is not in the package repository" in result["message"]
    assert not any(c[0] in ("kubeadm", "apt-mark") for c in node.commands())


def test_a_result_the_api_missed_is_sent_again_without_rerunning(kube: FakeKubeAPI,
                                                                  tmp_path: Path) -> None:
    node = Node(kube, tmp_path, "w1")
    node.state.parent.mkdir(parents=True)
    node.state.write_text(json.dumps({"id": "u-4", "ok": True, "message": "done",
                                      "at": "2026-03-07T03:00:00Z"}))
    node.ask(id="u-4", version="1.36.3", step="node")
    assert node.run().returncode == 0
    assert json.loads(node.notes()[node_upgrade.RESULT])["id"] == "u-4"
    assert node.commands() == []


@pytest.mark.parametrize("version", [
    "1.36.3; reboot",
    # Arabic-Indic digits: \\d without re.ASCII takes them for digits.
    "1.\u0663\u0666.3"])
def test_a_malformed_request_is_answered_not_run(kube: FakeKubeAPI, tmp_path: Path,
                                                 version: str) -> None:
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-5", version=version, step="node")
    assert node.run().returncode == 1
    assert "malformed request" in json.loads(node.notes()[node_upgrade.RESULT])["message"]
    assert node.commands() == []


def test_a_kubelets_credentials_change_its_own_node_only(kube: FakeKubeAPI,
                                                         tmp_path: Path) -> None:
    node = Node(kube, tmp_path, "w1")
    done = node.run(node="w2")  # w1's kubeconfig, w2's Node
    assert done.returncode == 1
    assert 'node "w1" is not allowed to modify node "w2"' in done.stderr
    assert node_upgrade.AGENT not in node.notes("w2")


def test_a_release_of_a_minor_without_a_repository_puts_the_apt_source_back(
        kube: FakeKubeAPI, tmp_path: Path) -> None:
    """Anyone allowed to patch Nodes may ask for 1.99.0: the source must not stay on a
    repository that does not exist (every later apt-get update on the node would fail)."""
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-6", version="1.99.0", step="node")
    assert node.run().returncode == 1
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert "1.99.0 is not in the package repository" in result["message"]
    assert node.sources.read_text() == SOURCE
    apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    # apt's lists follow the source back.
    assert node.commands() == [[*apt, "update"], ["apt-cache", "madison", "kubeadm"],
                               [*apt, "update"]]


def test_an_unexpected_error_is_the_result_and_is_not_retried(kube: FakeKubeAPI,
                                                               tmp_path: Path) -> None:
    """kubeadm ran, then its output could not be read (UnicodeDecodeError, not Failed): the
    id is answered failed with the error's type, and the next pass runs nothing again."""
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-7", version="1.36.3", step="apply")
    assert node.run(GARBLE="kubeadm").returncode == 1
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert result["ok"] is False
    assert result["message"].startswith("UnicodeDecodeError("), result
    ran = node.commands()
    assert ran[-1] == ["kubeadm", "upgrade", "apply", "-y", "v1.36.3"]
    node.run()
    assert node.commands() == ran


def test_an_agent_stopped_mid_run_answers_failed_and_never_reruns(kube: FakeKubeAPI,
                                                                  tmp_path: Path) -> None:
    """The id is recorded as started before anything runs: a pass killed during `kubeadm
    upgrade apply` leaves the next pass an answer, not the request to run again."""
    node = Node(kube, tmp_path, "w1")
    node.ask(id="u-8", version="1.36.3", step="apply")
    assert node.run(KILL="kubeadm").returncode != 0
    assert node_upgrade.RESULT not in node.notes()
    ran = node.commands()
    assert ran[-1] == ["kubeadm", "upgrade", "apply", "-y", "v1.36.3"]
    assert node.run().returncode == 0
    result = json.loads(node.notes()[node_upgrade.RESULT])
    assert result["id"] == "u-8" and result["ok"] is False
    assert result["message"] == "stopped mid-run"
    assert node.commands() == ran
