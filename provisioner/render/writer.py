"""Writes rendered files into a folder: atomically, with explicit modes, pruning stale ones.

The folder is the hand-off to later stages and to the next run, so it must hold exactly what
the current config renders: a file provision wrote last time and no longer renders (a removed
app's manifest, a removed pool's user-data) is deleted. Files provision never wrote are never
touched, whatever folder the user points ``--out`` at.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from provisioner.errors import WorkdirError

INDEX = ".provision-files"


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text atomically; the file never exists with looser permissions than ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WorkdirError(f"cannot write {path}: {e.strerror}") from e


def write_tree(root: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (relative path -> text) under ``root`` and prune what it replaced."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"cannot create {root}: {e.strerror}") from e
    index = root / INDEX
    previous = set(index.read_text().split("\n")) - {""} if index.exists() else set()
    written = []
    for relative in sorted(files):
        target = root / relative
        if not target.resolve().is_relative_to(root.resolve()):
            raise WorkdirError(f"refusing to write outside {root}: {relative}")
        if target.exists() and target.read_text(encoding="utf-8", errors="replace") == files[
                relative]:
            written.append(target)  # unchanged: keep its mtime, so tools see no change
            continue
        write_file(target, files[relative])
        written.append(target)
    for stale in sorted(previous - set(files)):
        target = root / stale
        # The index is a file on disk: never let it point provision outside the folder.
        if not os.path.isabs(stale) and target.resolve().is_relative_to(root.resolve()):
            target.unlink(missing_ok=True)
    write_file(index, "".join(f"{name}\n" for name in sorted(files)))
    return written
