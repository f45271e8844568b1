"""`FakeKubeAPI`: the fake Kubernetes API server over real HTTP(S) on 127.0.0.1.

Each request passes, in order: injected latency, authentication (401), the deny rules
(403, RBAC wording), then routing (rest.py). Every request is logged as a
`RequestRecord` once its answer has started (watches: when the stream opens). Watch
responses are chunked JSON lines, like the real server's; everything else has a
Content-Length and keeps the connection alive.
"""

from __future__ import annotations

import base64
import contextlib
import fnmatch
import hmac
import json
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from . import bootstrap, catalog, errors, etcd, portforward
from . import tls as tls_module
from .controllers import Controllers
from .disruption import Timeline
from .errors import ApiError
from .faults import Denial, Injection
from .registry import Registry
from .rest import Request, Response, Rest, Target, encode, parse_target
from .store import Store

__all__ = ["DEFAULT_NAMESPACES", "Denial", "FakeKubeAPI", "Injection", "RequestRecord"]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_OPEN_PATHS = ("/healthz", "/livez", "/readyz", "/version")  # anonymous on kubeadm clusters
QUIET = 0.05  # s without requests after which a deferred controller pass may run


@dataclass(frozen=True)
class RequestRecord:
    """One answered request. `verb`/`resource`/`namespace`/`name` are empty for
    non-resource paths (discovery, health)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    status: int
    started: float  # time.time()
    duration: float  # seconds until the answer (or the watch stream) started
    verb: str = ""
    resource: str = ""  # plural, or plural/subresource
    namespace: str = ""
    name: str = ""
    user_agent: str = ""
    user: str = ""
    body: bytes = b""  # the request body as received
    accept: str = ""  # the Accept header

    def json(self) -> Any:
        """The request body decoded (JSON, or YAML for apply patches); None if empty."""
        return yaml.safe_load(self.body) if self.body.strip() else None


class FakeKubeAPI:
    """A fake kube-apiserver with simulated controllers; see the package docstring.

    ::

        with FakeKubeAPI() as kube:                 # http://127.0.0.1:PORT
            kube.add_node("cp-1", control_plane=True)
            subprocess.run([kubectl, "--server", kube.base_url, "get", "nodes"])

    `tls=True` serves HTTPS with `cert_pem`/`key_pem`, or with a fresh self-signed CA
    (`kube.ca_pem`). `tokens` / `client_ca_pem` turn on authentication (401 otherwise);
    by default every request is accepted as "kubernetes-admin".
    """

    def __init__(
        self,
        tls: bool = False,
        cert_pem: bytes | None = None,
        key_pem: bytes | None = None,
        latency_ms: float = 0,
        *,
        ca_pem: bytes | None = None,
        tokens: Iterable[str] | Mapping[str, str] | None = None,
        client_ca_pem: bytes | None = None,
        controllers: bool = True,
        defer_controllers: bool = False,
        step_delay: float = 0.05,
        time_scale: float = 0.01,
        start_steps: int = 2,
        crash_steps: int = 2,
        git_version: str = "v1.37.1",
        host: str = "127.0.0.1",
        port: int = 0,
        signer: tuple[bytes, bytes] | None = None,
    ) -> None:
        self.tls = tls
        self.latency_ms = latency_ms
        self.tls_material: tls_module.TLSMaterial | None = None
        if tls and not (cert_pem and key_pem):
            self.tls_material = tls_module.make_tls()
            cert_pem, key_pem = self.tls_material.cert_pem, self.tls_material.key_pem
            ca_pem = ca_pem or self.tls_material.ca_pem
        self.ca_pem = ca_pem
        self._cert = (cert_pem, key_pem)
        self.client_ca_pem = client_ca_pem
        if tokens is None:
            self.tokens: dict[str, str] | None = None
        elif isinstance(tokens, Mapping):
            self.tokens = dict(tokens)
        else:
            self.tokens = {t: "kubernetes-admin" for t in tokens}
        self.denials: list[Denial] = []
        self.injections: list[Injection] = []
        self.store = Store()
        self.registry = Registry(self.store)
        self.controllers = Controllers(self.registry, step_delay=step_delay,
                                       time_scale=time_scale, start_steps=start_steps,
                                       crash_steps=crash_steps)  # fmt: skip
        self.run_controllers = controllers
        self.connections = 0  # connections accepted (TLS: handshakes completed) so far
        # Requests being answered (watches aside) and when the last one ended: with
        # `defer_controllers` a pass waits until the API has been quiet for QUIET s.
        self._answering = 0
        self._answered_at = 0.0
        self._busy_lock = threading.Lock()
        if defer_controllers:
            self.controllers.busy = self.busy
        self.rest = Rest(self.registry, self.controllers.kubelet, git_version)
        self.rest.on_token = self._accept_token
        # Loopback addresses tests serve as a port of every pod of a namespace, and the
        # port-forwards asked for (portforward.py).
        self.pod_ports: dict[tuple[str, int], tuple[str, int]] = {}
        self.port_forwards: list[portforward.Forwarded] = []
        # The control plane's stacked etcd (empty until `etcd_init`); the kubelet runs
        # etcdctl pods against it.
        self.etcd = etcd.EtcdCluster()
        self.controllers.kubelet.commands = lambda pod: etcd.run_pod(self.etcd, pod)
        # Nodes Ready, cordoned and deleted, pods evicted, with times (disruption.py).
        self.timeline = Timeline()
        self.store.subscribe(self.timeline.note, None)
        self.rest.timeline = self.timeline
        self._address = (host, port)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._log: list[RequestRecord] = []
        self._log_lock = threading.Lock()
        # `signer` (the cluster CA's cert and key PEM): kube-controller-manager's
        # certificate controllers and bootstrap signer run (bootstrap.py).
        self.certificates = (bootstrap.CertificateControllers(self, *signer)
                             if signer else None)
        self._seed()

    def _seed(self) -> None:
        ns_rt = catalog.get("v1", "Namespace")
        for name in DEFAULT_NAMESPACES:
            self.registry.commit(ns_rt, None, {"metadata": {"name": name}}, "kube-apiserver")
        service = {"metadata": {"name": "kubernetes", "namespace": "default",
                                "labels": {"component": "apiserver", "provider": "kubernetes"}},
                   "spec": {"clusterIP": "10.96.0.1", "ports": [
                       {"name": "https", "port": 443, "targetPort": 6443}]}}  # fmt: skip
        self.registry.commit(catalog.get("v1", "Service"), None, service, "kube-apiserver")

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> str:
        """Listen (on a free port unless one was given); return `base_url`."""
        if self._server is not None:
            return self.base_url
        self._stopping.clear()
        context = None
        if self.tls:
            cert, key = self._cert
            assert cert and key
            context = tls_module.server_context(cert, key, self.client_ca_pem)
        server = _Server(self._address, _Handler, context)
        server.fake = self
        self._server = server
        self.rest.server_address = f"{self._address[0]}:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05},
                                        name=f"fake-kubeapi:{self.port}")  # fmt: skip
        self._thread.start()
        if self.run_controllers:
            self.controllers.start()
        if self.certificates is not None:
            self.certificates.start()
        return self.base_url

    def stop(self) -> None:
        """Stop serving, end open watches, cut keep-alive connections; safe to call twice."""
        self.controllers.stop()
        if self.certificates is not None:
            self.certificates.stop()
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeKubeAPI:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeKubeAPI is not started")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self._address[0]}:{self.port}"

    # ------------------------------------------------------------ client setup

    def _accept_token(self, issued: Any) -> None:
        """A TokenRequest's token authenticates as its service account (tokens.py)."""
        if self.tokens is not None:
            self.tokens[issued.token] = (f"system:serviceaccount:{issued.namespace}:"
                                         f"{issued.service_account}")

    @property
    def issued_tokens(self) -> list[Any]:
        """Every TokenRequest answered so far (tokens.Issued)."""
        return list(self.rest.issued_tokens)

    def kubeconfig(self, *, token: str | None = None, namespace: str = "default",
                   client_cert: tuple[bytes, bytes] | None = None) -> dict[str, Any]:  # fmt: skip
        """A kubeconfig for this server (CA data when serving TLS)."""
        cluster: dict[str, Any] = {"server": self.base_url}
        if self.tls and self.ca_pem:
            cluster["certificate-authority-data"] = base64.b64encode(self.ca_pem).decode()
        user: dict[str, Any] = {}
        if token:
            user["token"] = token
        if client_cert:
            user["client-certificate-data"] = base64.b64encode(client_cert[0]).decode()
            user["client-key-data"] = base64.b64encode(client_cert[1]).decode()
        return {
            "apiVersion": "v1", "kind": "Config", "current-context": "fake",
            "clusters": [{"name": "fake", "cluster": cluster}],
            "users": [{"name": "fake-admin", "user": user}],
            "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake-admin",
                                                      "namespace": namespace}}],
        }  # fmt: skip

    def write_kubeconfig(self, path: Path | str, **kwargs: Any) -> Path:
        """Write `kubeconfig(**kwargs)` as YAML (mode 0600); return the path."""
        path = Path(path)
        path.write_text(yaml.safe_dump(self.kubeconfig(**kwargs), sort_keys=False))
        path.chmod(0o600)
        return path

    # ------------------------------------------------------------------- knobs

    @property
    def ready(self) -> bool:
        """Whether /readyz answers 200 ok (False: 500 with "[-]etcd failed")."""
        return self.rest.ready

    @ready.setter
    def ready(self, value: bool) -> None:
        self.rest.ready = value

    @property
    def live(self) -> bool:
        """Whether /livez and /healthz answer 200 ok."""
        return self.rest.live

    @live.setter
    def live(self, value: bool) -> None:
        self.rest.live = value

    @property
    def deprecated_api_series(self) -> list[dict[str, str]] | None:
        """The ``apiserver_requested_deprecated_apis`` series /metrics shows (each a dict of
        group, version, resource, subresource, removed_release); None: /metrics is 404."""
        return self.rest.deprecated_api_series

    @deprecated_api_series.setter
    def deprecated_api_series(self, value: list[dict[str, str]] | None) -> None:
        self.rest.deprecated_api_series = value

    def deny(self, verb: str = "*", resource: str = "*", *, namespace: str | None = None,
             name: str | None = None, code: int = 403) -> Denial:  # fmt: skip
        """Answer matching requests with 403 Forbidden (or 401); returns the rule.

        A ``resource`` starting with "/" is a nonResourceURL ("/metrics"): RBAC's verb for
        it is the lower-cased HTTP method (get)."""
        if code not in (401, 403):
            raise ValueError("deny() injects 401 or 403")
        rule = Denial(verb, resource, namespace, name, code)
        self.denials.append(rule)
        return rule

    def allow_all(self) -> None:
        """Drop every deny rule."""
        self.denials.clear()

    def inject_error(self, status: int = 503, count: int = 1, *, verb: str | None = None,
                     resource: str | None = None, retry_after: int | None = None
                     ) -> Injection:  # fmt: skip
        """Answer the next `count` matching requests with `status` (429 TooManyRequests,
        500, 503 ServiceUnavailable, 504 Timeout...) and a real Status body; with
        `retry_after`, also a Retry-After header (client-go and retry loops honour it)."""
        injection = Injection(status, count, verb, resource, retry_after)
        with self._log_lock:
            self.injections.append(injection)
        return injection

    # ---------------------------------------------------------- cluster state

    def add_node(self, name: str, ready: bool | None = True, reason: str | None = None,
                 **kwargs: Any) -> dict[str, Any]:  # fmt: skip
        """Register a Node (see `Controllers.add_node` for the keyword arguments)."""
        return self.controllers.add_node(name, ready=ready, reason=reason, **kwargs)

    def set_node_ready(self, name: str, ready: bool | None, reason: str | None = None,
                       message: str | None = None) -> dict[str, Any]:  # fmt: skip
        """Set a Node's Ready condition: True, False, or None (Unknown)."""
        return self.controllers.set_node_ready(name, ready, reason=reason, message=message)

    def etcd_init(self, node: str) -> etcd.Member:
        """``kubeadm init`` on ``node`` (a Node already): a new etcd cluster of one member,
        and its etcd's mirror pod."""
        ip = etcd.node_ip(self.registry, node)
        member = self.etcd.init(node, ip)
        etcd.mirror_pod(self.registry, node, ip)
        return member

    def etcd_join(self, node: str) -> etcd.Member:
        """``kubeadm join --control-plane`` on ``node``: a member added to the etcd cluster."""
        ip = etcd.node_ip(self.registry, node)
        member = self.etcd.join(node, ip)
        etcd.mirror_pod(self.registry, node, ip)
        return member

    def set_log(self, namespace: str, pod_prefix: str, text: str) -> None:
        """Serve `text` as the log of pods whose name starts with `pod_prefix`."""
        self.controllers.kubelet.logs[(namespace, pod_prefix)] = text

    def get(self, api_version: str, kind: str, name: str, namespace: str = ""
            ) -> dict[str, Any] | None:  # fmt: skip
        """The stored object (a copy), or None."""
        return self.store.get(catalog.get(api_version, kind), namespace, name)

    def objects(self, api_version: str, kind: str, namespace: str | None = None
             ) -> list[dict[str, Any]]:  # fmt: skip
        return self.store.objects(catalog.get(api_version, kind), namespace)[0]

    def snapshot(self) -> bytes:
        """Every object, as an etcd snapshot of this cluster holds them (Store.dump)."""
        return self.store.dump()

    def restore(self, data: bytes) -> int:
        """Start from a `snapshot`'s objects (Store.load); how many."""
        return self.store.load(data, lambda o: catalog.get(str(o["apiVersion"]),
                                                           str(o["kind"])))

    def create(self, obj: Mapping[str, Any], manager: str = "test") -> dict[str, Any]:
        """Create an object directly (same path as a POST, without HTTP)."""
        rt = catalog.get(str(obj["apiVersion"]), str(obj["kind"]))
        namespace = str(obj.get("metadata", {}).get("namespace") or
                        ("default" if rt.namespaced else ""))  # fmt: skip
        return self.registry.create(rt, namespace, dict(obj), manager)

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 10.0,
                 interval: float = 0.02) -> Any:  # fmt: skip
        """Poll `predicate` until it returns something truthy; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"condition not met within {timeout}s")
            time.sleep(interval)

    def _take_injection(self, verb: str, resource: str) -> Response | None:
        with self._log_lock:
            for injection in self.injections:
                if injection.count > 0 and injection.matches(verb, resource):
                    injection.count -= 1
                    return Response(injection.status, injection.status_body(),
                                    headers=injection.headers())  # fmt: skip
        return None

    # ---------------------------------------------------------------- request log

    @property
    def request_log(self) -> list[RequestRecord]:
        with self._log_lock:
            return list(self._log)

    def requests(self, method: str | None = None, path: str | None = None, *,
                 verb: str | None = None, resource: str | None = None) -> list[RequestRecord]:
        """Logged requests filtered by method, path glob, Kubernetes verb and resource."""
        return [r for r in self.request_log
                if (method is None or r.method == method.upper())
                and (path is None or fnmatch.fnmatchcase(r.path, path))
                and (verb is None or r.verb == verb)
                and (resource is None or r.resource == resource)]  # fmt: skip

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    # ------------------------------------------------------------------- serving

    def authenticate(self, headers: Mapping[str, str], peer_user: str | None, path: str,
                     method: str = "GET") -> str:  # fmt: skip
        """The user name, or raise 401. Open (no tokens, no client CA): everyone is admin.
        Node bootstrap tokens and anonymous reads of cluster-info as on a kubeadm cluster
        (bootstrap.py)."""
        auth = headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if self.tokens is None and self.client_ca_pem is None:
            return peer_user or "kubernetes-admin"
        if peer_user:
            return peer_user
        if scheme.lower() == "bearer" and self.tokens is not None:
            for known, user in self.tokens.items():
                if hmac.compare_digest(token.strip(), known):
                    return user
        if scheme.lower() == "bearer":
            import datetime as dt

            found = bootstrap.authenticate_token(self, token, dt.datetime.now(dt.UTC))
            if found is not None:
                return found
        if not auth and (path in _OPEN_PATHS or bootstrap.anonymous_allowed(method, path)):
            return "system:anonymous"
        raise errors.unauthorized()

    def busy(self) -> bool:
        """True while a request other than a watch is being answered, and for QUIET s after.

        For `defer_controllers`: a real cluster's controllers run in other processes, on
        other cores, and do not slow the API server down; here they share one interpreter
        (one GIL) with the handlers, and a pass holds the store lock, so a pass landing in
        a client's burst of requests would stall it. Deferred, a pass starts in a quiet
        moment, takes the lock one object at a time and waits again whenever requests
        come in (for at most `Controllers.defer_limit` s a pass).
        """
        with self._busy_lock:
            return self._answering > 0 or time.monotonic() - self._answered_at < QUIET

    def respond(self, method: str, target: str, headers: Mapping[str, str], body: bytes,
                peer_user: str | None) -> tuple[Response, RequestRecord]:  # fmt: skip
        started, clock = time.time(), time.monotonic()
        parts = urlsplit(target)
        path = unquote(parts.path)
        query = dict(reversed(parse_qsl(parts.query, keep_blank_values=True)))
        found = parse_target(path)
        watching = bool(found and (found.watch or query.get("watch") in ("1", "true")))
        if not watching:
            with self._busy_lock:
                self._answering += 1
        try:
            return self._respond(Request(method, path, query, headers, body), found, watching,
                                 peer_user, started, clock)  # fmt: skip
        finally:
            if not watching:
                with self._busy_lock:
                    self._answering -= 1
                    self._answered_at = time.monotonic()

    def _respond(self, request: Request, found: Target | None, watching: bool,
                 peer_user: str | None, started: float, clock: float
                 ) -> tuple[Response, RequestRecord]:  # fmt: skip
        method, path, query, headers = (request.method, request.path, request.query,
                                        request.headers)
        verb = found.verb(method, watching) if found else ""
        resource = ""
        if found:
            resource = found.rt.plural + (f"/{found.subresource}" if found.subresource else "")
        user = ""
        if self.latency_ms > 0:
            time.sleep(self.latency_ms / 1000)
        try:
            user = self.authenticate(headers, peer_user, path.rstrip("/"), method)
            request.user = user
            for rule in self.denials:
                if not found and rule.resource == path.rstrip("/") and rule.verb in (
                        "*", method.lower()):  # a nonResourceURL rule, e.g. "/metrics"
                    if rule.code == 401:
                        raise errors.unauthorized()
                    raise ApiError(403, "Forbidden", f'forbidden: User "{user}" cannot '
                                   f'{method.lower()} path "{path}"', {})
                if found and rule.matches(verb, resource, found.namespace, found.name):
                    if rule.code == 401:
                        raise errors.unauthorized()
                    raise errors.forbidden(found.rt, verb, found.name, found.namespace, user,
                                           found.subresource)  # fmt: skip
            if found:
                _node_restriction(user, verb, found)
            injected = self._take_injection(verb, resource)
            response = injected or self.rest.handle(request, self._stopping)
        except ApiError as exc:
            response = Response(exc.code, exc.status())
        except Exception as exc:  # a bug in the fake: answer 500, keep serving
            response = Response(500, ApiError(500, "InternalError",
                                              f"fake kube-apiserver error: {exc!r}").status())
        record = RequestRecord(
            method, path, query, request.content_type, response.status, started,
            time.monotonic() - clock, verb, resource, found.namespace if found else "",
            found.name if found else "", headers.get("user-agent", ""), user, request.body,
            headers.get("accept", ""),
        )  # fmt: skip
        with self._log_lock:
            self._log.append(record)
        return response, record


    # `list` is kept for callers of the first version; defined last so that the class
    # body's `list[...]` annotations still mean the builtin.
    list = objects


def _node_restriction(user: str, verb: str, found: Target) -> None:
    """A kubelet (``system:node:<name>``) may change its own Node only, as the NodeRestriction
    admission plugin allows (kubernetes/kubernetes plugin/pkg/admission/noderestriction/
    admission.go at commit 01467da76f71, ``admitNode``: "node %q is not allowed to modify
    node %q"; annotations are not restricted there, labels and taints are, which no test
    here changes as a kubelet)."""
    if not user.startswith("system:node:") or found.rt.kind != "Node" or verb not in (
            "update", "patch", "delete"):
        return
    node = user[len("system:node:"):]
    if found.name != node:
        raise ApiError(403, "Forbidden", f'nodes "{found.name}" is forbidden: node "{node}" '
                       f'is not allowed to modify node "{found.name}"',
                       {"name": found.name, "kind": "nodes"})


class _Server(ThreadingHTTPServer):
    """Threaded server; TLS handshakes happen on the connection's own thread so a slow
    client cannot stall accept(); open connections are tracked so stop() can cut them."""

    daemon_threads = True
    # listen()'s backlog. socketserver's default is 5: hundreds of clients connecting at
    # once (tests/support/joins.py) would see SYNs dropped and retried after 1, 3, 7 s...
    # kube-apiserver listens through Go's net package, which asks for the kernel's
    # net.core.somaxconn (src/net/sock_linux.go, maxListenerBacklog; 4096 since Linux 5.4).
    request_queue_size = 4096
    fake: FakeKubeAPI

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler],
                 context: ssl.SSLContext | None) -> None:  # fmt: skip
        self.context = context
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def finish_request(self, request: Any, client_address: Any) -> None:
        conn = request
        try:
            if self.context is not None:
                request.settimeout(10)
                conn = self.context.wrap_socket(request, server_side=True)
                conn.settimeout(None)
            with self._connections_lock:
                self._connections.add(conn)
                self.fake.connections += 1
            _Handler(conn, client_address, self)
        except (ssl.SSLError, OSError):
            pass  # handshake failures and clients going away are not server errors
        finally:
            with self._connections_lock:
                self._connections.discard(conn)
            if conn is not request:
                with contextlib.suppress(OSError):
                    conn.close()

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK add ~40 ms to every keep-alive request.
    disable_nagle_algorithm = True
    server: _Server

    def _peer_user(self) -> str | None:
        getpeercert = getattr(self.connection, "getpeercert", None)
        cert = getpeercert() if getpeercert else None
        if not cert:
            return None
        for rdn in cert.get("subject", ()):
            for key, value in rdn:
                if key == "commonName":
                    return str(value)
        return None

    def _read_chunked(self) -> bytes:
        """A request body in HTTP/1.1 chunked transfer coding (RFC 9112, 7.1), which Go's
        server reads like any other: ``kubectl replace --raw -f FILE`` sends its body so."""
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline().strip():  # trailer fields, then the empty line
                    pass
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline()  # the CRLF after each chunk

    def _serve(self) -> None:
        target = urlsplit(self.path)
        forward = portforward.PATH.match(unquote(target.path))
        if forward and self.command == "GET":
            self._port_forward(forward.group(1), forward.group(2),
                               dict(parse_qsl(target.query)))
            return
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            body = self._read_chunked()
        else:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        response, _ = self.server.fake.respond(self.command, self.path, headers, body,
                                               self._peer_user())  # fmt: skip
        if response.stream is not None:
            self._stream(response)
            return
        payload = b"" if response.body is None else encode(response.body)
        lines = [f"{self.protocol_version} {response.status} "
                 f"{HTTPStatus(response.status).phrase}",
                 f"Date: {self.date_time_string()}",
                 f"Content-Type: {response.content_type}",
                 f"Content-Length: {len(payload)}",
                 f"Audit-Id: {time.time_ns():x}",
                 *(f"{name}: {value}" for name, value in response.headers.items()),
                 *(f"Warning: 299 - {json.dumps(warning)}" for warning in response.warnings),
                 "", ""]  # fmt: skip
        # One write for head and body: each write gives up the GIL and waits to get it back;
        # under 16 clients py-spy found about a third of the handlers' samples in the two
        # writes this used to make.
        self.wfile.write("\r\n".join(lines).encode("latin-1") + payload)

    def _port_forward(self, namespace: str, pod: str, query: dict[str, str]) -> None:
        """A WebSocket port-forward (portforward.py); the connection is not reused."""
        fake = self.server.fake
        self.close_connection = True
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            user = fake.authenticate(headers, self._peer_user(), self.path)
        except ApiError:
            self.wfile.write(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n")
            return
        exists = fake.get("v1", "Pod", pod, namespace) is not None
        portforward.serve(self, namespace, pod, query, user, exists, fake.pod_ports,
                          fake.port_forwards.append)

    def _stream(self, response: Response) -> None:
        """Chunked transfer of newline-terminated JSON events (a watch)."""
        assert response.stream is not None
        self.send_response(200, "OK")
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in response.stream:
                if event is None:
                    if self._client_gone():
                        break
                    continue
                line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
            self.close_connection = True
        finally:
            close = getattr(response.stream, "close", None)
            if close:
                close()

    def _client_gone(self) -> bool:
        """True once a plain-HTTP watch client has closed its end (TLS: only noticed on
        the next write, or at timeoutSeconds)."""
        conn = self.connection
        if isinstance(conn, ssl.SSLSocket):
            return False
        try:
            readable, _, _ = select.select([conn], [], [], 0)
            return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: requests are kept as data (`FakeKubeAPI.request_log`)."""
