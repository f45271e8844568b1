"""The bootstrap script as shipped in user-data: without its comment lines.

The first control-plane node's user-data is near DigitalOcean's 64 KiB and the bootstrap
script travels in it (gzip + base64). Its comments are for readers of the template, not
for bash on the node, so the shipped copy drops every line that is only a comment, as the
agents drop their docstrings (render/agents.py). Kept: the shebang, shellcheck directives
(the rendered script is checked) and here-document bodies (data, e.g. systemd units).
tests/contract/test_agent_shipping.py checks with bash itself that every function and
every top-level line is unchanged.
"""

from __future__ import annotations

import re

_COMMENT = re.compile(r"[ \t]*#(?!!|\s*shellcheck\s)")
# `<<WORD`, `<<'WORD'`, `<<"WORD"`, `<<-WORD`; the body ends at a line that is WORD alone.
_HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def without_comments(script: str) -> str:
    """``script`` without the lines that hold only a comment."""
    kept: list[str] = []
    end: str | None = None
    for line in script.splitlines(keepends=True):
        if end is not None:
            kept.append(line)
            if line.strip("\t\n") == end:
                end = None
            continue
        if _COMMENT.match(line):
            continue
        found = _HEREDOC.search(line)
        if found:
            end = found.group(2)
        kept.append(line)
    return "".join(kept)
