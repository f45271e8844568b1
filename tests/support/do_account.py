"""The `fake` fixture: a fake DigitalOcean API on a fresh account, python-digitalocean
pointed at it through the environment (registered for every test in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.doapi import FakeDigitalOcean

TOKEN = "sim-token"  # the token the account accepts


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeDigitalOcean]:
    """A started fake on a fresh account; python-digitalocean pointed at it.

    Every exchange is checked against DigitalOcean's OpenAPI description; a test whose
    traffic disagrees with it fails at teardown, listing each disagreement. A test that
    sends a bad body on purpose takes its violations (`fake.take_violations()`) and
    asserts on them.
    """
    with FakeDigitalOcean(tmp_path / "do-sim-state.json", tokens=TOKEN, validate=True) as api:
        for name, value in api.env().items():
            monkeypatch.setenv(name, value)
        # A hung fake should fail the test, not hang it.
        monkeypatch.setenv("PYTHON_DIGITALOCEAN_REQUEST_TIMEOUT_SEC", "10")
        yield api
    found = api.violations
    if found:
        pytest.fail("traffic that DigitalOcean's OpenAPI description rejects:\n"
                    + "\n".join(f"  {v}" for v in found[:40]), pytrace=False)
