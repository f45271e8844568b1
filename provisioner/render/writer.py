"""Writes rendered files into a folder: atomically, with explicit modes, pruning stale ones.

The folder is the hand-off to later stages and to the next run, so it must hold exactly what
the current config renders: a file provision wrote last time and no longer renders (a removed
app's manifest, a removed pool's user-data) is deleted. Files provision never wrote are never
touched, whatever folder the user points ``--out`` at.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

from provisioner.errors import WorkdirError

INDEX = ".provision-files"


def write_file(path: Path, text: str, mode: int = 0o644) -> None:
    """Write text atomically; the file never exists with looser permissions than ``mode``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    except OSError as e:  # a read-only folder, a file where a folder belongs
        raise WorkdirError(f"cannot write {path}: {e.strerror}", e) from e
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise WorkdirError(f"cannot write {path}: {e.strerror}", e) from e


# The index records what provision wrote, with each file's SHA-256, under this first line.
# A file is pruned only when the index has this header, names it by a plain relative path
# inside the folder (no "..", no symlink on the way) and the file still holds exactly what
# provision wrote: a hand-made or older index, or a file the user has since changed or
# replaced, is never deleted.
INDEX_HEADER = "# provision index v2: sha256 and path of each file provision wrote here"
_INDEX_LIMIT = 4 * 1024 * 1024
_HEX = frozenset("0123456789abcdef")


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_regular(path: Path, limit: int | None = None) -> bytes:
    """A regular file's bytes, not through a symlink, at most ``limit`` of them.

    Opened non-blocking: a FIFO put where a file of the work folder belongs would otherwise
    hang the command. Raises OSError: the open's own, or EINVAL for anything but a regular
    file, EFBIG past ``limit``.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", str(path))
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read() if limit is None else handle.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise OSError(errno.EFBIG, f"larger than {limit} bytes", str(path))
        return data
    finally:
        os.close(fd)


def read_list(path: Path) -> list[Any]:
    """A JSON list provision keeps in the work folder (a history), or [] when there is none
    or it cannot be read: a history never stops the run that appends to it."""
    try:
        found = json.loads(read_regular(path).decode("utf-8"))
    except (OSError, ValueError):
        return []
    return found if isinstance(found, list) else []


def _read_or_none(path: Path) -> bytes | None:
    """What provision may have written at ``path``, or None when that cannot be it."""
    try:
        return read_regular(path, _INDEX_LIMIT)
    except OSError:
        return None


def read_index(root: Path) -> dict[str, str]:
    """What provision wrote into ``root`` last time: relative path -> SHA-256 of its text."""
    data = _read_or_none(root / INDEX)
    if data is None:
        return {}
    lines = data.decode("utf-8", errors="replace").split("\n")
    if lines[0] != INDEX_HEADER:
        return {}  # not an index this version of provision wrote: trust none of it
    entries = {}
    for line in lines[1:]:
        digest, _, relative = line.partition(" ")
        if len(digest) == 64 and set(digest) <= _HEX and relative:
            entries[relative] = digest
    return entries


def _inside(root: Path, relative: str) -> Path | None:
    """``root/relative`` when that is a plain path inside ``root`` with no symlink on the way."""
    parts = relative.split("/")
    if relative.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        return None
    current = root
    for part in parts[:-1]:
        current = current / part
        try:
            if not stat.S_ISDIR(os.lstat(current).st_mode):  # a symlink is not a directory
                return None
        except OSError:
            return None
    return current / parts[-1]


def _prune(root: Path, previous: dict[str, str], keep: set[str]) -> None:
    for relative, digest in sorted(previous.items()):
        if relative in keep:
            continue
        target = _inside(root, relative)
        if target is None:
            continue
        data = _read_or_none(target)
        if data is not None and _digest(data) == digest:
            target.unlink(missing_ok=True)


def _unchanged(target: Path, text: str) -> bool:
    """Whether ``target`` already holds ``text``; refuses what provision must not replace."""
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return False
    except OSError as e:
        raise WorkdirError(f"cannot read {target}: {e.strerror}", e) from e
    if stat.S_ISLNK(mode):
        return False  # replaced by a file of our own; the link's target is left alone
    if not stat.S_ISREG(mode):
        raise WorkdirError(f"{target} is not a regular file; move it away and run again")
    data = _read_or_none(target)
    return data is not None and data == text.encode("utf-8")


def write_tree(root: Path, files: dict[str, str]) -> list[Path]:
    """Write ``files`` (relative path -> text) under ``root`` and prune what it replaced."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise WorkdirError(f"cannot create {root}: {e.strerror}", e) from e
    previous = read_index(root)
    written = []
    for relative in sorted(files):
        target = root / relative
        if not target.resolve().is_relative_to(root.resolve()):
            raise WorkdirError(f"refusing to write outside {root}: {relative}")
        if _unchanged(target, files[relative]):
            written.append(target)  # unchanged: keep its mtime, so tools see no change
            continue
        write_file(target, files[relative])
        written.append(target)
    _prune(root, previous, set(files))
    index = "".join([INDEX_HEADER + "\n"] + [f"{_digest(files[name].encode('utf-8'))} {name}\n"
                                             for name in sorted(files)])
    if not _unchanged(root / INDEX, index):  # a re-render that changes nothing writes nothing
        write_file(root / INDEX, index)
    return written
