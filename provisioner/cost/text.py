"""Costs as a person reads them: a table of lines, the total, where the prices come from."""

from __future__ import annotations

from typing import Any


def _usd(value: float) -> str:
    return f"${value:,.2f}"


def _span(low: float, high: float) -> str:
    return _usd(low) if low == high else f"{_usd(low)}-{_usd(high)}"


def format_cost(cost: dict[str, Any], title: str) -> str:
    """One line per item (unit price, monthly), then the total; ``cost`` is as_json()."""
    rows = []
    for line in cost["lines"]:
        unit = "?" if line["unit_price"] is None else _usd(line["unit_price"])
        monthly = ("no price known" if line["monthly"] is None
                   else _span(line["monthly"]["min"], line["monthly"]["max"]))
        rows.append((line["item"], f"{unit} / {line['unit']}", monthly, line["note"]))
    width = max([len(r[0]) for r in rows] + [5])
    unit_width = max([len(r[1]) for r in rows] + [4])
    lines = [f"{title} (US$ a month):"]
    for item, unit, monthly, note in rows:
        lines.append(f"  {item:<{width}}  {unit:<{unit_width}}  {monthly:>17}"
                     + (f"  # {note}" if note else ""))
    total = cost["total"]
    lines.append(f"  {'total':<{width}}  {'':<{unit_width}}  "
                 f"{_span(total['min'], total['max']):>17}"
                 + ("  (at min and at max autoscale)" if total["min"] != total["max"] else ""))
    if cost["unpriced"]:
        lines.append("  not in the total (no price known): " + ", ".join(cost["unpriced"]))
    lines.extend(f"  note: {n}" for n in cost["notes"])
    lines.append(f"  prices: {cost['prices']}")
    return "\n".join(lines) + "\n"


def _signed(value: float) -> str:
    return ("-" if value < 0 else "+") + _usd(abs(value))


def format_change(delta: dict[str, Any]) -> str:
    """``before -> after (delta)``, low and high."""
    after = delta["after"]
    if delta["before"] is None:
        return f"Cost after this plan: {_span(after['min'], after['max'])} a month\n"
    before, diff = delta["before"], delta["delta"]
    change = (_signed(diff["min"]) if diff["min"] == diff["max"]
              else f"{_signed(diff['min'])} to {_signed(diff['max'])}")
    return (f"Cost change: {_span(before['min'], before['max'])} -> "
            f"{_span(after['min'], after['max'])} a month ({change})\n")
