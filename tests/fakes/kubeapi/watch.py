"""WATCH: a stream of `{"type": ..., "object": ...}` events for one type and filter.

Start semantics follow the apiserver:

* no resourceVersion, or "0": synthetic ADDED events for every matching object, then
  changes (what `kubernetes.watch.Watch().stream(...)` relies on);
* resourceVersion=N: the changes after N (replayed from the store's history), or a single
  ERROR event carrying a 410 Expired Status if N is older than the history;
* sendInitialEvents=true (client-go's watch-list): the ADDED events, then a BOOKMARK
  annotated `k8s.io/initial-events-end: "true"`.

An object that starts or stops matching a label/field selector is reported as ADDED or
DELETED, as the real watch cache does. The stream ends after timeoutSeconds, or when the
server stops.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from typing import Any

from . import errors
from .catalog import ResourceType
from .meta import namespace_of
from .selectors import Selector
from .store import Event, Store


def _translate(event: Event, matches: Selector) -> str | None:
    now = matches(event.obj)
    before = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        return "DELETED" if before else None
    if event.type == "ADDED":
        return "ADDED" if now else None
    if now and before:
        return "MODIFIED"
    return "ADDED" if now else "DELETED" if before else None


def stream(
    store: Store,
    rt: ResourceType,
    namespace: str | None,
    matches: Selector,
    *,
    resource_version: str = "",
    send_initial_events: bool = False,
    allow_bookmarks: bool = False,
    timeout: float | None = None,
    stopping: threading.Event | None = None,
) -> Iterator[dict[str, Any] | None]:
    """Yield watch events (and None when idle) until the timeout, the server stopping, or
    the consumer leaving."""
    inbox: queue.Queue[Event] = queue.Queue()

    def relevant(event: Event) -> bool:
        return event.rt == rt and (namespace is None or namespace_of(event.obj) == namespace)

    def listener(event: Event) -> None:
        if relevant(event):
            inbox.put(event)

    initial = send_initial_events or resource_version in ("", "0")
    with store.lock:
        subscribed = store.subscribe(listener, None if initial else int(resource_version))
        existing = store.objects(rt, namespace)[0] if initial and subscribed else []
    if subscribed is None:
        status = errors.gone(f"too old resource version: {resource_version} "
                             f"({store.resource_version})").status()  # fmt: skip
        yield {"type": "ERROR", "object": status}
        return
    replay, current = subscribed
    try:
        for obj in existing:
            if matches(obj):
                yield {"type": "ADDED", "object": obj}
        if send_initial_events and allow_bookmarks:
            yield {"type": "BOOKMARK", "object": {
                "kind": rt.kind, "apiVersion": rt.group_version,
                "metadata": {"resourceVersion": str(current),
                             "annotations": {"k8s.io/initial-events-end": "true"}},
            }}  # fmt: skip
        for event in replay:
            kind = _translate(event, matches) if relevant(event) else None
            if kind is not None:
                yield {"type": kind, "object": event.obj}
        deadline = None if timeout is None else time.monotonic() + timeout
        while not (stopping is not None and stopping.is_set()):
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return
            try:
                event = inbox.get(timeout=left)
            except queue.Empty:
                yield None  # idle tick: lets the server notice a client that went away
                continue
            kind = _translate(event, matches)
            if kind is not None:
                yield {"type": kind, "object": event.obj}
    finally:
        store.unsubscribe(listener)
