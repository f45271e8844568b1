"""The serializing filters round-trip any string through YAML and the shell."""

from __future__ import annotations

import shlex
import subprocess

import yaml
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from provisioner.render import filters
from provisioner.render.filters import shell_quote, to_yaml, to_yaml_block, to_yaml_tree
from provisioner.render.markers import join, segments

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=60)


@given(text)
def test_yaml_scalar_round_trips(value: str) -> None:
    assert yaml.safe_load(f"key: {to_yaml(value)}\n") == {"key": value}


@given(text)
def test_yaml_block_round_trips_at_any_indent(value: str) -> None:
    document = f"outer:\n  inner: {to_yaml_block(value, 4)}\n  after: 1\n"
    assert yaml.safe_load(document) == {"outer": {"inner": value, "after": 1}}


@given(st.dictionaries(text, st.one_of(text, st.lists(text, max_size=3)), max_size=4))
def test_yaml_tree_round_trips(value: dict[str, object]) -> None:
    document = f"outer:\n  inner:{to_yaml_tree(value, 4)}\n  after: 1\n"
    assert yaml.safe_load(document) == {"outer": {"inner": value or {}, "after": 1}}


@given(st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
               max_size=40))
def test_shell_quote_is_one_word(value: str) -> None:
    assert shlex.split(f"echo {shell_quote(value)}") == ["echo", value]
    out = subprocess.run(["bash", "-c", f"printf %s {shell_quote(value)}"], capture_output=True)
    assert out.stdout.decode("utf-8", "surrogateescape") == value


@given(st.lists(st.one_of(text, st.sampled_from(["@@provision:api_endpoint@@",
                                                  "@@provision:bootstrap_token@@"]))))
def test_marker_segments_rejoin_exactly(parts: list[str]) -> None:
    rendered = "".join(parts)
    values = {"api_endpoint": "203.0.113.1", "bootstrap_token": "abcdef.0123456789abcdef"}
    expected = rendered.replace("@@provision:api_endpoint@@", values["api_endpoint"]).replace(
        "@@provision:bootstrap_token@@", values["bootstrap_token"])
    assert join(segments(rendered), values) == expected


def test_the_same_value_renders_the_same_bytes_everywhere() -> None:
    # Rendered text is hashed into worker names: the emitter must not depend on whether
    # PyYAML was built with libyaml, which writes these characters differently.
    assert to_yaml("deploy 😀") == "deploy 😀"
    assert to_yaml_tree({"a": "x\u2028y é"}, 2) == '\n  a: "x\\Ly \\xE9"'


plain_text = st.text(st.sampled_from([chr(i) for i in range(32, 127)] + ["\n", "\t"]),
                     max_size=40)
plain_values = st.recursive(
    st.one_of(plain_text, st.integers(), st.floats(allow_nan=False), st.booleans(),
              st.none()),
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(plain_text, inner, max_size=4)),
    max_leaves=12)


@settings(max_examples=1000, deadline=None)
@given(plain_values)
def test_libyaml_takes_only_values_it_writes_byte_for_byte_like_the_reference(
        value: object) -> None:  # fmt: skip
    # Where libyaml's emitter is used (every string printable ASCII, tabs or newlines), it
    # must write what the pure-Python reference writes, in both styles.
    assert filters._CDumper is not None
    assume(filters._plain(value))
    for flow in (True, False):
        options = {"default_flow_style": flow, "allow_unicode": True, "width": 1 << 30,
                   "sort_keys": False}
        fast = yaml.dump(value, Dumper=filters._CDumper, **options)
        reference = yaml.dump(value, Dumper=filters._Dumper, **options)
        # As filters._dump trims them: the reference ends a bare scalar with "...".
        assert fast.removesuffix("\n...\n").rstrip("\n") == reference.removesuffix(
            "\n...\n").rstrip("\n")


def test_other_values_take_the_reference_emitter() -> None:
    assert not filters._plain({"key": "deploy 😀"})
    assert not filters._plain(["a", {"b\rc": 1}])  # libyaml writes these keys as "? ..."
    assert not filters._plain({"": None})
    assert filters._plain({"LOG_LEVEL": "debug", "ports": [80, 443], "on": True})
