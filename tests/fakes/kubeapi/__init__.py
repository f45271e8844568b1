"""A fake Kubernetes API server over real HTTP(S), for kubectl and the Python client.

    from tests.fakes.kubeapi import FakeKubeAPI

    with FakeKubeAPI() as kube:            # or FakeKubeAPI(tls=True) -> kube.ca_pem
        kube.add_node("worker-1")
        kube.write_kubeconfig(tmp_path / "kubeconfig")
        ...                                # kubectl --kubeconfig ..., kubernetes.config...
        assert kube.requests("PATCH", verb="patch", resource="deployments")

Modules: server.py (HTTP/TLS transport, auth, latency, request log, `FakeKubeAPI`),
faults.py (deny rules, injected 429/5xx), rest.py (routing, verbs, list/watch/log),
registry.py (write semantics, defaulting, generation, GC), apply.py + fieldpaths.py
(server-side apply, managedFields), patch.py (merge/strategic/JSON patch), store.py
(objects, resourceVersions, history), watch.py (event streams), discovery.py (discovery
+ minimal OpenAPI v3), tables.py (`kubectl get` columns), controllers.py + workloads.py
+ kubelet.py + events.py + queues.py + cloudnodes.py (the simulated cluster), defaults.py
(defaulting, validation), schemas.py (unknown fields, from the kubernetes-validate JSON
schemas), selectors.py, catalog.py (served types; a few only by the minors that served them, per
`git_version`: flowcontrol.apiserver.k8s.io/v1beta3 through 1.31), tls.py (certificates), errors.py
(Status bodies), meta.py (metadata helpers).

Known simplifications: deletes are immediate (no graceful periods or Terminating
namespaces), except that an object with metadata.finalizers keeps a deletionTimestamp
until an update empties them; no admission beyond a few validation rules; the OpenAPI served
has no schemas (no `kubectl explain`); SSA treats every non-keyed list as atomic and
knows list keys from a table, not from schemas; no Job, HPA or PDB
controllers (those objects are stored as sent); watch BOOKMARKs only for
sendInitialEvents; JSON only: protobuf request bodies (`kubectl create deployment` and
other typed generators) get 415.
"""

from __future__ import annotations

from .faults import Denial, Injection
from .server import DEFAULT_NAMESPACES, FakeKubeAPI, RequestRecord
from .tls import TLSMaterial, issue_client_cert, make_tls

__all__ = [
    "DEFAULT_NAMESPACES",
    "Denial",
    "FakeKubeAPI",
    "Injection",
    "RequestRecord",
    "TLSMaterial",
    "issue_client_cert",
    "make_tls",
]
