"""What a shipped node agent must be: its source's syntax tree without docstrings.

Written here on its own (not imported from provisioner/render/agents.py), so a mistake in
how provision strips the agents cannot also hide in the check of it.
"""

from __future__ import annotations

import ast
from pathlib import Path

AGENTS = Path(__file__).resolve().parents[2] / "provisioner" / "agents"
NAMES = ("failover", "csr_approver", "etcd_backup", "node_upgrade")
ON_NODE = {name: f"/usr/local/lib/provision/{name}.py" for name in NAMES}
# Agents only a control-plane node runs (README "Architecture"); the upgrade agent runs on
# every node.
CONTROL_PLANE_ONLY = ("failover", "csr_approver", "etcd_backup")
EVERY_NODE = ("node_upgrade",)


def expected_tree(source: str) -> str:
    """ast.dump of ``source`` with every module, class and function docstring left out."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef
                          | ast.AsyncFunctionDef):
            continue
        first = node.body[0] if node.body else None
        if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                isinstance(first.value.value, str):
            node.body = node.body[1:] or [ast.Pass()]
    return ast.dump(tree)


def assert_ships(shipped: str, name: str) -> None:
    """``shipped`` (as the node gets it) is agent ``name`` minus its docstrings."""
    compile(shipped, ON_NODE[name], "exec")  # python3 on the node can load it
    source = (AGENTS / f"{name}.py").read_text(encoding="utf-8")
    assert ast.dump(ast.parse(shipped)) == expected_tree(source), name
