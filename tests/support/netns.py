"""Hosts on one machine: network namespaces on a bridge, and the processes run inside them.

A failover test needs several machines that reach each other over a real IP network, with
real daemons (keepalived) exchanging real packets, and faults that are real too (a killed
process, a dropped protocol). Network namespaces give each "host" its own interfaces,
addresses, routes and loopback; a bridge in a namespace of its own is the switch between
them. Nothing here reaches outside: every address lives in namespaces this module created,
and `Topology.close()` deletes them all (with every process started in them), also when
a test fails half-way.

The module is also a small program run *inside* the namespaces (``python -m
tests.support.netns ...``), so that no test needs files of its own for them:

* ``apiserver --name cp1``: a stand-in for kube-apiserver on :6443 answering ``/readyz``
  (200) and ``/whoami`` (the host name), so a client can tell which host answered;
* ``probe --url URL --out FILE``: a client that requests URL every ``--interval`` seconds,
  bounded in count and time, and writes one JSON line per attempt (time, ok, host);
* ``raw-send`` / ``raw-receive``: send or wait for one raw IP packet of a protocol, to
  prove that a protocol is dropped on the underlay.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
SWITCH = "br0"
T = TypeVar("T")


# --------------------------------------------------------------------------- helpers


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here (not root, no iproute2, no netns), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs the failover test as root)"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"probe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"`ip netns add` does not work here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def clean_environment(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for processes in the namespaces: no proxies, the repo importable.

    A proxy variable inherited from the developer's shell would send the agents' API calls
    and the client's requests to a proxy outside the namespaces instead of to the hosts.
    """
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    path = env.get("PATH", "/usr/bin:/bin")
    for sbin in ("/usr/sbin", "/sbin"):
        if sbin not in path.split(":"):
            path += f":{sbin}"
    env["PATH"] = path
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


def wait_for(what: str, predicate: Callable[[], T | None], timeout: float,
             interval: float = 0.05) -> T:
    """Poll `predicate` until it returns something truthy; bounded in time and count."""
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / interval) + 2):
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.1f}s waiting for {what}")


def _run(argv: Sequence[str], *, check: bool = True,
         timeout: float = 20) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({result.returncode}): "
                           f"{result.stderr.strip() or result.stdout.strip()}")
    return result


# ------------------------------------------------------------------------- processes


@dataclass
class Process:
    """A process started in a namespace, in a process group of its own.

    The group is what is signalled: keepalived forks a VRRP child, and a crash of
    "keepalived" means both die at once (a parent killed alone would let its child
    shut down cleanly, which is a different fault).
    """

    name: str
    popen: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    @property
    def pid(self) -> int:
        """The leader's pid (also the process group id)."""
        return self.popen.pid

    def alive(self) -> bool:
        """Whether the leader is still running."""
        return self.popen.poll() is None

    def signal(self, signum: int, group: bool = True) -> None:
        """Send `signum` to the process group (or only the leader)."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.popen.pid, signum)
            else:
                os.kill(self.popen.pid, signum)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if it is still running after `timeout` seconds."""
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 5.0) -> None:
        """SIGTERM the group, then SIGKILL it if it has not exited within `timeout`."""
        if self.alive():
            self.signal(signal.SIGTERM)
            if self.wait(timeout) is not None:
                return
        self.signal(signal.SIGKILL)  # stragglers in the group, even if the leader is gone
        self.wait(timeout)

    def output(self, limit: int = 6000) -> str:
        """The end of what it wrote, for failure messages."""
        parts = []
        for label, path in (("stdout", self.stdout), ("stderr", self.stderr)):
            text = path.read_text(errors="replace") if path.is_file() else ""
            if text.strip():
                parts.append(f"--- {self.name} {label} ---\n{text[-limit:]}")
        return "\n".join(parts) or f"--- {self.name}: no output ---"

    def read_stdout(self) -> str:
        """Everything written to stdout so far."""
        return self.stdout.read_text(errors="replace") if self.stdout.is_file() else ""


# -------------------------------------------------------------------------- topology


@dataclass
class Host:
    """A namespace with one interface (eth0) on the switch."""

    name: str
    namespace: str
    address: str
    port: str  # the switch-side end of its veth, in the switch's namespace


@dataclass
class Topology:
    """Namespaces on a bridge: create with `add_host`, always `close()` (or use `with`).

    `prefix` makes the names unique on the machine (the pid of the test run), so a run
    never touches another run's namespaces.
    """

    prefix: str
    log_dir: Path
    prefix_length: int = 24
    hosts: dict[str, Host] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    _namespaces: list[str] = field(default_factory=list)
    _switch: str | None = None

    # ---- building

    def _add_namespace(self, name: str) -> str:
        namespace = f"{self.prefix}-{name}"
        _run(["ip", "netns", "add", namespace])
        self._namespaces.append(namespace)
        _run(["ip", "-n", namespace, "link", "set", "lo", "up"])
        return namespace

    def switch(self) -> str:
        """The namespace holding the bridge, created on first use."""
        if self._switch is None:
            self._switch = self._add_namespace("net")
            _run(["ip", "-n", self._switch, "link", "add", SWITCH, "type", "bridge"])
            _run(["ip", "-n", self._switch, "link", "set", SWITCH, "up"])
        return self._switch

    def add_host(self, name: str, address: str) -> Host:
        """A namespace `name` whose eth0 has `address` and is plugged into the bridge."""
        switch = self.switch()
        namespace = self._add_namespace(name)
        _run(["ip", "-n", namespace, "link", "add", "eth0", "type", "veth",
              "peer", "name", name, "netns", switch])
        _run(["ip", "-n", switch, "link", "set", name, "master", SWITCH, "up"])
        _run(["ip", "-n", namespace, "addr", "add", f"{address}/{self.prefix_length}",
              "dev", "eth0"])
        _run(["ip", "-n", namespace, "link", "set", "eth0", "up"])
        host = Host(name, namespace, address, name)
        self.hosts[name] = host
        return host

    def add_namespace(self, name: str) -> Host:
        """A namespace `name` off the switch, with only loopback up; wire it with `link`.

        For layouts a flat bridge cannot model, such as a node routing for pods behind veths.
        Its `address` and `port` stay empty (`drop_ip_protocol` is for switch hosts only).
        """
        host = Host(name, self._add_namespace(name), "", "")
        self.hosts[name] = host
        return host

    def link(self, a: str, a_device: str, a_address: str,
             b: str, b_device: str, b_address: str) -> None:
        """A veth pair between hosts `a` and `b`, both ends addressed (CIDR form) and up."""
        ns_a, ns_b = self.hosts[a].namespace, self.hosts[b].namespace
        _run(["ip", "-n", ns_a, "link", "add", a_device, "type", "veth",
              "peer", "name", b_device, "netns", ns_b])
        for namespace, device, address in ((ns_a, a_device, a_address),
                                           (ns_b, b_device, b_address)):
            _run(["ip", "-n", namespace, "addr", "add", address, "dev", device])
            _run(["ip", "-n", namespace, "link", "set", device, "up"])

    def ip(self, host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`ip ARGS` inside `host`'s namespace."""
        return _run(["ip", "-n", self.hosts[host].namespace, *args], check=check)

    def drop_ip_protocol(self, host: str, protocol: int) -> None:
        """Drop IP protocol `protocol` on `host`'s underlay link, in both directions.

        This is what DigitalOcean's cloud firewalls do to VRRP (protocol 112). The kernels
        this runs on need no iptables/nft userland for it: an HTB root qdisc (unclassified
        traffic passes unshaped) and a u32 filter steering the protocol into a class whose
        queue holds nothing (pfifo limit 0), on the host's eth0 (what it sends) and on the
        switch port towards it (what it receives). Encapsulated traffic (VXLAN is UDP)
        does not match and passes.
        """
        spec = self.hosts[host]
        for namespace, device in ((spec.namespace, "eth0"), (self.switch(), spec.port)):
            tc = ["tc", "-n", namespace]
            _run([*tc, "qdisc", "replace", "dev", device, "root", "handle", "1:", "htb"])
            _run([*tc, "class", "add", "dev", device, "parent", "1:", "classid", "1:70",
                  "htb", "rate", "8kbit"])
            _run([*tc, "qdisc", "add", "dev", device, "parent", "1:70", "handle", "70:",
                  "pfifo", "limit", "0"])
            _run([*tc, "filter", "add", "dev", device, "parent", "1:", "protocol", "ip",
                  "prio", "1", "u32", "match", "ip", "protocol", str(protocol), "0xff",
                  "flowid", "1:70"])

    def dropped(self, host: str) -> int:
        """Packets the protocol drop discarded on `host`'s link so far (both directions)."""
        spec = self.hosts[host]
        total = 0
        for namespace, device in ((spec.namespace, "eth0"), (self.switch(), spec.port)):
            shown = _run(["tc", "-n", namespace, "-s", "qdisc", "show", "dev", device],
                         check=False).stdout
            # "qdisc pfifo 70: parent 1:70 limit 0p\n Sent 0 bytes 0 pkt (dropped 3, ..."
            block = shown.partition("qdisc pfifo 70:")[2].split("qdisc ")[0]
            found = re.search(r"dropped (\d+)", block)
            total += int(found.group(1)) if found else 0
        return total

    # ---- processes

    def command(self, host: str, argv: Sequence[str]) -> list[str]:
        """`argv` run inside `host`'s namespace."""
        return ["ip", "netns", "exec", self.hosts[host].namespace, *argv]

    def run(self, host: str, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
            timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run `argv` in `host` to completion (bounded by `timeout`)."""
        result = subprocess.run(self.command(host, argv), capture_output=True, text=True,
                                timeout=timeout, env=clean_environment(env), cwd=ROOT)
        if check and result.returncode != 0:
            raise RuntimeError(f"{host}: {' '.join(argv)} failed ({result.returncode}):\n"
                               f"{result.stdout}\n{result.stderr}")
        return result

    def start(self, host: str, name: str, argv: Sequence[str], *,
              env: Mapping[str, str] | None = None) -> Process:
        """Start `argv` in `host` in a new process group; output goes to files in log_dir."""
        self.log_dir.mkdir(parents=True, exist_ok=True)
        stdout, stderr = self.log_dir / f"{name}.out", self.log_dir / f"{name}.err"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            popen = subprocess.Popen(self.command(host, argv), stdout=out, stderr=err,
                                     stdin=subprocess.DEVNULL, env=clean_environment(env),
                                     cwd=ROOT, start_new_session=True)
        process = Process(name, popen, stdout, stderr)
        self.processes.append(process)
        return process

    def python(self, host: str, name: str, *args: str,
               env: Mapping[str, str] | None = None) -> Process:
        """Start ``python -m tests.support.netns ARGS`` (or any -m/-c args) in `host`."""
        return self.start(host, name, [sys.executable, *args], env=env)

    # ---- teardown

    def close(self) -> None:
        """Kill every process started here or still inside the namespaces; delete them."""
        for process in reversed(self.processes):
            process.stop(timeout=3)
        for namespace in reversed(self._namespaces):
            # Whatever is still inside (a keepalived script child in a group of its own)
            # belongs to this run: the namespace was created by it.
            pids = _run(["ip", "netns", "pids", namespace], check=False).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        for namespace in reversed(self._namespaces):
            _run(["ip", "netns", "del", namespace], check=False)
        self._namespaces.clear()
        self._switch = None

    def __enter__(self) -> Topology:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def protocol_passes(topology: Topology, sender: str, receiver: str, protocol: int,
                    to: str | None = None, timeout: float = 1.5) -> bool:
    """Whether one raw IP packet of `protocol` from `sender` reaches `receiver`.

    `to` is the destination address (default: the receiver's underlay address); giving
    an address on a tunnel shows the same protocol crossing inside the encapsulation.
    """
    listener = topology.python(receiver, f"raw-receive-{protocol}-{to or receiver}",
                               "-m", "tests.support.netns", "raw-receive",
                               "--protocol", str(protocol), "--timeout", str(timeout))
    try:
        wait_for("the raw listener", lambda: "ready" in listener.read_stdout(), 10)
        topology.run(sender, [sys.executable, "-m", "tests.support.netns", "raw-send",
                              "--protocol", str(protocol), "--to",
                              to or topology.hosts[receiver].address])
        listener.wait(timeout + 5)
        return "received" in listener.read_stdout()
    finally:
        listener.stop(timeout=2)


# -------------------------------------------------------- programs run in namespaces


def _serve_api(name: str, port: int, lifetime: float) -> int:
    """The kube-apiserver stand-in: /readyz and /whoami until lifetime or SIGTERM."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            answers = {"/readyz": b"ok", "/whoami": name.encode()}
            body = answers.get(self.path.split("?")[0])
            self.send_response(200 if body is not None else 404)
            payload = body if body is not None else b"not found"
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: ten requests a second would bury anything useful."""

    class Server(ThreadingHTTPServer):
        allow_reuse_address = True  # restarted on the same port right after a stop
        daemon_threads = True

    server = Server(("0.0.0.0", port), Handler)
    stop = threading.Event()
    _stop_on_signals(stop)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    print(f"listening {name} :{port}", flush=True)
    stop.wait(lifetime)
    server.shutdown()
    server.server_close()
    return 0


def _probe(url: str, out: Path, interval: float, count: int, timeout: float,
           lifetime: float) -> int:
    """Request `url` repeatedly; one JSON line per attempt. Bounded by count and lifetime."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    stop = threading.Event()
    _stop_on_signals(stop)
    deadline = time.monotonic() + lifetime
    with out.open("a", encoding="utf-8") as sink:
        for _ in range(count):
            if stop.is_set() or time.monotonic() >= deadline:
                break
            started = time.time()
            record: dict[str, object] = {"t": started}
            try:
                with opener.open(url, timeout=timeout) as response:
                    record.update(ok=response.status == 200,
                                  host=response.read().decode(errors="replace").strip())
            except Exception as exc:  # any failure is a failed request, counted by the test
                record.update(ok=False, error=f"{type(exc).__name__}: {exc}")
            record["took"] = round(time.time() - started, 4)
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            stop.wait(max(0.0, interval - (time.time() - started)))
    return 0


def _raw_receive(protocol: int, timeout: float) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol) as sock:
        sock.settimeout(timeout)
        print("ready", flush=True)
        try:
            _, source = sock.recvfrom(2048)
        except TimeoutError:
            print("nothing", flush=True)
            return 1
    print(f"received from {source[0]}", flush=True)
    return 0


def _raw_send(protocol: int, to: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, protocol) as sock:
        sock.sendto(b"provision-failover-probe", (to, 0))
    return 0


def _stop_on_signals(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def main(argv: list[str] | None = None) -> int:
    """``apiserver``, ``probe``, ``raw-receive`` or ``raw-send`` (see the module docstring)."""
    parser = argparse.ArgumentParser(prog="python -m tests.support.netns")
    sub = parser.add_subparsers(dest="program", required=True)
    api = sub.add_parser("apiserver")
    api.add_argument("--name", required=True)
    api.add_argument("--port", type=int, default=6443)
    api.add_argument("--lifetime", type=float, default=300)
    probe = sub.add_parser("probe")
    probe.add_argument("--url", required=True)
    probe.add_argument("--out", type=Path, required=True)
    probe.add_argument("--interval", type=float, default=0.1)
    probe.add_argument("--count", type=int, default=600)
    probe.add_argument("--timeout", type=float, default=0.5)
    probe.add_argument("--lifetime", type=float, default=60)
    receive = sub.add_parser("raw-receive")
    receive.add_argument("--protocol", type=int, required=True)
    receive.add_argument("--timeout", type=float, default=1.5)
    send = sub.add_parser("raw-send")
    send.add_argument("--protocol", type=int, required=True)
    send.add_argument("--to", required=True)
    options = parser.parse_args(argv)
    if options.program == "apiserver":
        return _serve_api(options.name, options.port, options.lifetime)
    if options.program == "probe":
        return _probe(options.url, options.out, options.interval, options.count,
                      options.timeout, options.lifetime)
    if options.program == "raw-receive":
        return _raw_receive(options.protocol, options.timeout)
    return _raw_send(options.protocol, options.to)


if __name__ == "__main__":
    sys.exit(main())
