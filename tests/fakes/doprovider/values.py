"""cty values on the wire (msgpack) and the schema-driven transformations planning needs.

Python representation: None is null, `Unknown` is an unknown value, objects and nested
blocks are dicts, lists/sets/tuples are lists, maps are dicts, numbers are int/float.
"""

from __future__ import annotations

import json
from typing import Any

import msgpack
from tf.gen import tfplugin_pb2 as pb

from .schema import Block, CtyType

# cty encodes an unknown value as msgpack extension 0; Terraform >= 1.6 may also send
# extension 12, an unknown carrying "refinements" (e.g. "not null", a string prefix).
_EXT_UNKNOWN = 0
_EXT_REFINED_UNKNOWN = 12


class Unknown:
    """An unknown value. Keeps the raw extension so refinements survive a round trip."""

    __slots__ = ("code", "data")

    def __init__(self, code: int = _EXT_UNKNOWN, data: bytes = b"\x00") -> None:
        self.code = code
        self.data = data

    def __repr__(self) -> str:
        return "Unknown"


UNKNOWN = Unknown()


def is_unknown(value: Any) -> bool:
    """True for an unknown value (plain or refined)."""
    return isinstance(value, Unknown)


def _ext_hook(code: int, data: bytes) -> Any:
    if code in (_EXT_UNKNOWN, _EXT_REFINED_UNKNOWN):
        return Unknown(code, data)
    return msgpack.ExtType(code, data)


def _default(obj: Any) -> Any:
    if isinstance(obj, Unknown):
        return msgpack.ExtType(obj.code, obj.data)
    raise TypeError(f"cannot encode {type(obj).__name__} as a cty value")


def decode(value: pb.DynamicValue) -> Any:
    """DynamicValue -> Python value (None when the message is empty, i.e. null)."""
    if value.msgpack:
        return msgpack.unpackb(value.msgpack, ext_hook=_ext_hook, raw=False, strict_map_key=False)
    if value.json:
        return json.loads(value.json)
    return None


def encode(value: Any) -> pb.DynamicValue:
    """Python value -> DynamicValue (msgpack, which carries unknowns; JSON cannot)."""
    return pb.DynamicValue(msgpack=msgpack.packb(value, default=_default, use_bin_type=True))


# ------------------------------------------------------------------------ conformance


def conform_type(ty: CtyType, value: Any) -> Any:
    """Coerce a (JSON-ish) value to the shape cty expects for `ty` (fill missing attrs)."""
    if value is None or is_unknown(value):
        return value
    if isinstance(ty, list):
        kind = ty[0]
        if kind in ("list", "set"):
            return [conform_type(ty[1], v) for v in value]
        if kind == "map":
            return {k: conform_type(ty[1], v) for k, v in value.items()}
        if kind == "object":
            return {k: conform_type(t, value.get(k)) for k, t in ty[1].items()}
        if kind == "tuple":
            return [conform_type(t, v) for t, v in zip(ty[1], value, strict=False)]
    return value


def empty_nested(nesting: str) -> Any:
    """The value an absent nested block has: no elements, or null for a single block."""
    if nesting in ("list", "set"):
        return []
    if nesting == "map":
        return {}
    return None


def conform(block: Block, value: Any) -> Any:
    """Make `value` an object of `block`: every attribute present, unknown keys dropped."""
    if value is None or is_unknown(value):
        return value
    out: dict[str, Any] = {}
    for name, attr in block.attributes.items():
        out[name] = conform_type(attr.type, value.get(name))
    for name, nb in block.block_types.items():
        raw = value.get(name)
        if raw is None:
            out[name] = empty_nested(nb.nesting)
        elif is_unknown(raw):
            out[name] = raw
        elif nb.nesting in ("list", "set"):
            out[name] = [conform(nb.block, v) for v in raw]
        elif nb.nesting == "map":
            out[name] = {k: conform(nb.block, v) for k, v in raw.items()}
        else:
            out[name] = conform(nb.block, raw)
    return out


def null_object(block: Block) -> dict[str, Any]:
    """An object of `block` with every attribute null and no nested blocks."""
    result = conform(block, {})
    assert isinstance(result, dict)
    return result


# ----------------------------------------------------------------- unknown handling


def _map_nested(block: Block, obj: dict[str, Any], fn: Any) -> None:
    """Apply fn(nested_block, element) to every nested block element of obj, in place."""
    for name, nb in block.block_types.items():
        raw = obj.get(name)
        if raw is None or is_unknown(raw):
            continue
        if nb.nesting in ("list", "set"):
            for el in raw:
                if isinstance(el, dict):
                    fn(nb.block, el)
        elif nb.nesting == "map":
            for el in raw.values():
                if isinstance(el, dict):
                    fn(nb.block, el)
        elif isinstance(raw, dict):
            fn(nb.block, raw)


def mark_computed_unknown(block: Block, obj: dict[str, Any], config: Any) -> None:
    """Planning a create: computed attributes the configuration leaves null become unknown.

    This is what the SDKv2-based real provider plans ("known after apply").
    """

    def visit(b: Block, o: dict[str, Any]) -> None:
        for name, attr in b.attributes.items():
            if attr.computed and o.get(name) is None:
                o[name] = UNKNOWN
        _map_nested(b, o, visit)

    del config  # nested config elements are already merged into obj by Terraform
    visit(block, obj)


def resolve_unknowns(block: Block, obj: dict[str, Any]) -> dict[str, Any]:
    """After apply nothing may stay unknown: whatever nobody filled in becomes null."""

    def strip(value: Any) -> Any:
        if is_unknown(value):
            return None
        if isinstance(value, list):
            return [strip(v) for v in value]
        if isinstance(value, dict):
            return {k: strip(v) for k, v in value.items()}
        return value

    result = strip(obj)
    assert isinstance(result, dict)
    return result


def has_unknown(value: Any) -> bool:
    """True if the value or anything inside it is unknown."""
    if is_unknown(value):
        return True
    if isinstance(value, list):
        return any(has_unknown(v) for v in value)
    if isinstance(value, dict):
        return any(has_unknown(v) for v in value.values())
    return False


# ------------------------------------------------------------------------ comparison

_UNKNOWN_MARK = "\x00unknown"


def _sort_key(v: Any) -> str:
    return json.dumps(v, sort_keys=True)


def canonical_type(ty: CtyType, value: Any) -> Any:
    """A form of a value of type `ty` in which equal values compare equal with `==`.

    Sets become sorted lists (their element order on the wire is arbitrary), numbers
    become floats (cty: 1 == 1.0) and unknowns become a marker equal to nothing known.
    """
    if is_unknown(value):
        return _UNKNOWN_MARK
    if value is None:
        return None
    if ty == "number":
        return float(value)
    if ty == "dynamic" or not isinstance(ty, list):
        return value
    kind = ty[0]
    if kind == "list":
        return [canonical_type(ty[1], v) for v in value]
    if kind == "set":
        return sorted((canonical_type(ty[1], v) for v in value), key=_sort_key)
    if kind == "map":
        return {k: canonical_type(ty[1], v) for k, v in value.items()}
    if kind == "object":
        return {k: canonical_type(t, value.get(k)) for k, t in ty[1].items()}
    if kind == "tuple":
        return [canonical_type(t, v) for t, v in zip(ty[1], value, strict=False)]
    return value


def canonical_block(block: Block, value: Any) -> Any:
    """`canonical_type` for an object of `block`, including its nested blocks."""
    if is_unknown(value):
        return _UNKNOWN_MARK
    if value is None:
        return None
    out: dict[str, Any] = {
        name: canonical_type(attr.type, value.get(name)) for name, attr in block.attributes.items()
    }
    for name, nb in block.block_types.items():
        out[name] = canonical_nested(nb.nesting, nb.block, value.get(name))
    return out


def canonical_nested(nesting: str, block: Block, value: Any) -> Any:
    """`canonical_block` for the value of a nested block of the given nesting mode."""
    if is_unknown(value):
        return _UNKNOWN_MARK
    if value is None:
        return empty_nested(nesting)
    if nesting == "list":
        return [canonical_block(block, v) for v in value]
    if nesting == "set":
        return sorted((canonical_block(block, v) for v in value), key=_sort_key)
    if nesting == "map":
        return {k: canonical_block(block, v) for k, v in value.items()}
    return canonical_block(block, value)


def changed_fields(block: Block, prior: dict[str, Any], planned: dict[str, Any]) -> set[str]:
    """Names of the top-level attributes and nested blocks whose value differs."""
    changed = {
        name
        for name, attr in block.attributes.items()
        if canonical_type(attr.type, prior.get(name))
        != canonical_type(attr.type, planned.get(name))
    }
    changed |= {
        name
        for name, nb in block.block_types.items()
        if canonical_nested(nb.nesting, nb.block, prior.get(name))
        != canonical_nested(nb.nesting, nb.block, planned.get(name))
    }
    return changed


def carry_nested_computed(block: Block, prior: dict[str, Any], planned: dict[str, Any]) -> None:
    """Keep computed attributes of nested block elements across an update, in place.

    Terraform's proposed value copies prior computed values into *list* block elements
    (matched by index) but cannot do so for *set* elements, which have no identity; an
    SDKv2 provider matches them by their configured attributes and keeps the computed
    ones. Without this, every plan of e.g. a load balancer with a `forwarding_rule` set
    would show a spurious change.
    """
    for name, nb in block.block_types.items():
        new_elems = _as_elements(planned.get(name))
        old_elems = _as_elements(prior.get(name))
        if not new_elems or not old_elems:
            continue
        computed = [a.name for a in nb.block.attributes.values() if a.computed]
        unused = list(old_elems)
        for el in new_elems:
            # Compare on what the configuration decides: non-computed attributes, and
            # optional+computed ones only where set (null there means "as before").
            keyed = [
                a
                for a in nb.block.attributes.values()
                if not a.computed or (a.optional and el.get(a.name) is not None)
            ]
            key = _element_key(keyed, el)
            match = next((o for o in unused if _element_key(keyed, o) == key), None)
            if match is None:
                continue
            unused.remove(match)
            for attr in computed:
                if el.get(attr) is None:
                    el[attr] = match.get(attr)
            carry_nested_computed(nb.block, match, el)


def _as_elements(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, dict):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, dict)]
    return []


def _element_key(attrs: list[Any], el: dict[str, Any]) -> str:
    return json.dumps(
        {a.name: canonical_type(a.type, el.get(a.name)) for a in attrs}, sort_keys=True
    )
