"""Modules use each other through public names only.

A name with a leading underscore is its module's own business: another module importing it
(``from provisioner.cloud.sweep import _listed``) ties itself to what may change without
notice. And what provision writes on droplets, the tags, is spelt in one module
(cloud/tags.py), so the service, Terraform's module and the sweep cannot drift apart.
"""

from __future__ import annotations

import ast
import re

from tests.support.rendering import ROOT

PACKAGE = ROOT / "provisioner"


def test_no_module_imports_another_modules_private_name() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("provisioner"):
                found += [f"{rel}: {node.module}.{a.name}" for a in node.names
                          if a.name.startswith("_") and not a.name.startswith("__")]
    assert found == []


def test_droplet_tags_are_spelt_in_cloud_tags_only() -> None:
    """``:autoscaled`` and ``:pool:`` tag literals appear in cloud/tags.py and nowhere else
    in the code (docstrings and comments aside)."""
    spelt = re.compile(r":autoscaled\b|:pool:")
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel == "provisioner/cloud/tags.py":
            continue
        tree = ast.parse(path.read_text())
        docstrings = {id(n.body[0].value) for n in ast.walk(tree)
                      if isinstance(n, ast.Module | ast.ClassDef | ast.FunctionDef)
                      and n.body and isinstance(n.body[0], ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docstrings and spelt.search(node.value):
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert found == []
