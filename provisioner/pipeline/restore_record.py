"""The work folder's record of a `provision restore` under way, and of the ones done.

``restore.json`` (0600) exists from the moment a restore stages its copy until it has
finished: which snapshot, the staged object's key, when the apply started and whether the
old cluster was carrying the restore's marker (restore_marker.py). A run that finds it
continues that restore instead of starting another: it never replaces the control plane of
a cluster that already came back from the snapshot. ``restores.json`` keeps the finished
ones (newest last): who restored which snapshot when, and whether the change windows were
closed then (a restore is a recovery and is not held by them: README "Restoring from a
snapshot").
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from provisioner.bootstrap.private_files import write_private
from provisioner.render.writer import read_list, read_regular

RECORD = "restore.json"
HISTORY = "restores.json"
KEPT = 50


@dataclass(frozen=True)
class InProgress:
    """A restore that started and has not finished."""

    restore_id: str  # this restore's own ID (the marker's value)
    snapshot: str  # the snapshot ID
    staged_key: str  # the staged copy's object key ("" once deleted)
    started_at: str  # RFC 3339, provision's clock
    stage: str  # "staged" (copy uploaded), "applying" (Terraform started), "applied"
    marked: bool  # whether the old cluster answered and got the marker before the apply


def read(work_root: Path) -> InProgress | None:
    """The restore under way, or None (an unreadable record is none: said by the caller)."""
    try:
        data = json.loads(read_regular(work_root / RECORD).decode("utf-8"))
        return InProgress(**{k: data[k] for k in InProgress.__dataclass_fields__})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write(work_root: Path, record: InProgress) -> None:
    write_private(work_root / RECORD, json.dumps(asdict(record), indent=1).encode() + b"\n")


def finish(work_root: Path, record: InProgress, detail: dict[str, Any]) -> None:
    """Move the record into the history; the restore is no longer under way."""
    path = work_root / HISTORY
    previous = read_list(path)
    entry = {"snapshot": record.snapshot, "restore_id": record.restore_id,
             "started_at": record.started_at, **detail}
    write_private(path, json.dumps([*previous, entry][-KEPT:], indent=1).encode() + b"\n")
    (work_root / RECORD).unlink(missing_ok=True)
