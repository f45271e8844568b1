"""The simulated DigitalOcean account: one JSON file, guarded by an exclusive file lock.

Terraform starts a fresh provider process for every command and applies resources on
parallel threads; a fake DigitalOcean HTTP API may read and change the same account from
yet another process. All of them go through `Cloud.transaction()`, which holds an
`fcntl.flock` on `<state>.lock` while it reads, changes and atomically rewrites the file.

File format (version 1)::

    {
      "format": 1,
      "counters": {"droplet": 400000003, "ip": 7, ...},   # id/address allocators
      "resources": {                                     # table per resource type
        "digitalocean_droplet": {"<id>": {<attributes as in the provider schema>}},
        "digitalocean_vpc": {...}, "digitalocean_project": {...}, ...
      },
      "events": [{"op": "create", "type": "...", "id": "...", "name": "...", "at": "..."}]
    }

Optional keys the provider ignores, owned by the fake HTTP API (tests/fakes/doapi): `account`
(profile and limits) and `catalog` (regions and sizes); events it causes carry `"via": "api"`.

Records use the provider schema's attribute names (the Terraform state's view of the
object), so a fake HTTP API maps them to API JSON and back in one place. Default VPCs and
the default project live in the same tables, marked `default` / `is_default`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import fcntl
import json
import os
import tempfile
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE_ENV = "DO_SIM_STATE"
PROJECTS_ENV = "DO_SIM_PROJECTS"
FORMAT = 1

Record = dict[str, Any]


def default_state_path() -> Path:
    """`DO_SIM_STATE`, else a file under $HOME (the wrapper makes HOME writable)."""
    explicit = os.environ.get(STATE_ENV)
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("HOME") or tempfile.gettempdir()) / ".do-sim" / "state.json"


def now_rfc3339() -> str:
    """Timestamps as the DigitalOcean API writes them, e.g. 2024-05-01T10:00:00Z."""
    return _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_uuid() -> str:
    """UUIDs as used for VPC, firewall, load balancer and project ids."""
    return str(uuid.uuid4())


class Account:
    """The decoded state file, handed out inside a transaction."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        data.setdefault("format", FORMAT)
        data.setdefault("counters", {})
        data.setdefault("resources", {})
        data.setdefault("events", [])

    def table(self, type_name: str) -> dict[str, Record]:
        """All records of one resource type, keyed by id."""
        tables: dict[str, dict[str, Record]] = self.data["resources"]
        return tables.setdefault(type_name, {})

    def get(self, type_name: str, rid: str) -> Record | None:
        """One record, or None if it does not exist (any more)."""
        return self.table(type_name).get(str(rid))

    def put(self, type_name: str, record: Record) -> None:
        """Insert or replace a record under its `id`."""
        self.table(type_name)[str(record["id"])] = record

    def delete(self, type_name: str, rid: str) -> Record | None:
        """Remove a record, returning it."""
        return self.table(type_name).pop(str(rid), None)

    def next_counter(self, name: str, start: int) -> int:
        """Monotonic counter (droplet ids, address pools): start, start+1, ..."""
        counters: dict[str, int] = self.data["counters"]
        value = counters.get(name, start)
        counters[name] = value + 1
        return value

    def log(self, op: str, type_name: str, rid: str, name: str | None = None) -> None:
        """Append to the audit log tests use to check what Terraform actually did."""
        self.data["events"].append(
            {"op": op, "type": type_name, "id": str(rid), "name": name, "at": now_rfc3339()}
        )

    def forget_urn(self, urn: Any) -> None:
        """A deleted resource leaves whatever project held it."""
        if not urn:
            return
        for project in self.table("digitalocean_project").values():
            project["resources"] = [r for r in project.get("resources") or [] if r != urn]

    # ---- well-known singletons the real account always has

    def default_project(self) -> Record:
        """The account's default project, created on first use like a new DO account."""
        for rec in self.table("digitalocean_project").values():
            if rec.get("is_default"):
                return rec
        return self.add_project("first-project", is_default=True)

    def add_project(self, name: str, is_default: bool = False) -> Record:
        """Create a project record (used for the default one and DO_SIM_PROJECTS seeds)."""
        ts = now_rfc3339()
        rec: Record = {
            "id": new_uuid(),
            "name": name,
            "description": "",
            "purpose": "Web Application",
            "environment": "Development",
            "is_default": is_default,
            "owner_id": 1234567,
            "owner_uuid": "00000000-0000-4000-8000-000000000001",
            "created_at": ts,
            "updated_at": ts,
            "resources": [],
        }
        self.put("digitalocean_project", rec)
        return rec

    def seed_projects(self, names: list[str]) -> None:
        """Make sure projects with these names exist (`DO_SIM_PROJECTS=a,b`)."""
        existing = {r.get("name") for r in self.table("digitalocean_project").values()}
        for name in names:
            if name and name not in existing:
                self.add_project(name)


# The decoded account of the last load or save in this process, by the file's identity.
# Every writer replaces the file (`_save`: write a new file, then rename it over the old),
# so a changed account is a new inode, allocated while the old file still existed.
_Signature = tuple[int, int, int, int, int]


@dataclasses.dataclass
class _Loaded:
    signature: _Signature | None  # None: no file yet
    # Decoded for readers only, who never change it; a transaction that takes it is its
    # last user. What a transaction saved is kept as text: its records may have escaped
    # to callers, who could change them after the transaction.
    data: dict[str, Any] | None
    text: str  # json.dumps(data, sort_keys=True), or "" until a transaction needs it


_cache: dict[Path, _Loaded] = {}
_cache_lock = threading.Lock()


class Cloud:
    """Handle on the state file; cheap to create, every access is a locked transaction."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_state_path()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Account]:
        """Lock, load, yield the account for reading/changing, then save atomically.

        flock locks belong to the open file description, so this also serialises the
        provider's own gRPC worker threads, each of which opens the lock file anew.
        """
        with self._locked(fcntl.LOCK_EX):
            loaded = self._take()  # this transaction's own: it may change it in place
            account = Account(loaded.data if loaded and loaded.data is not None
                              else self._load())
            before = loaded.text if loaded else json.dumps(account.data, sort_keys=True)
            account.default_project()
            seeds = os.environ.get(PROJECTS_ENV, "")
            account.seed_projects([s.strip() for s in seeds.split(",") if s.strip()])
            yield account
            after = json.dumps(account.data, sort_keys=True)
            if after != before:
                self._save(account.data)
            self._keep(after)

    @contextlib.contextmanager
    def reading(self) -> Iterator[Account]:
        """The account as it is now, for a look that changes nothing (the provider's refresh).

        A refresh reads one record of an account that, at a few hundred droplets, is
        megabytes of JSON (their user-data); loading and comparing all of it on every read
        made a no-op `terraform plan` of 500 droplets take most of a minute in the fake
        alone, none of which the real API costs. Readers share the account decoded at the
        last load or save as long as the file is the same one; the caller must not change
        it (copy what it returns: `conform` does). Readers share the lock: they exclude
        writers, not one another.
        """
        with self._locked(fcntl.LOCK_SH):
            signature = self._signature()
            with _cache_lock:
                loaded = _cache.get(self.path)
            if loaded is None or loaded.signature != signature:
                loaded = _Loaded(signature, None, "")
            data = loaded.data
            if data is None:
                data = Account(json.loads(loaded.text) if loaded.text else self._load()).data
                with _cache_lock:
                    _cache[self.path] = _Loaded(signature, data, loaded.text)
            yield Account(data)

    def snapshot(self) -> dict[str, Any]:
        """A copy of the whole account (for tests and the fake API's read paths)."""
        with self.transaction() as account:
            return json.loads(json.dumps(account.data))  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _locked(self, kind: int) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as lock:
            fcntl.flock(lock, kind)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _signature(self) -> _Signature | None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return None
        return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)

    def _take(self) -> _Loaded | None:
        """The cached account if it is the file's current one, removed from the cache (the
        transaction may change it; an exception inside leaves it half-changed)."""
        signature = self._signature()
        with _cache_lock:
            loaded = _cache.pop(self.path, None)
        if loaded is None or signature is None or loaded.signature != signature:
            return None
        if loaded.data is None:  # a saved text: decoded afresh, for this transaction only
            loaded.data = json.loads(loaded.text)
        if not loaded.text:  # a reader's entry: never compared, so never serialised
            loaded.text = json.dumps(loaded.data, sort_keys=True)
        return loaded

    def _keep(self, text: str) -> None:
        signature = self._signature()
        if signature is not None:
            with _cache_lock:
                _cache[self.path] = _Loaded(signature, None, text)

    def _load(self) -> dict[str, Any]:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        return json.loads(text) if text.strip() else {}

    def _save(self, data: dict[str, Any]) -> None:
        # Write-then-rename so a reader without the lock never sees half a file.
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
        os.replace(tmp, self.path)
