"""Reading the optional ``budget:`` section: the monthly figure `check` compares with."""

from __future__ import annotations

import re
from decimal import Decimal

from provisioner.config.model import Budget
from provisioner.config.reader import Section, node_kind
from provisioner.config.yamlpos import Scalar

KEYS = ("monthly_usd",)
MAX_USD = Decimal(10_000_000)
# Dollars and at most two decimals of cents, written as a YAML number or in quotes.
_AMOUNT = re.compile(r"^[0-9]{1,8}(\.[0-9]{1,2})?\Z", re.ASCII)
_HINT = "a positive amount of US dollars a month, e.g. monthly_usd: 900"


def read_budget(top: Section) -> Budget | None:
    """The ``budget:`` section, or None when it is not written."""
    if not top.has("budget"):
        return None
    s = top.section("budget", KEYS)
    if s.absent:
        return None  # not a mapping: reported by Section
    node = s.items.get("monthly_usd")
    path = s.sub("monthly_usd")
    if node is None:
        s.issues.add(s.line, path, "is required", _HINT)
        return None
    if not isinstance(node, Scalar) or isinstance(node.value, bool) or node.value is None:
        s.issues.add(node.line, path, f"expected an amount of dollars, got {node_kind(node)}",
                     _HINT)
        return None
    # The characters written, not YAML's float: 900.10 is 900.10, not 900.1000000000000227.
    raw = (node.value if isinstance(node.value, str) else node.raw).strip()
    if not _AMOUNT.match(raw):
        s.issues.add(node.line, path, f"{raw!r} is not an amount of dollars", _HINT)
        return None
    amount = Decimal(raw)
    if not Decimal(0) < amount <= MAX_USD:
        s.issues.add(node.line, path, f"{raw} is out of range",
                     f"more than 0 and at most {MAX_USD}")
        return None
    return Budget(monthly_usd=amount)
