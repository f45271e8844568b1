"""Waiting for the cluster: the API answers ready at its endpoint, then every node is Ready.

On a deadline, the error names what is missing: nodes that never registered, and for those
that did, their Ready condition's reason and message as the kubelet reported them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from provisioner.errors import ProvisionError
from provisioner.kube import AccessDenied, Kube, KubeError

Report = Callable[[str], None]


class NotReady(ProvisionError):
    """The cluster did not become ready in time; the message says what is missing."""


@dataclass(frozen=True)
class NodeState:
    """One node as the API reports it (or its absence)."""

    name: str
    registered: bool
    ready: bool
    reason: str = ""
    message: str = ""

    def describe(self) -> str:
        """``prod-cp-2 (NotReady: KubeletNotReady: container runtime network not ready)``."""
        if not self.registered:
            return f"{self.name} (not registered: its kubelet never joined)"
        if self.ready:
            return f"{self.name} (Ready)"
        detail = ": ".join(p for p in (self.reason, self.message) if p)
        return f"{self.name} (NotReady{': ' + detail if detail else ''})"


def api_ready(api: Any) -> tuple[bool, str]:
    """GET /readyz on the API server; (ready, what it said)."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        method, url, headers, body, post = api.param_serialize(
            "GET", "/readyz", auth_settings=["BearerToken"])
        response = api.call_api(method, url, headers, body, post, _request_timeout=5)
        response.read()
        text = (response.data or b"").decode(errors="replace").strip()
        return response.status == 200, text or f"HTTP {response.status}"
    except ApiException as e:
        return False, f"HTTP {e.status}: {(e.body or '').strip()[:200]}"
    except (HTTPError, OSError) as e:
        return False, f"{type(e).__name__}: {e}"


def listed_nodes(kube: Kube) -> list[NodeState]:
    """Every node the API lists, from one LIST (`provision status` shows these too)."""
    states = []
    for node in kube.request("GET", "/api/v1/nodes", verb="list nodes").get("items") or []:
        name = str((node.get("metadata") or {}).get("name") or "")
        conditions = (node.get("status") or {}).get("conditions") or []
        ready: dict[str, Any] = next((c for c in conditions if c.get("type") == "Ready"), {})
        states.append(NodeState(name, True, ready.get("status") == "True",
                                ready.get("reason") or "", ready.get("message") or ""))
    return states


def node_states(api: Any, expected: Iterable[str]) -> list[NodeState]:
    """The state of every expected node (sorted by name), from one LIST."""
    seen = {state.name: state for state in listed_nodes(Kube(api, timeout=10, attempts=3))}
    return [seen.get(name, NodeState(name, False, False)) for name in sorted(expected)]


def wait_for_api(api: Any, endpoint: str, deadline: float, report: Report,
                 interval: float = 2.0, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
    """Until /readyz says ok at the endpoint, or the deadline."""
    last = ""
    while True:
        ok, said = api_ready(api)
        if ok:
            report(f"API server at https://{endpoint}:6443 is ready")
            return
        if said != last:
            report(f"waiting for the API server at https://{endpoint}:6443: {said}")
            last = said
        if clock() >= deadline:
            raise NotReady(f"the API server at https://{endpoint}:6443 did not become ready: "
                           f"{said}. Look at the first control-plane node: "
                           "`ssh root@<its IP> journalctl -u cloud-final` shows kubeadm's output")
        sleep(interval)


def wait_for_nodes(api: Any, expected: Iterable[str], deadline: float, report: Report,
                   interval: float = 3.0, clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> list[NodeState]:
    """Until every expected node is Ready; progress as the count changes."""
    names = sorted(expected)
    last = -1
    while True:
        try:
            states = node_states(api, names)
        except AccessDenied:
            raise
        except KubeError as e:  # the API flapping (a failover, a restart) is not an answer
            if clock() >= deadline:
                raise NotReady(f"the nodes could not be listed: {e}") from e
            report(f"listing the nodes failed, retrying: {e}")
            sleep(interval)
            continue
        ready = [s for s in states if s.ready]
        if len(ready) != last:
            waiting = [s.describe() for s in states if not s.ready]
            report(f"{len(ready)}/{len(names)} nodes Ready"
                   + (f"; waiting for {', '.join(waiting[:5])}" if waiting else "")
                   + (f" and {len(waiting) - 5} more" if len(waiting) > 5 else ""))
            last = len(ready)
        if len(ready) == len(names):
            return states
        if clock() >= deadline:
            missing = "\n".join(f"  {s.describe()}" for s in states if not s.ready)
            raise NotReady(f"{len(names) - len(ready)} of {len(names)} nodes are not Ready:\n"
                           f"{missing}")
        sleep(interval)
