"""`addons:`: optional add-ons, off unless turned on; mistakes named with line and key."""

from __future__ import annotations

import pytest
import yaml

from provisioner.config.load import parse
from provisioner.errors import ConfigError
from tests.support.rendering import example_document


def _parse(addons: object) -> object:
    doc = example_document("production")
    if addons is not None:
        doc["addons"] = addons
    return parse(yaml.safe_dump(doc, sort_keys=False).encode(), "prod.yaml")


def test_off_unless_turned_on() -> None:
    assert _parse(None).addons.headlamp is False  # type: ignore[attr-defined]
    assert _parse({"headlamp": True}).addons.headlamp is True  # type: ignore[attr-defined]


@pytest.mark.parametrize(("addons", "message"), [
    ({"headlamp": "please"}, "addons.headlamp"),
    ({"headlmap": True}, "did you mean 'headlamp'"),
    (["headlamp"], "addons"),
])
def test_mistakes_are_named(addons: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(addons)
    text = str(caught.value)
    assert message in text and "prod.yaml:" in text
