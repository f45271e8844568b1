"""Provider-side validation (SDKv2 `ValidateFunc`s) that Terraform core cannot do.

Core checks structure and types against the schema; the real provider additionally
rejects values such as an unknown firewall protocol or an empty droplet name during
`terraform validate`. The messages follow the SDKv2 `validation` package wording.
Unknown values (e.g. every variable during `validate`) are never judged.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from typing import Any

from ..diag import Diagnostics, Path
from ..values import is_unknown

Validator = Callable[[str, Any], str | None]
"""Given the attribute name and a known, non-null value: an error message or None."""

_TAG_RE = re.compile(r"^[a-zA-Z0-9:\-_]{1,255}$")


def no_zero_value(key: str, value: Any) -> str | None:
    """validation.NoZeroValues."""
    if value == "":
        return f"{key} must not be empty, got {value}"
    if value == 0 and not isinstance(value, bool):
        return f"{key} must not be zero, got {value}"
    return None


def one_of(*allowed: str) -> Validator:
    """validation.StringInSlice(allowed, false)."""

    def check(key: str, value: Any) -> str | None:
        if value not in allowed:
            quoted = " ".join(f'"{a}"' for a in allowed)
            return f"expected {key} to be one of [{quoted}], got {value}"
        return None

    return check


def int_between(low: int, high: int) -> Validator:
    """validation.IntBetween(low, high)."""

    def check(key: str, value: Any) -> str | None:
        if not low <= value <= high:
            return f"expected {key} to be in the range ({low} - {high}), got {value}"
        return None

    return check


def is_cidr(key: str, value: Any) -> str | None:
    """validation.IsCIDR."""
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        return f'expected "{key}" to be a valid IPv4 Value, got {value}: {exc}'
    if "/" not in str(value):
        return f'expected "{key}" to be a valid IPv4 Value, got {value}: missing prefix length'
    return None


def is_ipv4(key: str, value: Any) -> str | None:
    """validation.IsIPv4Address."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return f"expected {key} to contain a valid IPv4 address, got: {value}"
    return None


def tag_name(key: str, value: Any) -> str | None:
    """The provider's tag.ValidateTag."""
    if not _TAG_RE.match(str(value)):
        return (
            "tags may contain lowercase letters, numbers, colons, dashes, and underscores; "
            "there is a limit of 255 characters per tag"
        )
    return None


def string_len_between(low: int, high: int) -> Validator:
    """validation.StringLenBetween(low, high)."""

    def check(key: str, value: Any) -> str | None:
        if not low <= len(value) <= high:
            return f"expected length of {key} to be in the range ({low} - {high}), got {value}"
        return None

    return check


def _elements(value: Any) -> Iterator[Any]:
    if isinstance(value, list):
        yield from value
    else:
        yield value


def run_validators(
    diags: Diagnostics,
    obj: dict[str, Any],
    rules: dict[str, Validator],
    prefix: Path = (),
) -> None:
    """Apply `rules` (attribute name -> validator) to obj; collection attrs per element.

    Keys may name a nested block's attribute as "block.attr"; every element is checked.
    """
    for key, check in rules.items():
        if "." in key:
            block_name, attr = key.split(".", 1)
            elems = obj.get(block_name)
            if not isinstance(elems, list):
                elems = [elems] if isinstance(elems, dict) else []
            for el in elems:
                if isinstance(el, dict):
                    # No element index in the path: set elements have none that Terraform
                    # could resolve, and the block name alone locates the problem well.
                    run_validators(diags, el, {attr: check}, (*prefix, block_name))
            continue
        value = obj.get(key)
        if value is None or is_unknown(value):
            continue
        for element in _elements(value):
            if element is None or is_unknown(element):
                continue
            message = check(key, element)
            if message:
                diags.error(message, path=(*prefix, key))
