#!/usr/bin/env python3
"""provision's upgrade agent (every node; README "Upgrades" holds the contract).

One pass (a timer, every 15 s): read our Node; for an `upgrade` request {id, version, step,
kubelet} whose id has no `upgrade-result`: apt source of the target minor; unless step is
"kubelet", kubeadm (unhold, install, hold) and `kubeadm upgrade apply -y v<version>` (step
apply) or `kubeadm upgrade node` (step node); unless kubelet is false, kubelet and kubectl,
daemon-reload, restart the kubelet; then write {id, ok, message, at}. The id is recorded
in a local file as started before anything runs, and the result replaces it there first: an id
is never run again (an agent stopped mid-run answers it as failed). A request that fails before
any install puts the apt source back as it was. Runs on Python 3.10 (Ubuntu 22.04).

Its code (not this docstring or comments) goes into the first control plane's user-data, which
has little room left under DigitalOcean's 64 KiB (provisioner/render/artefacts.py): keep it
short.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REQUEST = "provision.dev/upgrade"
RESULT = "provision.dev/upgrade-result"
AGENT = "provision.dev/upgrade-agent"
CONTRACT = "1"
# (?a): ASCII digits only; \d also matches other scripts' digits (Arabic-Indic, ...).
VERSION = re.compile(r"(?a)\A\d+\.\d+\.\d+\Z")
REPOSITORY = re.compile(r"(/core:/stable:/v)\d+\.\d+(/deb/)")
APT = ("apt-get", "-o", "DPkg::Lock::Timeout=600", "-q")


class Failed(RuntimeError):
    pass


def log(text: str) -> None:
    # stderr is line-buffered even when not a terminal (Python 3.9+): no flush needed.
    print(f"provision-node-upgrade: {text}", file=sys.stderr)


def run(*command: str) -> str:
    log(" ".join(command))
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=2400,
                              env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as e:
        raise Failed(f"{command[0]}: {e}") from e
    if done.returncode:
        tail = " | ".join((done.stderr or done.stdout).strip().splitlines()[-3:])
        raise Failed(f"{' '.join(command[:3])} failed (exit {done.returncode}): {tail}"[:600])
    return done.stdout


def install(version: str, *packages: str) -> None:
    run("apt-mark", "unhold", *packages)
    run(*APT, "install", "-y", *(f"{p}={version}" for p in packages))
    run("apt-mark", "hold", *packages)


def upgrade(version: str, step: str, kubelet: bool, sources: Path) -> str:
    minor = version.rsplit(".", 1)[0]  # one package repository per minor
    text = sources.read_text()
    new, found = REPOSITORY.subn(rf"\g<1>{minor}\g<2>", text)
    if not found:
        raise Failed(f"no Kubernetes repository in {sources}")
    sources.write_text(new)
    try:
        run(*APT, "update")
        # As bootstrap.sh's package_version: apt-cache madison's third column.
        full = next((f[2] for f in map(str.split, run("apt-cache", "madison", "kubeadm")
                                       .splitlines()) if len(f) > 2
                     and f[2].startswith(version + "-")), None)
        if full is None:
            raise Failed(f"Kubernetes {version} is not in the package repository")
    except Exception:
        # Nothing installed yet: a source naming a minor that does not exist (any request
        # may name one) would break every later apt-get update on the node. Should this
        # apt-get update fail too, its error is the answer.
        sources.write_text(text)
        run(*APT, "update")
        raise
    if step != "kubelet":
        install(full, "kubeadm")
        run("kubeadm", "upgrade", *(("apply", "-y", f"v{version}") if step == "apply" else
                                    ("node",)))
    if kubelet:
        install(full, "kubelet", "kubectl")
        run("systemctl", "daemon-reload")
        run("systemctl", "restart", "kubelet")
    return f"{step} done with {full}"


def parse(text: object) -> dict[str, Any] | None:
    try:
        value = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
    return value if isinstance(value, dict) and isinstance(value.get("id"), str) else None


def kubectl(args: list[str], *more: str) -> str:
    for attempt in range(5):  # the API server may be the one restarting
        done = subprocess.run([*args, *more], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            return done.stdout
        log(done.stderr.strip())
        time.sleep(2 * attempt)
    raise RuntimeError(f"kubectl {more[0]} failed")


def keep(state: Path, result: dict[str, Any]) -> None:
    """``result``, stamped now, in the state file."""
    # dt.UTC is Python 3.11+; nodes may run Ubuntu 22.04's 3.10.
    result["at"] = dt.datetime.now(dt.timezone.utc).strftime(  # noqa: UP017
        "%Y-%m-%dT%H:%M:%SZ")
    state.parent.mkdir(parents=True, exist_ok=True)
    partial = state.with_suffix(".partial")
    partial.write_text(json.dumps(result))
    partial.replace(state)


def one_pass(base: list[str], node: str, state: Path, sources: Path) -> int:
    notes = json.loads(kubectl(base, "get", "node", node, "-o", "json"))["metadata"].get(
        "annotations") or {}

    def annotate(key: str, value: str) -> None:
        kubectl(base, "patch", "node", node, "--type", "merge",
                "-p", json.dumps({"metadata": {"annotations": {key: value}}}))

    if notes.get(AGENT) != CONTRACT:
        annotate(AGENT, CONTRACT)
    request, done = parse(notes.get(REQUEST)), parse(notes.get(RESULT))
    if request is None or (done and done["id"] == request["id"]):
        return 0
    kept = parse(state.read_text()) if state.is_file() else None
    if kept and kept["id"] == request["id"]:  # ran; the API did not take the result
        annotate(RESULT, json.dumps(kept, sort_keys=True))
        return 0
    version, step = str(request.get("version")), str(request.get("step"))
    kubelet = step == "kubelet" or request.get("kubelet") is not False
    result: dict[str, Any] = {"id": request["id"], "ok": False}
    if not VERSION.match(version) or step not in ("apply", "node", "kubelet"):
        result["message"] = f"malformed request: version {version!r}, step {step!r}"
    else:
        # Recorded before anything runs: should this pass die mid-way (killed, the node
        # rebooted), the next one answers this failed rather than run it again.
        keep(state, {**result, "message": "stopped mid-run"})
        try:
            result |= {"ok": True, "message": upgrade(version, step, kubelet, sources)}
        except Exception as e:  # any failure is this id's answer, never a rerun
            result["message"] = str(e) if isinstance(e, Failed) else repr(e)[:600]
    keep(state, result)
    annotate(RESULT, json.dumps(result, sort_keys=True))
    log(f"{request['id']}: {result['message']}")
    return 0 if result["ok"] else 1


def main(argv: list[str]) -> int:
    """``node_upgrade.py [KUBECTL [NODE]]``: one pass."""
    admin = "/etc/kubernetes/admin.conf"
    config = admin if Path(admin).is_file() else "/etc/kubernetes/kubelet.conf"
    env = os.environ.get
    base = [argv[0] if argv else "kubectl", "--kubeconfig",
            env("PROVISION_KUBECONFIG", config), "--request-timeout=30s"]
    node = argv[1] if len(argv) > 1 else socket.gethostname().lower()
    try:
        return one_pass(base, node,
                        Path(env("PROVISION_UPGRADE_STATE", "/var/lib/provision/upgrade.json")),
                        Path(env("PROVISION_KUBERNETES_LIST",
                                 "/etc/apt/sources.list.d/kubernetes.list")))
    except Exception as e:  # kubectl, the API's answer, the state file: the next pass retries
        log(str(e))
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
