"""The upgrade agent runs under the node's own python3: Ubuntu 22.04 ships Python 3.10
(packages.ubuntu.com jammy: python3 3.10.6), so it may use nothing newer.

``ast.parse(feature_version=(3, 10))`` refuses grammar newer than 3.10 (best effort, per the
``ast`` documentation); names added in 3.11 are looked for by hand: ``datetime.UTC``
(docs.python.org/3/library/datetime.html: "Added in version 3.11"), ``tomllib``,
``ExceptionGroup``/``BaseExceptionGroup``, ``typing.Self``, ``enum.StrEnum``,
``asyncio.TaskGroup``, ``contextlib.chdir`` (What's New In Python 3.11).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from provisioner.agents import node_upgrade
from provisioner.render import agents

NEWER = {"UTC", "tomllib", "ExceptionGroup", "BaseExceptionGroup", "Self", "StrEnum",
         "TaskGroup", "chdir", "LiteralString", "Never", "assert_never", "reveal_type"}
SOURCE = Path(node_upgrade.__file__).read_text(encoding="utf-8")


def newer_names(source: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, feature_version=(3, 10))):
        if isinstance(node, ast.Attribute) and node.attr in NEWER:
            found.append(f"line {node.lineno}: .{node.attr}")
        elif isinstance(node, ast.Name) and node.id in NEWER:
            found.append(f"line {node.lineno}: {node.id}")
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
            found += [f"line {node.lineno}: import {n}" for n in names
                      if n.split(".")[0] in NEWER or n in NEWER]
    return found


@pytest.mark.parametrize("source", [SOURCE, agents.shipped_text(SOURCE)],
                         ids=["repository", "shipped"])
def test_the_agent_is_python_3_10(source: str) -> None:
    assert newer_names(source) == []


def test_the_check_finds_what_3_10_lacks() -> None:
    assert newer_names("import datetime as dt\nimport tomllib\n"
                       "print(dt.datetime.now(dt.UTC))\n") == [
        "line 2: import tomllib", "line 3: .UTC"]
    with pytest.raises(SyntaxError):
        newer_names("try:\n    pass\nexcept* ValueError:\n    pass\n")
