"""Private files that are either whole or absent: the cluster's secrets on disk.

A secret written in place can be left half-written (a full disk, a killed process) and a
half CA key is worse than none: every later run fails on it, or, worse, treats it as
missing and makes a new CA. So each file is written to a temporary file in the same folder
(created 0600 by ``mkstemp``, so never readable by others, not even empty), flushed to disk,
then renamed over the target: a reader sees the old file or the new one, never a part.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from provisioner.errors import WorkdirError

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def private_folder(folder: Path) -> None:
    """Create ``folder`` 0700 (and tighten it if it exists looser)."""
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        if folder.stat().st_mode & 0o077:
            folder.chmod(FOLDER_MODE)
    except OSError as e:
        raise WorkdirError(f"cannot create the private folder {folder}: {e.strerror}",
                           e) from e


def write_private(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically and durably, 0600 from the first byte.

    On any failure the previous file (if any) is untouched and no temporary file remains.
    """
    write_private_files({path: data})


def write_private_files(files: dict[Path, bytes]) -> None:
    """Write several private files as one: every one is on disk before any is renamed.

    A full disk while writing the CA certificate must not leave a new ``ca.key`` without
    its ``ca.crt`` (which the next run would rightly refuse): all the data is written and
    synced to temporary files first, and only then are they renamed, which needs no space.
    """
    staged: dict[Path, str] = {}
    current = next(iter(files), Path())
    try:
        for current, data in files.items():
            staged[current] = _stage(current, data)
        for current, tmp in staged.items():
            os.replace(tmp, current)
    except OSError as e:
        for tmp in staged.values():
            Path(tmp).unlink(missing_ok=True)
        raise WorkdirError(f"cannot write {current}: {e.strerror or e} (the previous "
                           "file, if any, is unchanged; free some space and run again)", e) from e
    for folder in {path.parent for path in files}:
        _sync_folder(folder)


def _stage(path: Path, data: bytes) -> str:
    """A synced temporary copy of ``data`` beside ``path``; its name."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        try:
            os.fchmod(fd, FILE_MODE)  # mkstemp's mode already; explicit, whatever the umask
            view = memoryview(data)
            while view:  # os.write may write less than asked
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def _sync_folder(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk too.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some filesystems refuse fsync on a folder; the data itself is synced
    finally:
        os.close(fd)
