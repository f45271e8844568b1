"""The one exception root of provision, and the exit codes the CLI maps it to.

Every error a user can cause or meet is a :class:`ProvisionError`; the CLI catches this
root only, prints ``str(error)`` to stderr and exits with ``error.exit_code``. Anything
else escaping is a bug in provision, not in the user's input.
"""

from __future__ import annotations

import errno
from collections.abc import Sequence
from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_POLICY = 3
EXIT_CHANGES_PENDING = 4


class ProvisionError(Exception):
    """Root of every error provision reports to a user."""

    exit_code = EXIT_FAILURE


class UsageError(ProvisionError):
    """The command line or an input file is wrong; nothing was changed."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True, order=True)
class ConfigIssue:
    """One problem found in an environment file, located by line and key path."""

    line: int
    path: str
    problem: str
    hint: str = ""

    def format(self, filename: str) -> str:
        """Render as ``FILE:LINE: key.path: problem (hint)``."""
        where = f"{filename}:{self.line}" if self.line > 0 else filename
        text = f"{where}: {self.path}: {self.problem}" if self.path else f"{where}: {self.problem}"
        return f"{text} ({self.hint})" if self.hint else text


class ConfigError(UsageError):
    """An environment file failed to load or validate; carries every issue found."""

    # Past this many, more lines help nobody: the file is probably not an environment file.
    SHOWN = 100

    def __init__(self, filename: str, issues: Sequence[ConfigIssue]) -> None:
        self.filename = filename
        self.issues = sorted(issues)
        lines = [issue.format(filename) for issue in self.issues[: self.SHOWN]]
        if len(self.issues) > self.SHOWN:
            lines.append(f"{filename}: ... and {len(self.issues) - self.SHOWN} more problems")
        super().__init__("\n".join(lines))


class RenderError(ProvisionError):
    """A template or serializer could not produce an artefact."""


class WorkdirError(UsageError):
    """A work or output folder, or a file in it, cannot be read or written safely.

    Exit 2: the folder is the user's to fix (permissions, a file in the way, a file that is
    not what provision wrote) and provision stops before it changes anything there. A full
    disk or quota (``cause``'s errno) is the machine's state, not the user's input: exit 1.
    """

    def __init__(self, message: str, cause: OSError | None = None) -> None:
        super().__init__(message)
        if cause is not None and cause.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            self.exit_code = EXIT_FAILURE
