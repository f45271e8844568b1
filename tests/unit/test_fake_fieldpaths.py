"""The fake API server's fast field diff agrees with the field sets it short-cuts.

Managed fields are bookkept on every write the fake takes; `changed` and `removed` walk two
objects at once and skip equal subtrees, and must find exactly what comparing the two
objects' whole field sets path by path finds.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fakes.kubeapi import fieldpaths as fp

# Field names that make keyed lists (containers, env, ports, conditions) as well as plain
# maps and atomic lists, with few enough values that two objects often share subtrees.
NAMES = st.sampled_from(["spec", "containers", "env", "ports", "conditions", "name", "type",
                         "image", "value", "port", "containerPort", "protocol", "args"])
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(0, 3), st.sampled_from(["a", "b"]))


def _item(children: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    # List-map items: most carry the key fields their list needs.
    return st.fixed_dictionaries(
        {"name": st.sampled_from(["x", "y", "z"])},
        optional={"type": st.sampled_from(["Ready", "Available"]),
                  "containerPort": st.integers(80, 81), "port": st.integers(80, 81),
                  "protocol": st.sampled_from(["TCP", "UDP"]), "value": children})


TREES = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.dictionaries(NAMES, children, max_size=4),
        st.lists(_item(children), max_size=3),
        st.lists(SCALARS, max_size=2)),
    max_leaves=12)
# The server refuses objects with a key twice in one keyed list before any bookkeeping.
OBJECTS = st.dictionaries(NAMES, TREES, max_size=4).filter(lambda o: not fp.duplicate_keys(o))


def reference(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[Any], set[Any]]:
    old_set, new_set = fp.field_set(before), fp.field_set(after)
    changed = {p for p in new_set if p not in old_set or fp.get(before, p) != fp.get(after, p)}
    return changed, old_set - new_set


@settings(max_examples=400, deadline=None)
@given(OBJECTS, OBJECTS, st.data())
def test_changed_and_removed_match_the_field_sets(before: dict[str, Any],
                                                  after: dict[str, Any], data: Any) -> None:
    # Half the time `after` is `before` with one top-level field replaced: the case of
    # most writes, where the walk skips what did not change.
    if data.draw(st.booleans()) and before:
        after = dict(before, **{data.draw(st.sampled_from(sorted(before))): after.get(
            "spec", 1)})
    assert (fp.changed(before, after), fp.removed(before, after)) == reference(before, after)


def test_a_changed_container_image_is_one_path() -> None:
    before = {"spec": {"containers": [{"name": "app", "image": "v1", "args": ["a"]}],
                       "replicas": 2}}
    after = {"spec": {"containers": [{"name": "app", "image": "v2", "args": ["a"]}],
                      "replicas": 2}}
    element = 'k:{"name":"app"}'
    assert fp.changed(before, after) == {("f:spec", "f:containers", element),
                                         ("f:spec", "f:containers", element, "f:image")}
    assert fp.removed(before, after) == set()
    assert fp.removed(after, {"spec": {"replicas": 2}}) == {
        ("f:spec", "f:containers", element), ("f:spec", "f:containers", element, "f:name"),
        ("f:spec", "f:containers", element, "f:image"),
        ("f:spec", "f:containers", element, "f:args")}
