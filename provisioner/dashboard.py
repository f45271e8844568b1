"""`provision dashboard`: Headlamp in the cluster, reached through the API server.

Click-free. `install` applies the add-on's objects (provisioner/render/headlamp.py) with
server-side apply, so each run converges them to the pinned release. `request_token` asks
the TokenRequest API (POST .../serviceaccounts/<name>/token, authentication.k8s.io/v1) for
a short-lived token of the read-only or the admin account: nothing long-lived exists to
leak, and an hour later the token is worthless. The admin account (bound to cluster-admin)
is applied only for a run with ``--admin`` and deleted again when that run ends
(`remove_admin`): a standing cluster-admin account would be anyone's who may create pods in
the namespace (a pod spec can mount its token). `Forwarder` listens on 127.0.0.1 and
carries each connection to the Headlamp pod through the API server's port-forward
(``pods/portforward``, the kubernetes client's `portforward`), so neither the pod nor the
Service is ever exposed outside the cluster.

The token is handed over once, never to stdout, a log or a file: copied to the clipboard
when a clipboard tool is there, otherwise written once to the terminal (stderr, only when it
is a terminal) with a warning; without either the command refuses before asking for one.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionError, UsageError
from provisioner.render import headlamp

TOKEN_SECONDS = 3600  # the TokenRequest API's default; the server may shorten it
# A clipboard tool that has not taken the token by then hangs (xclip without a display it
# can reach may wait for ever); the terminal is the fallback.
CLIPBOARD_SECONDS = 30.0
APPLY = "application/apply-patch+yaml"

# Clipboard tools, first found wins: (command, arguments); the token goes to their stdin.
CLIPBOARDS = (("wl-copy", ()), ("xclip", ("-selection", "clipboard")),
              ("xsel", ("--clipboard", "--input")), ("pbcopy", ()))


def _path(obj: dict[str, Any]) -> str:
    kind, meta = obj["kind"], obj["metadata"]
    plural = {"Namespace": "namespaces", "ServiceAccount": "serviceaccounts",
              "Service": "services", "Deployment": "deployments",
              "ClusterRoleBinding": "clusterrolebindings"}[kind]
    group = {"Deployment": "/apis/apps/v1",
             "ClusterRoleBinding": "/apis/rbac.authorization.k8s.io/v1"}.get(kind, "/api/v1")
    ns = f"/namespaces/{meta['namespace']}" if "namespace" in meta else ""
    return f"{group}{ns}/{plural}/{meta['name']}"


def install(kube: Any, admin: bool = False) -> None:
    """Apply every object of the add-on (server-side apply, one field manager); the admin
    account and its cluster-admin binding only with `admin`."""
    for obj in headlamp.objects(admin):
        kube.request("PATCH", _path(obj),
                     [("fieldManager", headlamp.FIELD_MANAGER), ("force", "true")],
                     json.dumps(obj), content_type=APPLY,
                     verb=f"apply {obj['kind']} {obj['metadata']['name']}")


def remove_admin(kube: Any) -> None:
    """Delete the admin binding, then the admin account (gone already: fine).

    Without the binding the account's tokens carry no privilege at once (RBAC is checked on
    every request); deleting the account also makes the API server refuse its tokens
    (kubernetes/kubernetes pkg/serviceaccount/claims.go: a bound token's service account
    must still exist with the UID in its claims)."""
    from provisioner.kube import KubeError

    for obj in reversed(headlamp.admin_objects()):
        try:
            kube.request("DELETE", _path(obj),
                         verb=f"delete {obj['kind']} {obj['metadata']['name']}")
        except KubeError as e:
            if e.status != 404:
                raise


@dataclass(frozen=True)
class Token:
    account: str
    value: str
    expires: str  # as the API server says (RFC 3339)

    def __repr__(self) -> str:  # a traceback or a debug print must not show it
        return f"Token(account={self.account!r}, expires={self.expires!r})"


def request_token(kube: Any, admin: bool, seconds: int = TOKEN_SECONDS) -> Token:
    """A token of the admin or the read-only account, valid `seconds` (or what the server
    grants), for the API server's own audiences (none given)."""
    account = headlamp.ADMIN_ACCOUNT if admin else headlamp.VIEW_ACCOUNT
    body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds}}
    answer = kube.request(
        "POST", f"/api/v1/namespaces/{headlamp.NAMESPACE}/serviceaccounts/{account}/token",
        body=body, verb=f"create serviceaccounts/token for {account}")
    status = answer.get("status") or {}
    if not status.get("token"):
        raise ProvisionError(f"the API server answered the token request for {account} "
                             "without a token")
    return Token(account, str(status["token"]), str(status.get("expirationTimestamp")))


def clipboard() -> list[str] | None:
    """The command that takes text on stdin into the clipboard, if one is installed."""
    for name, args in CLIPBOARDS:
        found = shutil.which(name)
        if found:
            return [found, *args]
    return None


def check_delivery(to_terminal: bool | None = None) -> list[str] | None:
    """How the token will be handed over: a clipboard command, or None for the terminal.

    Raises before any token exists when there is neither (a CI log would keep it)."""
    command = clipboard()
    terminal = sys.stderr.isatty() if to_terminal is None else to_terminal
    if command is None and not terminal:
        raise UsageError("provision dashboard hands the login token over through the "
                         "clipboard (wl-copy, xclip, xsel or pbcopy) or a terminal, and "
                         "found neither: run it in a terminal, or install a clipboard tool")
    return command


def deliver(token: Token, command: list[str] | None, say: Callable[[str], None]) -> None:
    """Copy the token to the clipboard, or write it once to the terminal."""
    if command is not None:
        tool = os.path.basename(command[0])
        try:
            done = subprocess.run(command, input=token.value.encode(), check=False,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                  timeout=CLIPBOARD_SECONDS)
            failure = f"exit {done.returncode}" if done.returncode else ""
        except subprocess.TimeoutExpired:  # run() has killed it
            failure = f"no answer in {CLIPBOARD_SECONDS:g} s"
        except OSError as e:
            failure = e.strerror or type(e).__name__
        if not failure:
            say(f"the login token of {token.account} (valid until {token.expires}) is on "
                "the clipboard: paste it into Headlamp's login form")
            return
        if not sys.stderr.isatty():
            raise ProvisionError(f"{tool} could not take the login token ({failure}); run "
                                 "in a terminal instead (the token is then shown there once)")
        say(f"{tool} could not take the login token ({failure})")
    say(f"login token of {token.account}, valid until {token.expires} (shown once; it is "
        "not stored; do not paste it anywhere but Headlamp's login form):")
    sys.stderr.write(token.value + "\n")
    sys.stderr.flush()


HEAD_LIMIT = 65536  # a request head larger than this is no browser's
_MISDIRECTED_BODY = b"misdirected request: open this page by its loopback address\n"
MISDIRECTED = (b"HTTP/1.1 421 Misdirected Request\r\n"
               b"Content-Type: text/plain; charset=utf-8\r\n"
               b"Content-Length: " + str(len(_MISDIRECTED_BODY)).encode() + b"\r\n"
               b"Connection: close\r\n\r\n" + _MISDIRECTED_BODY)


def _host_of(head: bytes) -> str | None:
    """The Host header of a request head (None without one)."""
    for line in head.split(b"\r\n")[1:]:
        name, sep, value = line.partition(b":")
        if sep and name.strip().lower() == b"host":
            return value.strip().decode("latin-1")
    return None


class Forwarder:
    """127.0.0.1:`port` to the Headlamp pod's port, through the API server's port-forward."""

    def __init__(self, api_client: Any, port: int = 0) -> None:
        self.api = api_client
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        self.errors: list[str] = []
        self._stop = threading.Event()
        # The client's `portforward` swaps its ApiClient's request function for the call's
        # duration (kubernetes/stream/stream.py): two connections opening at once (a
        # browser opens several) would send each other's requests the wrong way.
        self._opening = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def pod(self) -> str:
        """A ready Headlamp pod's name."""
        from kubernetes import client

        core = client.CoreV1Api(self.api)
        pods = core.list_namespaced_pod(headlamp.NAMESPACE,
                                        label_selector=f"app.kubernetes.io/name={headlamp.NAME}")
        for pod in pods.items:
            conditions = (pod.status.conditions or []) if pod.status else []
            if any(c.type == "Ready" and c.status == "True" for c in conditions):
                return str(pod.metadata.name if pod.metadata else "")
        raise ProvisionError(f"no Headlamp pod is Ready in namespace {headlamp.NAMESPACE} "
                             "yet (its image may still be pulling); try again in a minute")

    def _first_head(self, conn: socket.socket) -> bytes | None:
        """The connection's first request head (through the blank line), or None when the
        connection ends, the forwarder stops or the head outgrows `HEAD_LIMIT` first."""
        data = b""
        while b"\r\n\r\n" not in data and len(data) <= HEAD_LIMIT:
            if self._stop.is_set():
                return None
            readable, _, _ = select.select([conn], [], [], 0.5)
            if readable:
                chunk = conn.recv(65536)
                if not chunk:
                    return None
                data += chunk
        return data if b"\r\n\r\n" in data else None

    def _carry(self, conn: socket.socket) -> None:
        from kubernetes import client
        from kubernetes.stream import portforward

        from provisioner.status_web import loopback_host

        try:
            # DNS rebinding (see provisioner/status_web.py): answer only a connection whose
            # first request names loopback. A browser keeps connections per host name, so a
            # connection opened for a rebound name carries only that name's requests.
            first = self._first_head(conn)
            if first is None:
                return
            if not loopback_host(_host_of(first), self.port):
                conn.sendall(MISDIRECTED)
                return
            with self._opening:
                name = self.pod()
                core = client.CoreV1Api(self.api)
                forward = portforward(core.connect_get_namespaced_pod_portforward, name,
                                      headlamp.NAMESPACE, ports=str(headlamp.PORT))
            remote = forward.socket(headlamp.PORT)
            remote.setblocking(True)
            remote.sendall(first)
            pair = [conn, remote]
            while not self._stop.is_set():
                readable, _, _ = select.select(pair, [], [], 0.5)
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (remote if sock is conn else conn).sendall(data)
        except Exception as e:  # one connection's failure, said once; the next may work
            message = f"{type(e).__name__}: {str(e)[:200]}"
            if message not in self.errors:
                self.errors.append(message)
        finally:
            conn.close()

    def serve(self, stop: threading.Event) -> None:
        """Accept connections until `stop` is set."""
        self.listener.settimeout(0.5)
        while not stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._carry, args=(conn,), daemon=True).start()
        self._stop.set()
        self.listener.close()
