"""The node agents as shipped in user-data: their source without docstrings, compressed.

The first control-plane node's user-data (CA and shared keys, add-on kustomizations, four
agents) must stay under DigitalOcean's 64 KiB. Docstrings and comments are for readers of
this repository, not for python3 on the node: the agents travel as their syntax tree with
docstrings dropped, printed again (``ast.unparse``; comments are not part of the tree),
which roughly halves them, then together in one archive (render/bundle.py).
tests/contract/test_agent_shipping.py checks each shipped text compiles to the same tree as
its source minus docstrings.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[1] / "agents"


def _is_docstring(node: ast.stmt) -> bool:
    return (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str))


def without_docstrings(tree: ast.Module) -> ast.Module:
    """``tree`` with the docstring of the module and of every class and function removed."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and _is_docstring(body[0]):
                # A body must not be empty: a function that was only its docstring passes.
                node.body = body[1:] or [ast.Pass()]
    return ast.fix_missing_locations(tree)


def shipped_text(source: str) -> str:
    """An agent's source as it is written to the node."""
    return ast.unparse(without_docstrings(ast.parse(source))) + "\n"


@functools.cache
def shipped_agent(name: str) -> str:
    """``provisioner/agents/<name>.py`` as shipped.

    Kept for the process: the agents are part of the installed package, and one command
    renders every role's user-data (each worker pool's twice more, for its generation
    hash), which parsed and unparsed the same four files 18 times at 5 pools.
    """
    return shipped_text((AGENTS / f"{name}.py").read_text(encoding="utf-8"))
