"""The node's metadata guard, run for real: pods and non-root users lose the metadata service.

DigitalOcean's metadata service (169.254.169.254) hands a droplet's user-data, with the
cluster's bootstrap credentials, to anything on the droplet that asks. The guard that
cloud-init installs (``/usr/local/sbin/provision-metadata-guard``) must cut off pods and
local non-root users while root (the bootstrap script, the failover agent) keeps access.
This test takes the guard out of the rendered cloud-config and runs it with bash in a
namespace standing in for the droplet, against a stand-in metadata service::

    pod 10.244.1.5/24 --veth-- 10.244.1.1/24  node  169.254.0.1/16 --veth-- meta 169.254.169.254/16
    (default via 10.244.1.1)                  (ip_forward on)             (default via 169.254.0.1,
                                                                            HTTP on :80)

The pod side is what a CNI sets up: the pod's address in the node's share of the pod CIDR,
the node as its gateway, pod traffic routed (not sent) by the node, so only the policy rule
can stop it; SNAT, if a CNI adds it, happens after that routing decision. A second address
in ``meta`` (not the metadata service) shows the block is no wider than the one address.

Every request is made by one client (bash's /dev/tcp under coreutils' ``timeout``), so the
non-root client runs under ``setpriv`` with nothing but base-system binaries. Everything
lives in namespaces of this run; `Topology` deletes them, and kills what ran inside, also
when an assertion fails half-way.

The last test reruns the guard with more policy rules than a pipe holds: a `grep -q`
in the guard once made such a rerun fail (SIGPIPE under pipefail).
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from provisioner.config import parse
from provisioner.render import render_environment
from tests.support import netns
from tests.support.netns import ROOT, Topology, wait_for
from tests.support.rendering import example, late_values, materialize, rendered, written

pytestmark = pytest.mark.integration

GUARD_PATH = "/usr/local/sbin/provision-metadata-guard"
METADATA_IP = "169.254.169.254"
USER_DATA_PATH = "/metadata/v1/user-data"
NEIGHBOUR_IP = "169.254.42.42"  # also behind the node's metadata link, but not the service
NODE_LINK = "169.254.0.1"
TABLE = "169"
CHAIN = "PROVISION-METADATA"
NOBODY = 65534
ALLOWED_TIMEOUT = 5.0  # a request that should succeed (it takes milliseconds)
BLOCKED_TIMEOUT = 2.0  # how long a blocked pod waits before the request counts as failed
# A REJECTed connect fails on an ICMP error, not a timeout. The error for the first SYN
# comes back while connect() still holds the socket, so Linux keeps it as a soft error;
# the retransmission a second later (TCP's initial RTO) gets the refusal that sticks.
REFUSED_WITHIN = 2.5

# One HTTP/1.0 GET with bash's /dev/tcp; $0 is the host, $1 the path. The effective uid
# goes to stderr first, so an answer can be told from a client that was not who it seemed.
CLIENT = (
    'printf "uid=%s\\n" "$EUID" >&2\n'
    'exec 3<>"/dev/tcp/$0/80" || exit 7\n'
    'printf "GET %s HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$1" "$0" >&3\n'
    "cat <&3\n"
)


# --------------------------------------------------------------------------- helpers


@dataclass
class Answer:
    """What one request got: the HTTP status line and body, or how it failed."""

    who: str
    returncode: int
    status: str
    body: str
    stderr: str
    seconds: float

    @property
    def ok(self) -> bool:
        """An HTTP 200 came back."""
        return self.status.split()[1:2] == ["200"]

    @property
    def timed_out(self) -> bool:
        """`timeout` killed the client: no answer, not even a refusal."""
        return self.returncode == 124

    def __str__(self) -> str:
        return (f"{self.who}: exit {self.returncode} after {self.seconds:.2f}s, "
                f"status {self.status or '-'!r}, {len(self.body)} body bytes, "
                f"stderr {self.stderr.strip()!r}")


def fetch(topo: Topology, host: str, who: str, *, uid: int = 0, address: str = METADATA_IP,
          path: str = USER_DATA_PATH, timeout: float = ALLOWED_TIMEOUT) -> Answer:
    """GET http://`address``path` from `host`'s namespace, as `uid`, bounded by `timeout`."""
    argv = ["timeout", f"{timeout:g}", "bash", "-c", CLIENT, address, path]
    if uid != 0:
        argv = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", *argv]
    started = time.monotonic()
    result = subprocess.run(topo.command(host, argv), capture_output=True, timeout=timeout + 10,
                            env=netns.clean_environment(), cwd="/")
    seconds = time.monotonic() - started
    head, _, body = result.stdout.decode(errors="replace").partition("\r\n\r\n")
    stderr = result.stderr.decode(errors="replace")
    assert f"uid={uid}\n" in stderr, f"{who}: the client did not run as uid {uid}: {stderr!r}"
    return Answer(who, result.returncode, head.partition("\r\n")[0], body, stderr, seconds)


def guard_script(files: dict[str, str]) -> str:
    """The guard from the rendered user-data (write_files), the same in every role's file."""
    scripts: dict[str, str] = {}
    for name, text in files.items():
        if not name.startswith("cloud-init/"):
            continue
        config = yaml.safe_load(materialize(text))
        entries = [f for f in config["write_files"] if f["path"] == GUARD_PATH]
        assert len(entries) == 1, f"{name}: {len(entries)} write_files entries for {GUARD_PATH}"
        scripts[name] = written(entries[0])
    assert scripts, "no cloud-init user-data among the rendered files"
    assert len(set(scripts.values())) == 1, f"the guard differs between {sorted(scripts)}"
    return next(iter(scripts.values()))


def pod_addresses(pod_cidr: str, node_index: int = 1) -> tuple[str, str]:
    """(pod, gateway) in the node's /24 of `pod_cidr`, as a CNI hands them out."""
    network = ipaddress.IPv4Network(pod_cidr)
    block = list(network.subnets(new_prefix=24))[node_index]
    return str(block[5]), str(block[1])


@dataclass
class Droplet:
    """The namespaces: a droplet's host network, pods behind it, the metadata service."""

    topo: Topology
    user_data: bytes
    guard: Path

    def add_pod(self, name: str, pod_cidr: str, node_index: int = 1) -> str:
        """A pod namespace routed through the node, addressed from `pod_cidr`; its address."""
        pod, gateway = pod_addresses(pod_cidr, node_index)
        self.topo.add_namespace(name)
        self.topo.link("node", f"veth-{name}"[:15], f"{gateway}/24", name, "eth0", f"{pod}/24")
        self.topo.ip(name, "route", "add", "default", "via", gateway)
        return pod

    def run_guard(self) -> subprocess.CompletedProcess[str]:
        """The rendered guard, run by bash in the node's namespace."""
        result = self.topo.run("node", ["bash", str(self.guard)], check=False, timeout=20)
        assert result.returncode == 0, (
            f"the guard failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
        return result

    def rules(self) -> dict[str, list[str]]:
        """The node's guard state: policy rules, table 169, OUTPUT chain (for comparison)."""
        ip_rules = self.topo.ip("node", "rule", "show").stdout.splitlines()
        table = self.topo.ip("node", "route", "show", "table", TABLE).stdout.splitlines()
        output = self.topo.run("node", ["iptables", "-S", "OUTPUT"]).stdout.splitlines()
        chain = self.topo.run("node", ["iptables", "-S", CHAIN], check=False).stdout
        return {"ip rule": [" ".join(line.split()) for line in ip_rules],
                f"table {TABLE}": [" ".join(line.split()) for line in table],
                "iptables OUTPUT": output, f"iptables {CHAIN}": chain.splitlines()}

    def run_guard_with_users(self, passwd: Path) -> None:
        """The guard, seeing `passwd` as /etc/passwd (a mount namespace of its own).

        The guard looks do-agent's uid up by name; the machine's own /etc/passwd is never
        touched, the bind mount exists only for this one run.
        """
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
                'mount --bind "$1" /etc/passwd && shift && exec "$@"', "sh", str(passwd),
                *self.topo.command("node", ["bash", str(self.guard)])]
        result = subprocess.run(argv, capture_output=True, text=True, timeout=30,
                                env=netns.clean_environment(), cwd="/")
        assert result.returncode == 0, (
            f"the guard failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def droplet(tmp_path: Path) -> Iterator[Droplet]:
    """node + meta (serving user-data); pods are added by the test. Always torn down."""
    reason = netns.unavailable_reason()
    if reason:
        pytest.skip(reason)
    assert shutil.which("iptables"), "iptables is not installed: the guard needs it " \
        "(apt-get install --no-install-recommends iptables; .ci/run installs it)"
    user_data = materialize(rendered("production")["cloud-init/controller-init.yaml"]).encode()
    docroot = tmp_path / "metadata"
    served = docroot / USER_DATA_PATH.lstrip("/")
    served.parent.mkdir(parents=True)
    served.write_bytes(user_data)
    with Topology(f"mg{os.getpid()}", tmp_path / "logs") as topo:
        topo.add_namespace("node")
        topo.add_namespace("meta")
        topo.link("node", "eth-meta", f"{NODE_LINK}/16", "meta", "eth0", f"{METADATA_IP}/16")
        topo.ip("meta", "addr", "add", f"{NEIGHBOUR_IP}/16", "dev", "eth0")
        topo.ip("meta", "route", "add", "default", "via", NODE_LINK)
        topo.run("node", ["sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"])
        server = topo.start("meta", "metadata-service", [
            sys.executable, "-m", "http.server", "80",
            "--bind", "0.0.0.0", "--directory", str(docroot)])
        wait_for("the metadata service", lambda: "Serving HTTP" in server.read_stdout()
                 or not server.alive(), 15)
        assert server.alive(), server.output()
        yield Droplet(topo, user_data, tmp_path / "provision-metadata-guard")


def write_guard(droplet: Droplet, script: str) -> None:
    droplet.guard.write_text(script, encoding="utf-8")
    droplet.guard.chmod(0o755)


def assert_user_data(answer: Answer, user_data: bytes) -> None:
    assert answer.ok, str(answer)
    assert answer.body.encode() == user_data, f"{answer.who}: not the served user-data"


def assert_blocked_pod(answer: Answer) -> None:
    assert not answer.ok and answer.status == "", str(answer)
    assert answer.returncode != 0, str(answer)
    assert answer.seconds < BLOCKED_TIMEOUT + 2, f"not bounded: {answer}"


def assert_refused(answer: Answer) -> None:
    assert not answer.ok and answer.status == "", str(answer)
    assert "refused" in answer.stderr.lower(), f"expected a refusal: {answer}"
    assert answer.seconds < REFUSED_WITHIN, f"refused only slowly: {answer}"


# ----------------------------------------------------------------------------- tests


def test_guard_cuts_off_pods_and_non_root_users_but_not_root(droplet: Droplet) -> None:
    started = time.monotonic()
    pod_cidr = example("production").kubernetes.pod_cidr
    script = guard_script(rendered("production"))
    write_guard(droplet, script)
    topo = droplet.topo
    pod = droplet.add_pod("pod", pod_cidr)
    assert ipaddress.ip_address(pod) in ipaddress.ip_network(pod_cidr)

    # Before the guard: the metadata service hands the user-data to anyone on the droplet.
    before = {
        "pod": fetch(topo, "pod", "pod (before)"),
        "root": fetch(topo, "node", "node root (before)"),
        "nobody": fetch(topo, "node", "node nobody (before)", uid=NOBODY),
    }
    for answer in before.values():
        assert_user_data(answer, droplet.user_data)
    secret = late_values()["bootstrap_token"]
    assert secret in before["pod"].body  # what is at stake: the cluster's join token

    droplet.run_guard()
    after = {
        "pod": fetch(topo, "pod", "pod (guarded)", timeout=BLOCKED_TIMEOUT),
        "root": fetch(topo, "node", "node root (guarded)"),
        "nobody": fetch(topo, "node", "node nobody (guarded)", uid=NOBODY),
        "pod neighbour": fetch(topo, "pod", "pod to a neighbour (guarded)",
                               address=NEIGHBOUR_IP),
    }
    assert_blocked_pod(after["pod"])
    assert secret not in after["pod"].body
    assert_user_data(after["root"], droplet.user_data)
    assert_refused(after["nobody"])
    assert secret not in after["nobody"].body
    # Only the one address is cut off: the pod's routing through the node still works.
    assert_user_data(after["pod neighbour"], droplet.user_data)

    # What did it: the rules, from this environment's pod CIDR, as the guard's text says.
    state = droplet.rules()
    guard_rules = [line for line in state["ip rule"] if f"lookup {TABLE}" in line]
    assert guard_rules == [f"100: from {pod_cidr} to {METADATA_IP} lookup {TABLE}"], state
    assert state[f"table {TABLE}"] == [f"blackhole {METADATA_IP}"], state
    jumps = [line for line in state["iptables OUTPUT"] if METADATA_IP in line]
    assert jumps == [f"-A OUTPUT -d {METADATA_IP}/32 -j {CHAIN}"], state
    assert state[f"iptables {CHAIN}"] == [
        f"-N {CHAIN}", f"-A {CHAIN} -m owner --uid-owner 0 -j RETURN",
        f"-A {CHAIN} -j REJECT --reject-with icmp-port-unreachable"], state
    assert f"POD_CIDR={pod_cidr}\n" in script, script

    # Every boot runs the guard again (and an operator may too): nothing is added twice.
    droplet.run_guard()
    assert droplet.rules() == state
    assert_user_data(fetch(topo, "node", "node root (guarded twice)"), droplet.user_data)
    assert_refused(fetch(topo, "node", "node nobody (guarded twice)", uid=NOBODY))

    print("\nmetadata guard, production pod CIDR", pod_cidr)
    for label, answers in (("before", before), ("after", after)):
        for answer in answers.values():
            print(f"  {label:6} {answer}")
    print(f"  took {time.monotonic() - started:.1f}s")


def test_guard_blocks_the_configured_pod_cidr(droplet: Droplet) -> None:
    production = (ROOT / "examples" / "production.yaml").read_text(encoding="utf-8")
    default_cidr = example("production").kubernetes.pod_cidr
    pod_cidr = "10.32.0.0/16"
    assert production.count(f"pod_cidr: {default_cidr}\n") == 1
    variant = production.replace(f"pod_cidr: {default_cidr}\n", f"pod_cidr: {pod_cidr}\n")
    env = parse(variant.encode(), "production-pod-cidr.yaml")
    assert env.kubernetes.pod_cidr == pod_cidr
    script = guard_script(render_environment(env))
    write_guard(droplet, script)
    topo = droplet.topo
    # A pod of this environment, and an address in the default range, which this
    # environment's guard has no business blocking (it is no pod of this cluster).
    droplet.add_pod("pod", pod_cidr, node_index=7)
    droplet.add_pod("other", default_cidr)

    assert_user_data(fetch(topo, "pod", "pod (before)"), droplet.user_data)
    assert_user_data(fetch(topo, "other", "default-range address (before)"), droplet.user_data)

    droplet.run_guard()
    assert_blocked_pod(fetch(topo, "pod", "pod (guarded)", timeout=BLOCKED_TIMEOUT))
    assert_user_data(fetch(topo, "other", "default-range address (guarded)"),
                     droplet.user_data)
    assert_user_data(fetch(topo, "node", "node root (guarded)"), droplet.user_data)
    state = droplet.rules()
    guard_rules = [line for line in state["ip rule"] if f"lookup {TABLE}" in line]
    assert guard_rules == [f"100: from {pod_cidr} to {METADATA_IP} lookup {TABLE}"], state
    assert f"POD_CIDR={pod_cidr}\n" in script and default_cidr not in script, script


def test_guard_reruns_cleanly_with_a_long_rule_list(droplet: Droplet, tmp_path: Path) -> None:
    # More policy rules than a pipe holds (64 KiB of `ip rule show`), after the guard's own.
    batch = tmp_path / "rules.batch"
    batch.write_text("".join(
        f"rule add from 10.200.{i // 250}.{i % 250}/32 lookup 200 priority {1000 + i}\n"
        for i in range(4000)), encoding="utf-8")
    droplet.topo.run("node", ["ip", "-batch", str(batch)])
    assert len(droplet.topo.ip("node", "rule", "show").stdout) > 128 * 1024
    write_guard(droplet, guard_script(rendered("production")))
    droplet.run_guard()
    state = droplet.rules()
    droplet.run_guard()
    assert droplet.rules() == state


# ------------------------------------------------------- the add-ons, as they really run

CCM_UID = 65532  # distroless `nonroot`
DO_AGENT_UID = 987  # a system uid (useradd --system); not a user of this machine


def _passwd_with_do_agent(tmp_path: Path) -> Path:
    """This machine's /etc/passwd plus the user do-agent's package creates."""
    current = Path("/etc/passwd").read_text(encoding="utf-8")
    assert f":{DO_AGENT_UID}:" not in current and "\ndo-agent:" not in f"\n{current}"
    passwd = tmp_path / "passwd"
    passwd.write_text(current + f"do-agent:x:{DO_AGENT_UID}:{DO_AGENT_UID}::/nonexistent:"
                      "/bin/false\n", encoding="utf-8")
    passwd.chmod(0o644)
    return passwd


def test_guard_lets_in_exactly_the_add_ons_that_need_the_service(droplet: Droplet,
                                                                tmp_path: Path) -> None:
    """Each add-on with its real user and network mode, before and after DigitalOcean
    installs its monitoring agent.

    Who runs how (tests/contract/test_upstream_facts.py checks the rendered artefacts
    against the same facts):

    * DigitalOcean cloud controller manager v0.1.68: host network
      (releases/digitalocean-cloud-controller-manager/v0.1.68.yml, `hostNetwork: true`),
      image FROM gcr.io/distroless/static-debian13:nonroot
      (cloud-controller-manager/cmd/digitalocean-cloud-controller-manager/Dockerfile), whose
      user is uid 65532 (GoogleContainerTools/distroless common/variables.bzl, NONROOT).
      It asks the service only for its region when REGION is unset (do/metadata.go
      `dropletRegion`); provision sets REGION, so the guard refuses it, which is right.
    * csi-digitalocean v4.16.0: the plugin image runs as root (cmd/do-csi-plugin/Dockerfile,
      alpine, no USER) and asks the service for the droplet id in every mode
      (driver/driver.go `NewDriver`). The node plugin runs on the host network
      (deploy/kubernetes/releases/csi-digitalocean-v4.16.0/driver.yaml, csi-do-node); the
      controller (csi-do-controller) upstream on the pod network, where it is blackholed,
      so provision moves it onto the host network, where root is allowed.
    * do-agent 3.18.14 (installed by DigitalOcean for `monitoring = true`): systemd runs it
      as `User=do-agent` (packaging/etc/systemd/system/do-agent.service), a user its
      package creates with `useradd --system` (packaging/scripts/after_install.sh); it reads
      its droplet id, region and auth token from the service
      (pkg/clients/tsclient/client.go). Its uid exists only after the install, so the
      guard reruns before do-agent starts (the drop-in) and then lets it in.
    """
    write_guard(droplet, guard_script(rendered("production")))
    topo = droplet.topo
    droplet.add_pod("csi-controller", example("production").kubernetes.pod_cidr)
    droplet.run_guard()
    first_boot = {
        "ccm": fetch(topo, "node", "CCM (host network, uid 65532)", uid=CCM_UID,
                     path="/metadata/v1/region"),
        "csi host": fetch(topo, "node", "CSI controller/node plugin (host network, root)",
                          path="/metadata/v1/id"),
        "csi pod": fetch(topo, "csi-controller", "CSI controller as shipped (pod network)",
                         path="/metadata/v1/id", timeout=BLOCKED_TIMEOUT),
        "do-agent": fetch(topo, "node", "do-agent before its user exists",
                          uid=DO_AGENT_UID, path="/metadata/v1/id"),
    }
    assert_refused(first_boot["ccm"])
    assert first_boot["csi host"].status.split()[1:2] == ["404"], str(first_boot["csi host"])
    assert_blocked_pod(first_boot["csi pod"])
    assert_refused(first_boot["do-agent"])

    # DigitalOcean installs do-agent; its unit's drop-in runs the guard before it starts.
    passwd = _passwd_with_do_agent(tmp_path)
    droplet.run_guard_with_users(passwd)
    installed = {
        "do-agent": fetch(topo, "node", "do-agent (host, its own user)", uid=DO_AGENT_UID),
        "ccm": fetch(topo, "node", "CCM after the install", uid=CCM_UID),
        "nobody": fetch(topo, "node", "nobody after the install", uid=NOBODY),
        "root": fetch(topo, "node", "root after the install"),
        "pod": fetch(topo, "csi-controller", "pod after the install",
                     timeout=BLOCKED_TIMEOUT),
    }
    assert_user_data(installed["do-agent"], droplet.user_data)
    assert_user_data(installed["root"], droplet.user_data)
    assert_refused(installed["ccm"])
    assert_refused(installed["nobody"])
    assert_blocked_pod(installed["pod"])
    state = droplet.rules()
    assert state[f"iptables {CHAIN}"] == [
        f"-N {CHAIN}", f"-A {CHAIN} -m owner --uid-owner 0 -j RETURN",
        f"-A {CHAIN} -m owner --uid-owner {DO_AGENT_UID} -j RETURN",
        f"-A {CHAIN} -j REJECT --reject-with icmp-port-unreachable"], state

    # Every restart of do-agent reruns the guard: the chain is rebuilt, not extended.
    droplet.run_guard_with_users(passwd)
    assert droplet.rules() == state
    print("\nmetadata guard and the add-ons")
    for label, answers in (("boot", first_boot), ("agent", installed)):
        for answer in answers.values():
            print(f"  {label:6} {answer}")
