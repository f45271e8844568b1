"""`provision dashboard`: Headlamp in the cluster, reached through the API server.

Click-free. `install` applies the add-on's objects (provisioner/render/headlamp.py) with
server-side apply, so each run converges them to the pinned release. `request_token` asks
the TokenRequest API (POST .../serviceaccounts/<name>/token, authentication.k8s.io/v1) for
a short-lived token of the read-only or the admin account: nothing long-lived exists to
leak, and an hour later the token is worthless. `Forwarder` listens on 127.0.0.1 and
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


def install(kube: Any) -> None:
    """Apply every object of the add-on (server-side apply, one field manager)."""
    for obj in headlamp.objects():
        kube.request("PATCH", _path(obj),
                     [("fieldManager", headlamp.FIELD_MANAGER), ("force", "true")],
                     json.dumps(obj), content_type=APPLY,
                     verb=f"apply {obj['kind']} {obj['metadata']['name']}")


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
        done = subprocess.run(command, input=token.value.encode(), check=False,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=30)
        if done.returncode == 0:
            say(f"the login token of {token.account} (valid until {token.expires}) is on "
                "the clipboard: paste it into Headlamp's login form")
            return
        if not sys.stderr.isatty():
            raise ProvisionError(f"{os.path.basename(command[0])} could not take the token "
                                 f"(exit {done.returncode}); run in a terminal instead")
    say(f"login token of {token.account}, valid until {token.expires} (shown once; it is "
        "not stored; do not paste it anywhere but Headlamp's login form):")
    sys.stderr.write(token.value + "\n")
    sys.stderr.flush()


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

    def _carry(self, conn: socket.socket) -> None:
        from kubernetes import client
        from kubernetes.stream import portforward

        try:
            with self._opening:
                name = self.pod()
                core = client.CoreV1Api(self.api)
                forward = portforward(core.connect_get_namespaced_pod_portforward, name,
                                      headlamp.NAMESPACE, ports=str(headlamp.PORT))
            remote = forward.socket(headlamp.PORT)
            remote.setblocking(True)
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
