"""The object store: one global resourceVersion counter, an event history, watchers.

Like etcd behind the apiserver, every successful write gets the next resourceVersion (a
decimal string) and produces one watch event. The history keeps the latest events so a
watch can resume from a resourceVersion a LIST returned; older ones answer 410 Expired,
which informers and `kubernetes.watch.Watch` treat as "relist".

Objects are stored as plain JSON dicts; every read hands out a deep copy, so neither a
handler nor a test can change stored state by mutating what it got. The one exception is
the simulated controllers, which read stored objects in place (`peek`, `owned(copy=False)`,
`put(copy=False)`) and copy before they change anything: copies were most of their cost.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .catalog import ResourceType
from .meta import clone, metadata, name_of, namespace_of, owner_uids, timestamp

SNAPSHOT_FORMAT = "fake-etcd-snapshot/1"
Key = tuple[str, str, str]  # group_resource, namespace ('' if cluster-scoped), name


@dataclass(frozen=True)
class Event:
    """A committed change; `old` is the previous state (None for ADDED)."""

    rv: int
    type: str  # ADDED, MODIFIED, DELETED
    rt: ResourceType
    obj: dict[str, Any]
    old: dict[str, Any] | None


class Store:
    """Thread-safe storage. `lock` is re-entrant and public: the registry and controllers
    hold it across read-modify-write sequences so they never race each other."""

    def __init__(self, history: int = 10_000) -> None:
        self.lock = threading.RLock()
        self._objects: dict[Key, dict[str, Any]] = {}
        # group_resource -> the keys of its objects: a LIST reads one kind, not the store.
        self._kinds: dict[str, dict[Key, None]] = {}
        # owner uid -> the keys of the objects it owns: controllers look children up by owner.
        self._owned: dict[str, dict[Key, None]] = {}
        self._rv = 0
        self._history: deque[Event] = deque(maxlen=history)
        self._listeners: list[Callable[[Event], None]] = []

    @staticmethod
    def key(rt: ResourceType, namespace: str, name: str) -> Key:
        return (rt.group_resource, namespace if rt.namespaced else "", name)

    @property
    def resource_version(self) -> int:
        with self.lock:
            return self._rv

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self._objects.get(self.key(rt, namespace, name))
            return clone(obj) if obj is not None else None

    def peek(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself, not a copy: for a caller holding the lock that only
        reads it (a store listener, the simulated controllers, which copy an object
        before they change it)."""
        with self.lock:
            return self._objects.get(self.key(rt, namespace, name))

    def keys(self, rt: ResourceType) -> list[tuple[str, str]]:
        """(namespace, name) of every object of a type, without copying any."""
        with self.lock:
            return [(key[1], key[2]) for key in self._kinds.get(rt.group_resource, ())]

    def objects(
        self, rt: ResourceType, namespace: str | None = None,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """All objects of a type (in one namespace unless None, and for which ``where`` is
        true if given), sorted, and the current rv. ``where`` sees the stored object (it
        must not change it): filtering before copying keeps lookups by owner linear."""
        with self.lock:
            candidates = [self._objects[key] for key in self._kinds.get(rt.group_resource, ())
                          if namespace is None or key[1] == namespace]
            items = [clone(obj) for obj in candidates if where is None or where(obj)]
            return sorted(items, key=lambda o: (namespace_of(o), name_of(o))), self._rv

    def owned(self, rt: ResourceType, namespace: str, uid: str, *, copy: bool = True
              ) -> list[dict[str, Any]]:  # fmt: skip
        """The objects of a type in a namespace that ``uid`` owns, sorted by name; with
        ``copy=False`` the stored objects themselves (read-only, as `peek`)."""
        with self.lock:
            items = [self._objects[key] for key in self._owned.get(uid, ())
                     if key[0] == rt.group_resource and key[1] == namespace]
            return sorted([clone(i) for i in items] if copy else items, key=name_of)

    def dependents(self, uid: str) -> list[dict[str, Any]]:
        """Every object ``uid`` owns, of any type (for the garbage collector)."""
        with self.lock:
            return [clone(self._objects[key]) for key in self._owned.get(uid, ())]

    def _index_owners(self, key: Key, old: dict[str, Any] | None,
                      new: dict[str, Any] | None) -> None:
        for uid in owner_uids(old or {}) - owner_uids(new or {}):
            children = self._owned.get(uid, {})
            children.pop(key, None)
            if not children:
                self._owned.pop(uid, None)
        for uid in owner_uids(new or {}):
            self._owned.setdefault(uid, {})[key] = None

    def all_objects(self) -> Iterator[tuple[Key, dict[str, Any]]]:
        """A snapshot of everything (for garbage collection and namespace deletion)."""
        with self.lock:
            return iter([(k, clone(v)) for k, v in self._objects.items()])

    def next_rv(self) -> int:
        with self.lock:
            return self._rv + 1

    def put(self, rt: ResourceType, obj: dict[str, Any], *, owned: bool = False,
            copy: bool = True) -> dict[str, Any]:  # fmt: skip
        """Create or replace, stamping resourceVersion (and uid/creationTimestamp if new).

        ``owned``: the caller hands ``obj`` over (a copy nobody else holds): stored as is.
        ``copy=False``: return the stored object itself (read-only, as `peek`).
        """
        with self.lock:
            key = self.key(rt, namespace_of(obj), name_of(obj))
            old = self._objects.get(key)
            self._rv += 1
            meta = obj.setdefault("metadata", {})
            meta["resourceVersion"] = str(self._rv)
            if old is None:
                meta.setdefault("uid", str(uuid.uuid4()))
                meta.setdefault("creationTimestamp", timestamp())
            stored = obj if owned else clone(obj)
            self._objects[key] = stored
            self._kinds.setdefault(key[0], {})[key] = None
            self._index_owners(key, old, stored)
            self._emit(Event(self._rv, "MODIFIED" if old else "ADDED", rt, stored, old))
            return clone(stored) if copy else stored

    def remove(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any] | None:
        """Delete; the DELETED event carries the last state with a new resourceVersion."""
        with self.lock:
            key = self.key(rt, namespace, name)
            old = self._objects.pop(key, None)
            if old is None:
                return None
            self._kinds[key[0]].pop(key, None)
            self._index_owners(key, old, None)
            self._rv += 1
            gone = clone(old)
            metadata(gone)["resourceVersion"] = str(self._rv)
            self._emit(Event(self._rv, "DELETED", rt, gone, old))
            return clone(gone)

    # ---------------------------------------------------------------- snapshots

    def dump(self) -> bytes:
        """What an etcd snapshot of this store holds: every object, keyed as stored (JSON,
        one document). The real snapshot is etcd's bbolt file of the same key-value pairs
        (etcd v3.6 ``etcdctl snapshot save``); nothing reads this one but `load`."""
        with self.lock:
            return json.dumps({"format": SNAPSHOT_FORMAT, "revision": self._rv,
                               "objects": [self._objects[k] for k in sorted(self._objects)]},
                              sort_keys=True).encode()

    def load(self, data: bytes, kinds: Callable[[dict[str, Any]], ResourceType]) -> int:
        """Replace every object with a `dump`'s (``kinds`` names each object's type), as an
        API server started on a restored etcd data dir sees it: the objects and their uids
        as they were, a revision past the snapshot's. Each is announced to the watchers as
        an informer's first list would. Returns how many objects were loaded."""
        doc = json.loads(data)
        if doc.get("format") != SNAPSHOT_FORMAT:
            raise ValueError(f"not a snapshot of this store: {doc.get('format')!r}")
        with self.lock:
            wanted = {(kinds(o).group_resource, namespace_of(o) if kinds(o).namespaced else "",
                       name_of(o)) for o in doc["objects"]}
            for key, obj in list(self._objects.items()):
                if key not in wanted:
                    self.remove(kinds(obj), key[1], key[2])
            self._rv = max(self._rv, int(doc["revision"]))
            for obj in doc["objects"]:
                self.put(kinds(obj), clone(obj), owned=True, copy=False)
            return len(doc["objects"])

    # ----------------------------------------------------------------- watching

    def _emit(self, event: Event) -> None:
        self._history.append(event)
        for listener in list(self._listeners):
            listener(event)

    def subscribe(
        self, listener: Callable[[Event], None], since: int | None
    ) -> tuple[list[Event], int] | None:
        """Register `listener` and return the events after `since` (None: no replay) and
        the current rv, atomically; None if `since` is older than the history (410)."""
        with self.lock:
            replay: list[Event] = []
            if since is not None and since < self._rv:
                oldest = self._history[0].rv if self._history else self._rv + 1
                if since + 1 < oldest:
                    return None
                replay = [e for e in self._history if e.rv > since]
            self._listeners.append(listener)
            return replay, self._rv

    def unsubscribe(self, listener: Callable[[Event], None]) -> None:
        with self.lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
